"""A run as a TFJob: the manifest a ``%%tfjob run`` cell or ``TFJobClient.run`` creates, and
reading its outcome back from the job's logs.

The TFJob is built like a submitted one (the same parsing, layout rules and validation): one
replica type per role asked for (Chief, Worker, PS, Evaluator), ``restartPolicy: Never`` (a
cell's side effects are not replayed), the container ``tensorflow`` with the image, the
environment and a placeholder command the backend replaces with the payload's (see
``Backend.payload_job``). Annotations mark it as a run and carry its description for list views.

The outcome lives only in the logs (jobs outlive kernels): when the job succeeded, the result
replica's log holds the value; when it failed, the failed replicas' logs hold the error frames.
"""

from __future__ import annotations

import functools
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from ..errors import JobFailed, OptionError
from ..tfjob.model import ANNOTATION_DESCRIPTION, ANNOTATION_RUN, API_VERSION, DEFAULT_CONTAINER, KIND
from ..tfjob.status import FAILED, SUCCEEDED, JobSnapshot, default_replica_id
from .errors import ResultError
from .frames import FrameReader
from .results import decode_result, envelope_from_log, result_from_envelope

if TYPE_CHECKING:
    from ..jobsource import JobSource

#: The image when none is given and TensorFlow is not installed here.
FALLBACK_TF_VERSION = "2.16.1"
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*$")


@functools.cache
def default_image() -> str:
    """``tensorflow/tensorflow:<the installed TensorFlow's version>`` (read from the package's
    metadata: TensorFlow is not imported), so the replicas run what the notebook runs. Looked up
    once per process (a few ms of scanning sys.path per run otherwise): like an imported
    TensorFlow, a version installed later counts from the kernel's next start."""
    from importlib import metadata

    for dist in ("tensorflow", "tensorflow-cpu", "tf-nightly"):
        try:
            version = metadata.version(dist)
            break
        except metadata.PackageNotFoundError:
            continue
    else:
        version = FALLBACK_TF_VERSION
    return f"tensorflow/tensorflow:{version.split('+')[0]}"


def random_name(prefix: str = "run") -> str:
    """``run-<5 random characters>``: a DNS-1035 label unlikely to clash in a namespace."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return f"{prefix}-{''.join(secrets.choice(alphabet) for _ in range(5))}"


def parse_env(pairs: Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``--env K=V`` (or a mapping) → a dict; OptionError for a malformed pair or name."""
    if not pairs:
        return {}
    items = pairs.items() if isinstance(pairs, Mapping) else (_split_pair(p) for p in pairs)
    env = {}
    for key, value in items:
        key = str(key)
        if not _ENV_NAME.match(key):
            raise OptionError(f"--env {key}: not a valid environment variable name (letters, digits, '_', '-', '.')")
        if key == "TF_CONFIG":
            raise OptionError("--env TF_CONFIG: the operator sets TF_CONFIG for every replica; leave it out")
        env[key] = str(value)
    return env


def _split_pair(text: str) -> tuple[str, str]:
    key, sep, value = str(text).partition("=")
    if not sep or not key:
        raise OptionError(f"--env {text!r}: give KEY=VALUE")
    return key, value


def replica_layout(workers: int = 1, ps: int = 0, chief: bool = False, evaluator: bool = False) -> dict[str, int]:
    """{replica type: count} in the spec's order; OptionError for counts that make no job."""
    for option, value in (("--workers", workers), ("--ps", ps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise OptionError(f"{option} must be a whole number ≥ 0 (got {value!r:.40})")
    layout = {"Chief": int(bool(chief)), "Evaluator": int(bool(evaluator)), "PS": ps, "Worker": workers}
    layout = {t: n for t, n in layout.items() if n}
    if not layout.get("Chief") and not layout.get("Worker"):
        raise OptionError("a run needs a chief or at least one worker (--workers N, --chief)")
    return layout


def run_manifest(
    name: str,
    description: str,
    kind: str,
    layout: Mapping[str, int],
    *,
    image: str | None = None,
    env: Mapping[str, str] | None = None,
) -> dict:
    """The kubeflow.org/v1 TFJob of a run, before the backend adds how the payload runs."""
    container: dict = {"name": DEFAULT_CONTAINER, "image": image or default_image(), "command": ["python"]}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    specs = {
        rtype: {"replicas": count, "restartPolicy": "Never", "template": {"spec": {"containers": [dict(container)]}}}
        for rtype, count in layout.items()
    }
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "annotations": {ANNOTATION_RUN: kind, ANNOTATION_DESCRIPTION: description}},
        "spec": {"tfReplicaSpecs": specs},
    }


