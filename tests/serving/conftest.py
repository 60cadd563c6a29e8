"""Shared for the serving tests: one tiny image classifier exported once, one server on loopback.

The model is a stand-in for Inception v3 (a 16x16 input, mean colour -> 1000
ImageNet logits) exported through examples/inception/export_inception.py's own
``export`` code path, so every test here also exercises the exporter.
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
from pathlib import Path

import pytest
from support.paths import REPO

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_example(relative: str):
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def encoded_image(color: tuple[int, int, int], fmt: str = "JPEG", size: tuple[int, int] = (40, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture(scope="session")
def tiny_inception():
    """A Keras model shaped like an ImageNet classifier, small enough to build in a blink."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(1000)(pooled))


@pytest.fixture(scope="session")
def export_inception():
    """examples/inception/export_inception.py as a module."""
    return load_example("examples/inception/export_inception.py")


@pytest.fixture(scope="session")
def model_base(tmp_path_factory, tiny_inception, export_inception) -> Path:
    """BASE/1: the stand-in exported with the seed's signatures."""
    base = tmp_path_factory.mktemp("inception-base")
    export_inception.export(tiny_inception, base, version=1)
    return base


@pytest.fixture(scope="session")
def server(model_base):
    """gRPC + REST on free loopback ports, model 'inception', label stable=1."""
    from kubeflow_jupyter.serving.server import ModelServer

    messages: list[str] = []
    srv = ModelServer(
        model_base, "inception", port=0, rest_port=0, labels={"stable": 1}, announce=messages.append
    ).start()
    srv.messages = messages
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def images() -> dict[str, bytes]:
    return {
        "red.jpg": encoded_image((220, 30, 30)),
        "blue.png": encoded_image((20, 40, 230), "PNG"),
        "grey.jpg": encoded_image((128, 128, 128)),
    }


@pytest.fixture()
def grpc_address(server) -> str:
    return f"127.0.0.1:{server.port}"


@pytest.fixture()
def rest_address(server) -> str:
    return f"127.0.0.1:{server.rest_port}"


@pytest.fixture()
def copy_of_base(model_base, tmp_path) -> Path:
    base = tmp_path / "model"
    shutil.copytree(model_base, base)
    return base
