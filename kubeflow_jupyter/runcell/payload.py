"""The payload: the files that become a replica's working directory, the same on every backend.

::

    <user's --files, relative paths kept>
    _kfj/bootstrap.py   the replica's entry point: loads the runner (standard library only)
    _kfj/runner.py      the runner: runs the code, reports its result or error
    _kfj/frames.py      the result channel, used by the runner
    _kfj/code.py        the cell, or the shipped function with what it needs
    _kfj/run.json       what to run: kind, function and arguments, packages, files, limits

Locally, :meth:`Payload.write_to` snapshots it into the job's directory (editing the
notebook's files later changes nothing) and the replicas run :meth:`Payload.argv` with the
kernel's interpreter there; beside the runner's sources it writes their compiled code
(``_kfj/runner.code``, ``_kfj/frames.code``: a cache, like ``__pycache__``, that spares each
replica compiling them; see bootstrap.py). On a cluster, :meth:`Payload.to_configmap` carries
the payload's files (not that cache: the image's Python compiles them) and
:meth:`Payload.pod_parts` mounts it: the ConfigMap read-only at ``/kfj/payload``, copied by the
runner into a writable emptyDir that is the working directory. Its size is checked before
anything is created.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import json
import marshal
import os
import re
import stat
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import frames, shipping, syntax
from .errors import PayloadError, PayloadTooLarge

RUNNER_DIR = "_kfj"
BOOTSTRAP = f"{RUNNER_DIR}/bootstrap.py"
RUNNER = f"{RUNNER_DIR}/runner.py"
CODE = f"{RUNNER_DIR}/code.py"
RUN_JSON = f"{RUNNER_DIR}/run.json"
FRAMES = f"{RUNNER_DIR}/frames.py"
#: The whole ConfigMap object as sent; the API server (etcd) refuses objects above 1 MiB.
MAX_CONFIGMAP_BYTES = 900 * 1024
#: The local snapshot's limit on --files: a notebook directory, not a data set.
MAX_FILES_BYTES = 100 * 1024 * 1024
#: Where the payload goes in a pod: mounted read-only, then copied into the working directory.
POD_PAYLOAD_DIR = "/kfj/payload"
POD_WORK_DIR = "/kfj/work"
PAYLOAD_VOLUME = "kfj-payload"
WORK_VOLUME = "kfj-work"
#: Walking a directory of --files skips these (caches, VCS, Jupyter's checkpoints).
SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".ipynb_checkpoints", ".mypy_cache", ".pytest_cache"})
#: Runner files whose compiled code write_to caches beside them (bootstrap.py, the script python
#: runs, is kept small instead: a script's code is never cached).
CACHED_CODE = (RUNNER, FRAMES)
_KEY_SAFE = re.compile(r"[-.a-zA-Z0-9]")
_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Payload:
    files: Mapping[str, bytes]  # relative POSIX path → content, runner files included
    run: Mapping  # run.json's content
    description: str  # the code's first line (or the call), for list views
    executables: frozenset[str] = field(default_factory=frozenset)

    @property
    def total_bytes(self) -> int:
        return sum(len(data) for data in self.files.values())

    @property
    def kind(self) -> str:
        return self.run["kind"]

    @property
    def packages(self) -> list[str]:
        return list(self.run.get("packages", []))

    @property
    def user_files(self) -> list[str]:
        return list(self.run.get("files", []))

    def write_to(self, directory: str | os.PathLike) -> Path:
        """Write the payload into ``directory`` (created if needed): the run's working directory."""
        root = Path(directory)
        for relative, data in self.files.items():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            if relative in self.executables:
                target.chmod(0o755)
        for relative in CACHED_CODE:
            source = root / relative
            source.with_suffix(".code").write_bytes(code_header(source) + _compiled(self.files[relative]))
        return root

    def argv(
        self, python: str = "python", *, payload_dir: str | None = None, install_packages: bool = True
    ) -> list[str]:
        """The replica's command. Without ``payload_dir`` it runs in the payload's directory (a
        local snapshot). With it (a read-only mount), the runner first copies the files into the
        working directory. ``install_packages=False``: never pip-install (the local backend)."""
        script = BOOTSTRAP if payload_dir is None else f"{payload_dir.rstrip('/')}/{BOOTSTRAP}"
        argv = [python, "-u", script]
        if payload_dir is not None:
            argv.append("--copy-payload")
        if not install_packages:
            argv.append("--skip-packages")
        return argv

    def configmap_items(self) -> list[dict]:
        """The configMap volume's ``items``: key → path, so subdirectories are restored."""
        items = []
        for relative in self.files:
            item = {"key": configmap_key(relative), "path": relative}
            if relative in self.executables:
                item["mode"] = 0o755
            items.append(item)
        return items

    def to_configmap(
        self, name: str, namespace: str, owner: Mapping | None = None, labels: Mapping[str, str] | None = None
    ) -> tuple[dict, list[dict]]:
        """(the ConfigMap manifest, the volume's items). UTF-8 files go in ``data``, the rest in
        ``binaryData``. ``owner``: the TFJob (a manifest with ``metadata.uid``, or an
        ``{apiVersion, kind, name, uid}`` reference) so the ConfigMap is deleted with the job.

        Raises PayloadTooLarge when the manifest exceeds MAX_CONFIGMAP_BYTES."""
        data: dict[str, str] = {}
        binary: dict[str, str] = {}
        for relative, content in self.files.items():
            key = configmap_key(relative)
            try:
                data[key] = content.decode("utf-8")
            except UnicodeDecodeError:
                binary[key] = base64.b64encode(content).decode("ascii")
        metadata: dict = {"name": name, "namespace": namespace}
        if labels:
            metadata["labels"] = dict(labels)
        if owner is not None:
            metadata["ownerReferences"] = [owner_reference(owner)]
        configmap: dict = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}
        if binary:
            configmap["binaryData"] = binary
        size = len(json.dumps(configmap, separators=(",", ":")).encode("utf-8"))
        if size > MAX_CONFIGMAP_BYTES:
            largest = sorted(self.user_files, key=lambda p: -len(self.files[p]))[:3]
            detail = f" (largest: {', '.join(largest)})" if largest else ""
            raise PayloadTooLarge(
                f"the code and --files take {size / 1024:.0f} KiB, over the {MAX_CONFIGMAP_BYTES // 1024} KiB "
                f"a ConfigMap carries{detail}: put data on a volume or in the image (--image) and ship only code "
                "with --files"
            )
        return configmap, self.configmap_items()

    def pod_parts(self, configmap_name: str, python: str = "python", *, install_packages: bool = True) -> dict:
        """What each replica's pod template needs: ``volumes`` (pod spec), ``volumeMounts``,
        ``workingDir`` and ``command`` (the container)."""
        return {
            "volumes": [
                {"name": PAYLOAD_VOLUME, "configMap": {"name": configmap_name, "items": self.configmap_items()}},
                {"name": WORK_VOLUME, "emptyDir": {}},
            ],
            "volumeMounts": [
                {"name": PAYLOAD_VOLUME, "mountPath": POD_PAYLOAD_DIR, "readOnly": True},
                {"name": WORK_VOLUME, "mountPath": POD_WORK_DIR},
            ],
            "workingDir": POD_WORK_DIR,
            "command": self.argv(python, payload_dir=POD_PAYLOAD_DIR, install_packages=install_packages),
        }