def result_replica(layout: Mapping[str, int]) -> str:
    replicas = [(t, i) for t, n in layout.items() for i in range(n)]
    return default_replica_id(replicas) or "worker-0"


# -- reading the outcome ---------------------------------------------------------------------


def is_run_job(manifest: Mapping) -> bool:
    return ANNOTATION_RUN in ((manifest.get("metadata") or {}).get("annotations") or {})


def job_result(
    client: JobSource,
    name: str,
    *,
    timeout: float | None = None,
    allow_pickle: bool = True,
    warn: bool = True,
    snapshot: JobSnapshot | None = None,
):
    """The run's value (waiting until the job finishes). Raises RemoteError (the user's code
    raised on a replica), ResultError (no result can be delivered), JobFailed (the job failed
    without an error record: killed, deadline, deleted pods), WaitTimeout, JobNotFound."""
    if snapshot is None or not snapshot.finished:
        snapshot = client.wait(name, timeout=timeout, raise_on_failure=False)
    if snapshot.state == SUCCEEDED:
        replica = snapshot.default_replica
        if replica is None:
            raise ResultError(f"TFJob {name!r} has no replicas, hence no result")
        envelope = envelope_from_log(client.logs(name, replica), replica)
        return result_from_envelope(envelope, allow_pickle=allow_pickle, warn=warn)
    if snapshot.state == FAILED:
        raise_remote_error(client, snapshot)
    raise ResultError(f"TFJob {name!r} ended {snapshot.state}: it has no result")


def raise_remote_error(client: JobSource, snapshot: JobSnapshot) -> None:
    """Raise the first error a failed replica reported (RemoteError, or ResultError from the
    runner); JobFailed when none did."""
    failed = [r.id for r in snapshot.replicas if r.phase == FAILED]
    others = [r.id for r in snapshot.replicas if r.id not in failed]
    for replica in failed + others:  # a replica stopped by the failure has no error of its own
        try:
            envelope = envelope_from_log(client.logs(snapshot.name, replica), replica)
        except Exception:  # no log, no frame: look at the next replica
            continue
        if envelope.get("status") == "error":
            decode_result(envelope)  # raises
    raise JobFailed(snapshot, hint="\nno replica reported an error from the code: see its log (%tfjob logs)")


def stream_output(
    client: JobSource,
    name: str,
    replicas: list[str],
    write: Callable[[str], None],
    stop: threading.Event | None = None,
) -> None:
    """Follow the replicas' logs, writing what the user printed (frames hidden) with ``write``;
    prefixed ``[worker-1]`` when more than one replica is followed. Returns when every log ended
    (or ``stop`` is set)."""
    prefix = len(replicas) > 1
    lock = threading.Lock()

    def follow(replica: str) -> None:
        reader = FrameReader()
        lines = client.logs(name, replica, follow=True, stop=stop)
        try:
            for line in lines:
                visible = reader.feed(line)
                if visible is not None:
                    with lock:
                        write(f"[{replica}] {visible}" if prefix else visible)
        except Exception:  # the log is gone (job deleted): the outcome says what happened
            return
        finally:
            close = getattr(lines, "close", None)
            if close is not None:
                close()

    if len(replicas) == 1:
        follow(replicas[0])
        return
    threads = [threading.Thread(target=follow, args=(r,), daemon=True) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
