"""``POST jobs``' dry run for the sidebar's submit dialog (what a submit would run, and where), and its ``validate`` field.

The sidebar's "Submit as TFJob…" dialog shows the dry run's answer (the job's name, its replicas by
type, the working directory) before anything is created, with a command field for a spec that
relies on its image's entrypoint (the seed's legacy YAML), which the local backend cannot run.

The working directory of a job submitted here is the Jupyter server's root directory, whatever
the YAML file's folder: relative paths in a job resolve from the root, as the file browser shows
paths (docs/lab.md; the magics use the notebook's directory, the CLI the current directory).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from ..client import TFJobClient
from ..errors import SpecError
from ..tfjob.spec import STRICT, VALIDATION_MODES


def check_validate(value: Any) -> str:
    """``validate``: one of kubectl's values, default strict; else ValueError naming the field."""
    if value is None or value == "":
        return STRICT
    if value not in VALIDATION_MODES:
        raise ValueError(f"validate must be one of {', '.join(VALIDATION_MODES)}, got {str(value)[:40]!r}")
    return value


def plan(client: TFJobClient, options: dict[str, Any], yaml: str | None = None) -> dict[str, Any]:
    """A dry run for the dialog: what would run, and where. A spec the domain refuses raises
    SpecError (400, as a submit would); what only the backend refuses (an image entrypoint the
    local backend cannot run) comes back as ``problems`` beside the plan, for the dialog to show."""
    prepared = {**options, "dry_run": True}
    parsed = client.prepare(
        prepared["source"],
        name=prepared.get("name"),
        command=prepared.get("command"),
        validate=prepared.get("validate", STRICT),
    )
    job = parsed.job
    entrypoint = [t for t, s in job.replica_specs.items() if s.replicas > 0 and not s.command]
    problems: list[dict[str, str]] = []
    message = ""
    try:
        submission = client.submit(**prepared)
        notices, warnings = submission.notices, submission.warnings
    except SpecError as e:
        problems = [{"path": p.path, "message": p.message} for p in e.problems]
        message = str(e)
        notices, warnings = parsed.notices, parsed.warnings
    images = [job.replica_specs[t].container.get("image") or "" for t in entrypoint]
    root = Path(options["workdir"])
    yaml_dir = Path(yaml).parent if yaml else root
    return {
        "dryRun": True,
        "name": job.name,
        "replicas": {t: s.replicas for t, s in job.replica_specs.items() if s.replicas > 0},
        "workdir": str(root),
        "entrypoint": entrypoint,
        "suggestedCommand": suggest_command(images, yaml_dir, root) if entrypoint else None,
        "problems": problems,
        "message": message,
        "notices": list(notices),
        "warnings": list(warnings),
    }


def image_stem(image: str) -> str:
    """``gcr.io/tf-on-k8s-dogfood/tf_sample:dc944ff`` → ``tf_sample``."""
    last = image.rsplit("/", 1)[-1]
    return last.split("@", 1)[0].split(":", 1)[0]


def suggest_command(images: list[str], yaml_dir: Path, root: Path) -> str | None:
    """A command for a spec that relies on its image's entrypoint: the image's program when a
    script named after it lies beside the YAML file or in a folder of that name (the seed's
    ``tf_sample`` image → ``examples/tf_sample/tf_sample.py``), as a path from the root. A few
    fixed places are looked at, never a tree walk; None when none holds it."""
    for stem in dict.fromkeys(image_stem(i) for i in images if i):
        if not stem or stem.startswith("."):
            continue
        for base in dict.fromkeys((yaml_dir, root)):
            for candidate in (base / f"{stem}.py", base / stem / f"{stem}.py", base / stem / "main.py"):
                try:
                    if candidate.is_file() and candidate.resolve().is_relative_to(root):
                        relative = candidate.resolve().relative_to(root).as_posix()
                        return f"python {shlex.quote(relative)}"
                except (OSError, ValueError):
                    continue
    return None


def server_root(settings: dict[str, Any], contents_manager: Any) -> Path:
    """The working directory of jobs submitted from the sidebar: the contents manager's
    ``root_dir`` (the folder the file browser shows), else the server's, else the process's."""
    root = getattr(contents_manager, "root_dir", None) or settings.get("server_root_dir") or os.getcwd()
    return Path(root).expanduser().resolve()
