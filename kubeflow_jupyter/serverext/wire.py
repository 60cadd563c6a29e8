"""The wire format of the REST API and the push channel: what the lab extension reads.

``labextension/src/api.ts`` holds the TypeScript side of the same shapes.
"""

from __future__ import annotations

from ..tfjob.status import JobSnapshot


def job_json(snapshot: JobSnapshot) -> dict:
    """The JSON the sidebar renders (and every endpoint returns): the status model plus replica totals,
    and the replica whose log the sidebar opens first, chosen here so that no front end guesses it."""
    return {**snapshot.to_dict(), "counts": snapshot.counts(), "defaultReplica": snapshot.default_replica}


#: What the first ``jobs`` event carries per job: enough for a row of the list. The full JSON
#: (replicas, conditions, defaultReplica) follows per job in ``job`` events and from ``GET jobs/<name>``;
#: leaving it out makes the first event of a 1,000-job namespace ~8x smaller.
SUMMARY_KEYS = ("name", "namespace", "backend", "uid", "created", "state", "message", "resourceVersion", "counts")


def job_summary(job: dict) -> dict:
    return {k: job[k] for k in SUMMARY_KEYS}
