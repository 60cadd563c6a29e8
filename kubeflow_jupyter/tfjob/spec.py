"""Parse, convert, default and validate TFJob manifests (in progress)."""

from __future__ import annotations

from .model import ParseResult


def parse_tfjob(source, *, name=None, namespace=None, command=None) -> ParseResult:
    """YAML text (str/bytes) or a dict → ParseResult, or raise SpecError listing every problem.

    ``name`` overrides metadata.name; ``namespace`` fills metadata.namespace when absent;
    ``command`` (argv list) replaces command+args of every replica's ``tensorflow`` container.
    Accepts ``kubeflow.org/v1`` TFJob and the legacy ``tensorflow.org/v1alpha1`` TfJob
    (converted, with a notice).
    """
    raise NotImplementedError
