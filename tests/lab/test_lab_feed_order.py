"""The push channel's feed keeps the newest state of every job, whatever order updates arrive in.

Each bad interleaving is forced by calling the feed's loop-side methods in that order
(no threads, no sleeps): the watch thread and the REST handlers reach the feed only
through these calls, on the loop.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from kubeflow_jupyter.client import newest_only
from kubeflow_jupyter.serverext.feed import JobFeed
from kubeflow_jupyter.tfjob.status import Condition, JobSnapshot, supersedes


def snap(
    name: str, version: int, state: str = "Running", uid: str | None = None, backend: str = "local"
) -> JobSnapshot:
    return JobSnapshot(
        name=name,
        uid=uid or f"uid-{name}",
        backend=backend,
        resource_version=str(version),
        conditions=[Condition(state, "True", f"TFJob{state}", "", "", f"2026-01-01T00:00:0{version % 10}Z")],
    )


class FeedUnderTest:
    """A JobFeed with one subscriber and no watch thread: events are read straight off the queue."""

    def __init__(self):
        self.feed = JobFeed(client_provider=lambda: None)
        self.feed._start = lambda: setattr(self.feed, "_stop", object())  # a "running" watch, no thread
        self.sub = self.feed.subscribe()

    def events(self) -> list[tuple[str, object]]:
        out = []
        while not self.sub.queue.empty():
            out.append(self.sub.queue.get_nowait())
        return out

    def states(self) -> dict[str, str]:
        return {name: job["state"] for name, job in self.feed._json.items()}

    def first_event_of_a_new_subscriber(self):
        return self.feed.subscribe().queue.get_nowait()


def run(coro_fn):
    async def main():
        return coro_fn()

    return asyncio.run(main())


def test_feed_submit_snapshot_after_the_watch_update_keeps_the_watch_state():
    def scenario():
        f = FeedUnderTest()
        f.feed._resync([], time.monotonic())
        f.feed.update(snap("quick", 3, "Succeeded"))  # the watch was faster than the POST handler
        f.feed.created(snap("quick", 1, "Created"))  # the submit's first snapshot, late
        assert f.states() == {"quick": "Succeeded"}
        kind, data = f.first_event_of_a_new_subscriber()
        assert kind == "jobs" and [j["state"] for j in data["jobs"]] == ["Succeeded"]
        assert [e[1]["state"] for e in f.events() if e[0] == "job"] == ["Succeeded"]

    run(scenario)


def test_feed_older_or_equal_versions_are_dropped():
    def scenario():
        f = FeedUnderTest()
        f.feed._resync([snap("a", 2)], time.monotonic())
        f.events()
        f.feed.update(snap("a", 4, "Succeeded"))
        f.feed.update(snap("a", 3, "Running"))
        f.feed.update(snap("a", 4, "Running"))  # same version, other content: still not newer
        assert f.states() == {"a": "Succeeded"}
        assert [e[1]["resourceVersion"] for e in f.events()] == ["4"]

    run(scenario)


def test_feed_delete_then_late_update_does_not_revive_the_job():
    def scenario():
        f = FeedUnderTest()
        f.feed._resync([snap("gone", 2)], time.monotonic())
        f.feed.forget("gone")  # DELETE through the API
        f.feed.update(snap("gone", 3))  # the watch's update, queued before the delete
        f.feed.created(snap("gone", 1, "Created"))
        assert f.states() == {}
        assert [e[0] for e in f.events()] == ["jobs", "deleted"]
        # A new job of the same name is another uid: it shows.
        f.feed.created(snap("gone", 1, "Created", uid="uid-gone-2"))
        assert f.states() == {"gone": "Created"}

    run(scenario)


def test_feed_resync_racing_a_watch_neither_rewinds_nor_drops_a_newer_job():
    def scenario():
        f = FeedUnderTest()
        f.feed._resync([snap("old", 2)], time.monotonic())
        listed_at = time.monotonic()  # the resync's list is taken here...
        f.feed.update(snap("old", 5, "Succeeded"))  # ...the watch reports a change...
        f.feed.created(snap("fresh", 1, "Created"))  # ...and a submit lands, both before the list arrives
        f.feed._resync([snap("old", 3, "Running")], listed_at)  # the list predates both
        assert f.states() == {"old": "Succeeded", "fresh": "Created"}
        # A job the cache held before the list began and the list lacks was deleted elsewhere.
        f.feed._resync([snap("fresh", 2)], time.monotonic())
        assert f.states() == {"fresh": "Running"}
        f.feed.update(snap("old", 6))
        assert "old" not in f.states()

    run(scenario)


def test_feed_on_kubernetes_takes_the_watch_order_and_ignores_a_late_submit_snapshot():
    def scenario():
        f = FeedUnderTest()
        f.feed._resync([], time.monotonic())
        f.feed.update(snap("k", 812, "Running", backend="kubernetes"))
        f.feed.update(snap("k", 790, "Succeeded", backend="kubernetes"))  # opaque: the watch's order wins
        f.feed.created(snap("k", 700, "Created", backend="kubernetes"))
        assert f.states() == {"k": "Succeeded"}

    run(scenario)


def test_supersedes_orders_local_versions_numerically_and_a_new_uid_always_wins():
    assert supersedes(snap("a", 10), snap("a", 9))  # "10" < "9" as strings
    assert not supersedes(snap("a", 9), snap("a", 10))
    assert not supersedes(snap("a", 9), snap("a", 9))
    assert supersedes(snap("a", 1, uid="other"), snap("a", 9))
    assert supersedes(snap("a", 1), None)


def test_client_watch_drops_older_states_for_the_widget_wait_and_cli():
    stream = [
        snap("a", 1, "Created"),
        snap("a", 3, "Running"),
        snap("a", 2, "Created"),
        snap("b", 1),
        snap("a", 3, "Running"),
        snap("a", 4, "Succeeded"),
    ]
    assert [(s.name, s.resource_version) for s in newest_only(iter(stream))] == [
        ("a", "1"),
        ("a", "3"),
        ("b", "1"),
        ("a", "4"),
    ]


# -- configuration: c.KubeflowJupyter.<name> reaches the feed and the backend --------------------

TUNED = {"resync_seconds": 2.5, "request_timeout": 7.5, "watch_timeout": 42}


def test_the_feed_watches_for_its_resync_period_then_lists_again():
    class Client:
        def __init__(self):
            self.calls: list = []

        def list(self):
            self.calls.append("list")
            return []

        def watch(self, *, stop, timeout):
            self.calls.append(("watch", timeout))
            if self.calls.count("list") == 2:
                stop.set()
            return iter(())

    client = Client()
    feed = JobFeed(lambda: client, resync_seconds=2.5)

    async def scenario():
        feed.subscribe()
        while client.calls.count("list") < 2:
            await asyncio.sleep(0.01)
        feed.close()

    asyncio.run(scenario())
    assert client.calls[:4] == ["list", ("watch", 2.5), "list", ("watch", 2.5)]


def test_the_settings_reach_the_feed_and_the_kubernetes_backend(monkeypatch, tmp_path):
    from traitlets.config import Config

    from kubeflow_jupyter.backends.kubernetes.backend import DEFAULT_REQUEST_TIMEOUT, DEFAULT_WATCH_TIMEOUT
    from kubeflow_jupyter.serverext import KubeflowJupyter
    from kubeflow_jupyter.serverext.feed import RESYNC_SECONDS
    from kubeflow_jupyter.testing.fake_kube import FakeKubeCluster

    defaults = KubeflowJupyter()
    assert (defaults.resync_seconds, defaults.request_timeout, defaults.watch_timeout) == (
        RESYNC_SECONDS,
        DEFAULT_REQUEST_TIMEOUT,
        DEFAULT_WATCH_TIMEOUT,
    )
    service = KubeflowJupyter(config=Config({"KubeflowJupyter": TUNED})).job_service()
    assert service.feed.resync_seconds == 2.5
    with FakeKubeCluster(namespace="team-a") as cluster:
        monkeypatch.setenv("KUBECONFIG", str(cluster.write_kubeconfig(tmp_path / "kubeconfig")))
        monkeypatch.setenv("KUBEFLOW_JUPYTER_BACKEND", "kubernetes")
        backend = service.client().backend
        assert (backend.name, backend.request_timeout, backend.watch_timeout) == ("kubernetes", 7.5, 42)
    service.executor.shutdown()


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"kubeflow_jupyter": True}}, "KubeflowJupyter": TUNED}


async def test_the_server_reads_the_settings_from_its_config(jp_serverapp):
    service = jp_serverapp.web_app.settings["kubeflow_jupyter_service"]
    assert service.feed.resync_seconds == 2.5
    assert service.client().backend.name == "local", "the Kubernetes tunables do not stand in the local backend's way"