def configmap_key(path: str) -> str:
    """A valid, unique ConfigMap key (``[-._a-zA-Z0-9]+``, ≤ 253) for a relative path:
    ``pkg/model.py`` → ``pkg_2fmodel.py``. ``_`` is the escape, so it is escaped too, as is a
    leading ``.`` (keys may not start with ``..``)."""
    out = []
    for index, char in enumerate(path):
        if _KEY_SAFE.fullmatch(char) and not (index == 0 and char == "."):
            out.append(char)
        else:
            out.extend(f"_{byte:02x}" for byte in char.encode("utf-8"))
    key = "".join(out)
    if len(key) > 253:
        raise PayloadError(f"--files {path}: the path is too long to ship in a ConfigMap: use a shorter name")
    return key


def owner_reference(owner: Mapping) -> dict:
    """The ownerReference to a TFJob. No ``blockOwnerDeletion``: setting it needs permission on
    the owner's finalizers, which the notebook's Role does not grant."""
    if "metadata" in owner:
        meta = owner["metadata"]
        ref = {
            "apiVersion": owner.get("apiVersion"),
            "kind": owner.get("kind"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
        }
    else:
        ref = {k: owner.get(k) for k in ("apiVersion", "kind", "name", "uid")}
    missing = [k for k, v in ref.items() if not v]
    if missing:
        raise ValueError(
            f"owner reference lacks {', '.join(missing)}: create the TFJob first and pass what the API server returned"
        )
    return ref


# --- building -----------------------------------------------------------------------------------


def collect_files(
    paths: Iterable[str | os.PathLike], root: str | os.PathLike | None = None, max_bytes: int = MAX_FILES_BYTES
) -> tuple[dict[str, bytes], frozenset[str]]:
    """Read ``--files`` (paths relative to ``root``, the notebook's directory; directories walked):
    (relative POSIX path → content, the executable ones). Refuses paths outside ``root``, symlinks
    leading out of it, the reserved ``_kfj/``, and more than ``max_bytes`` in all."""
    base = Path(os.path.abspath(root if root is not None else os.getcwd()))
    real_base = base.resolve()
    found: dict[str, bytes] = {}
    executables: set[str] = set()
    total = 0

    def add(path: Path, shown: str) -> None:
        nonlocal total
        real = path.resolve()
        if not real.is_relative_to(real_base):
            raise PayloadError(
                f"--files {shown}: a symlink to {real}, outside {base}: copy the file beside the notebook"
            )
        relative = path.relative_to(base).as_posix()
        if PurePosixPath(relative).parts[0] == RUNNER_DIR:
            raise PayloadError(f"--files {shown}: {RUNNER_DIR}/ is reserved for the runner: rename the directory")
        if relative in found:
            return
        data = real.read_bytes()
        total += len(data)
        if total > max_bytes:
            raise PayloadTooLarge(
                f"--files take more than {max_bytes // (1024 * 1024)} MiB: put data on a volume "
                "or in the image and ship only code with --files"
            )
        found[relative] = data
        if real.stat().st_mode & stat.S_IXUSR:
            executables.add(relative)

    for entry in paths:
        shown = os.fspath(entry)
        if not shown:
            raise PayloadError("--files: an empty path")
        path = Path(os.path.normpath(base / shown))  # absolute stays absolute; a/../b → b
        if not path.is_relative_to(base):
            raise PayloadError(f"--files {shown}: outside the notebook's directory {base}: give a path inside it")
        if not path.exists():
            raise PayloadError(f"--files {shown}: no such file or directory (relative to {base})")
        if path.is_dir():
            if not path.resolve().is_relative_to(real_base):
                raise PayloadError(f"--files {shown}: a symlink to {path.resolve()}, outside {base}")
            walked: set[Path] = set()
            for dirpath, dirnames, filenames in os.walk(path, followlinks=True):
                here = Path(dirpath)
                real_here = here.resolve()
                if not real_here.is_relative_to(real_base):
                    raise PayloadError(f"--files {shown}: {here.relative_to(base)} is a symlink leading outside {base}")
                if real_here in walked:  # a symlink back up the tree
                    dirnames[:] = []
                    continue
                walked.add(real_here)
                dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
                for filename in sorted(filenames):
                    if not filename.endswith((".pyc", ".pyo")):
                        add(here / filename, shown)
        else:
            add(path, shown)
    return found, frozenset(executables)


def _runner_files() -> dict[str, bytes]:
    return {path: (_HERE / PurePosixPath(path).name).read_bytes() for path in (BOOTSTRAP, RUNNER, FRAMES)}


def code_header(source: Path) -> bytes:
    """bootstrap.code_header, for a replica run by this interpreter with its -O level."""
    status = source.stat()
    return (
        importlib.util.MAGIC_NUMBER
        + bytes((sys.flags.optimize,))
        + status.st_size.to_bytes(8, "little")
        + status.st_mtime_ns.to_bytes(8, "little")
    )


@functools.lru_cache(maxsize=8)
def _compiled(source: bytes) -> bytes:
    """The runner files' code, marshalled; the same sources in every job, so compiled once per
    process. Its filename is a placeholder the bootstrap replaces with the file's path."""
    return marshal.dumps(compile(source, "<kfj-runner>", "exec", dont_inherit=True, optimize=sys.flags.optimize))


def _validate_packages(packages: Iterable[str]) -> list[str]:
    checked = []
    for package in packages:
        text = str(package).strip()
        if not text or text.startswith("-"):
            raise PayloadError(
                f"--packages {package!r}: give a package name or requirement (pip options are not allowed)"
            )
        checked.append(text)
    return checked


def missing_local_packages(packages: Iterable[str]) -> list[str]:
    """The requirements not installed in this environment, by distribution name (versions are not
    compared): the local backend names them in one line instead of installing behind the user's back."""
    from importlib import metadata

    missing = []
    for requirement in packages:
        name = re.split(r"[\s\[<>=!~;@(]", str(requirement).strip(), maxsplit=1)[0]
        try:
            metadata.distribution(name)
        except (metadata.PackageNotFoundError, ValueError):
            missing.append(str(requirement))
    return missing


def first_line(code: str, width: int = 80) -> str:
    for line in code.splitlines():
        text = line.strip()
        if text:
            return text if len(text) <= width else text[: width - 1] + "…"
    return ""


def _assemble(
    kind: str,
    code: str,
    description: str,
    files,
    packages,
    root,
    result_replica,
    max_result_bytes,
    filename: str,
    extra: Mapping | None = None,
) -> Payload:
    user_files, executables = collect_files(files, root)
    run = {
        "version": 1,
        "kind": kind,
        "filename": filename,
        **(extra or {}),
        "packages": _validate_packages(packages),
        "files": sorted(user_files),
        "result_replica": result_replica,
        "max_result_bytes": int(max_result_bytes),
    }
    content = dict(user_files)
    content.update(_runner_files())
    content[CODE] = code.encode("utf-8")
    content[RUN_JSON] = (json.dumps(run, indent=1, sort_keys=True) + "\n").encode("utf-8")
    return Payload(files=content, run=run, description=description, executables=executables)


def build_cell_payload(
    code: str,
    files: Iterable[str | os.PathLike] = (),
    packages: Iterable[str] = (),
    *,
    root: str | os.PathLike | None = None,
    result_replica: str | None = None,
    max_result_bytes: int = frames.MAX_RESULT_BYTES,
) -> Payload:
    """The payload that runs a notebook cell (plain Python, checked here) on each replica.

    ``files``: relative to ``root`` (default: the current directory, the notebook's).
    ``result_replica``: the replica whose last expression is the result (``"worker-0"``…); the
    caller knows the job (``tfjob.status.default_replica_id``); None lets the runner pick from
    ``TF_CONFIG`` by the same rule."""
    value_line = syntax.value_line(code, syntax.check_cell(code))
    return _assemble(
        "cell",
        code,
        first_line(code),
        files,
        packages,
        root,
        result_replica,
        max_result_bytes,
        "<cell>",
        {"value_line": value_line},
    )


def build_function_payload(
    fn,
    args=(),
    kwargs: Mapping | None = None,
    files: Iterable[str | os.PathLike] = (),
    packages: Iterable[str] = (),
    *,
    root: str | os.PathLike | None = None,
    result_replica: str | None = None,
    max_result_bytes: int = frames.MAX_RESULT_BYTES,
) -> Payload:
    """The payload that calls ``fn(*args, **kwargs)`` on each replica; its return value on the
    result replica is the result. See shipping.py for what can be shipped."""
    shipped = shipping.ship_function(fn)
    arguments = shipping.encode_arguments(args, kwargs)
    description = shipping.describe_call(shipped.name, args, kwargs)
    return _assemble(
        "function",
        shipped.source,
        description,
        files,
        packages,
        root,
        result_replica,
        max_result_bytes,
        "<function>",
        {"function": shipped.name, "arguments": arguments},
    )
