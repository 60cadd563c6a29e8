"""ModelQuery: upload images, see each one classified by the model server (table and bar chart).

from kubeflow_jupyter.widgets.model_query import ModelQuery
ModelQuery(server="localhost:9000", model="digits")   # model: default the server's only one

The result is rendered by :mod:`kubeflow_jupyter.serving.display`, as ``%model predict`` shows it,
in JupyterLab's theme (light or dark).
"""

from __future__ import annotations

import ipywidgets as widgets

from ..errors import KubeflowJupyterError


class ModelQuery(widgets.VBox):
    """A FileUpload and the same display as ``%model predict``; the request runs on upload."""

    def __init__(
        self,
        server: str | None = None,
        model: str | None = None,
        signature: str = "predict_images",
        *,
        rest: bool = False,
        timeout: float = 30.0,
        **kwargs,
    ):
        from ..serving.client import default_server

        self.upload = widgets.FileUpload(accept="image/*", multiple=True, description="Images")
        self.server = widgets.Text(value=server or default_server(rest), description="Server")
        self.model = widgets.Text(value=model or "", description="Model", placeholder="the server's only model")
        self.signature = widgets.Text(value=signature, description="Signature")
        self.rest = rest
        self.timeout = timeout
        self.result = widgets.HTML()
        # JupyterLab's rules for rendered HTML (tables, colours) apply inside a widget only with its class.
        self.result.add_class("jp-RenderedHTMLCommon")
        super().__init__(
            [widgets.HBox([self.upload, self.server]), widgets.HBox([self.model, self.signature]), self.result],
            **kwargs,
        )
        self.upload.observe(self._on_upload, names="value")

    def _on_upload(self, change) -> None:
        files = list(change["new"] or ())
        if files:
            self.classify([(f["name"], bytes(f["content"])) for f in files])

    def classify(self, files: list[tuple[str, bytes]]) -> None:
        """Classify ``(name, bytes)`` pairs and show them (errors as one line, in place of the result)."""
        from ..serving.client import PredictionClient
        from ..serving.display import ImagePrediction, error_html, predictions_html
        from ..serving.inception import choose_model, classify_images, load_images

        self.result.value = "<i>classifying…</i>"
        try:
            images = load_images([data for _, data in files], [name for name, _ in files])
            with PredictionClient(self.server.value, rest=self.rest, timeout=self.timeout) as client:
                tops = classify_images(
                    images,
                    model=self.model.value.strip() or choose_model(client, where="the Model field"),
                    signature=self.signature.value,
                    client=client,
                )
        except KubeflowJupyterError as e:
            self.result.value = error_html(str(e))
            return
        self.result.value = predictions_html(
            [ImagePrediction(name, data, top) for (name, data), top in zip(files, tops, strict=True)]
        )
