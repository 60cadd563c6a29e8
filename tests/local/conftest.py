"""Fixtures for the local backend's tests (helpers live in local_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeflow_jupyter.client import TFJobClient


@pytest.fixture
def client() -> TFJobClient:
    return TFJobClient("local")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
