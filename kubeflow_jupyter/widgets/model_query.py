"""ModelQuery: upload images, see each one classified by the model server (table and bar chart).

from kubeflow_jupyter.widgets.model_query import ModelQuery
ModelQuery(server="localhost:9000", model="digits")
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from ..errors import KubeflowJupyterError


class ModelQuery(widgets.VBox):
    """A FileUpload and the same display as ``%model predict``; the request runs on upload."""

    def __init__(
        self,
        server: str | None = None,
        model: str = "inception",
        signature: str = "predict_images",
        *,
        rest: bool = False,
        timeout: float = 30.0,
        **kwargs,
    ):
        from ..serving.client import default_server

        self.upload = widgets.FileUpload(accept="image/*", multiple=True, description="Images")
        self.server = widgets.Text(value=server or default_server(rest), description="Server")
        self.model = widgets.Text(value=model, description="Model")
        self.signature = widgets.Text(value=signature, description="Signature")
        self.rest = rest
        self.timeout = timeout
        self.result = widgets.HTML()
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
        from ..serving.display import ImagePrediction, predictions_html
        from ..serving.inception import classify_images

        self.result.value = "<i>classifying…</i>"
        try:
            tops = classify_images(
                [data for _, data in files],
                server=self.server.value,
                model=self.model.value,
                signature=self.signature.value,
                rest=self.rest,
                timeout=self.timeout,
            )
        except KubeflowJupyterError as e:
            self.result.value = (
                f"<pre class='kfj-error' style='color:#b91c1c;white-space:pre-wrap'>{html.escape(str(e))}</pre>"
            )
            return
        self.result.value = predictions_html(
            [ImagePrediction(name, data, top) for (name, data), top in zip(files, tops, strict=True)]
        )
