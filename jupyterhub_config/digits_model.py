"""The digits model the local stack serves: exported once, by the digits example's TFJob."""

from __future__ import annotations

from pathlib import Path


class ModelUnavailable(Exception):
    """The model cannot be had; the message says why. The hub starts anyway."""


def latest_version(base_path: Path) -> Path | None:
    versions = [p for p in base_path.glob("*") if p.name.isdigit() and (p / "saved_model.pb").exists()]
    return max(versions, key=lambda p: int(p.name)) if versions else None


def ensure_digits_export(base_path: Path, popen_kwargs: dict) -> Path:
    if latest_version(base_path):
        return base_path
    raise ModelUnavailable(f"no digits model under {base_path}, and examples/digits/ has no training job yet")
