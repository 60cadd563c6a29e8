"""Scalars from event files: tf.summary's (real TensorFlow), TF1 simple values, read incrementally."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kubeflow_jupyter.metrics.events import EventScalars, split_run

pytest.importorskip("tensorboard")


def test_metrics_events_reads_tf_summary_scalars_and_skips_other_plugins(tf_logdir):
    with EventScalars(tf_logdir) as events:
        scalars = events.poll()
        by_name: dict[str, list] = {}
        for s in scalars:
            by_name.setdefault(s.name, []).append((s.step, round(s.value, 6)))
        assert set(by_name) == {"val_loss", "train/epoch_loss", "worker-1/loss"}
        assert by_name["val_loss"] == [(step, round(1.0 / (step + 1), 6)) for step in range(5)]
        assert by_name["train/epoch_loss"][0] == (0, 2.0)
        assert events.poll() == []  # nothing new: nothing read again


def test_metrics_events_reader_does_not_import_tensorflow(tf_logdir):
    # In a fresh process: this test session may have imported TensorFlow for other reasons.
    code = (
        "import sys; from kubeflow_jupyter.metrics.events import EventScalars; "
        f"n = len(EventScalars({str(tf_logdir)!r}).poll()); print(n, 'tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    assert out.split() == ["15", "False"]


def test_metrics_events_split_run_finds_a_replica_directory():
    assert split_run("worker-1/train", ["chief-0", "worker-1"]) == ("worker-1", "train")
    assert split_run("worker-1", ["worker-1"]) == ("worker-1", "")
    assert split_run("train", ["worker-1"]) == (None, "train")


def _event_bytes(step: int, tag: str, value: float) -> bytes:
    """One TFRecord holding an Event with a TF1 simple_value, framed by TensorBoard's own writer."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    class Sink:
        data = b""

        def write(self, b):
            self.data += b

        def flush(self):
            pass

    event = event_pb2.Event(
        step=step, summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
    )
    sink = Sink()
    RecordWriter(sink).write(event.SerializeToString())
    return sink.data


def test_metrics_events_follows_a_growing_file_across_partial_records(tmp_path):
    stream = b"".join(_event_bytes(step, "legacy_loss", 1.0 / (step + 1)) for step in range(20))
    path = tmp_path / "events.out.tfevents.1.host"
    got = []
    with EventScalars(tmp_path) as events:
        with open(path, "wb") as f:
            for i in range(0, len(stream), 13):  # 13-byte pieces: most polls end inside a record
                f.write(stream[i : i + 13])
                f.flush()
                got.extend((s.step, s.value) for s in events.poll())
        got.extend((s.step, s.value) for s in events.poll())
        # A second file appearing later is found on the next poll.
        (tmp_path / "eval").mkdir()
        (tmp_path / "eval" / "events.out.tfevents.2.host").write_bytes(_event_bytes(7, "acc", 0.75))
        later = events.poll()
    assert got == [(step, pytest.approx(1.0 / (step + 1))) for step in range(20)]
    assert [(s.name, s.step, s.value) for s in later] == [("eval/acc", 7, 0.75)]


def test_metrics_events_empty_or_missing_logdir_is_no_scalars(tmp_path):
    with EventScalars(tmp_path / "nothing-yet") as events:
        assert events.poll() == []


def test_metrics_events_scalars_of_a_replica_run_go_to_that_replica():
    from kubeflow_jupyter.metrics.events import Scalar
    from kubeflow_jupyter.metrics.follow import scalar_points

    scalars = [Scalar("worker-1/eval", "acc", 3, 0.5), Scalar("", "val_loss", 3, 0.25), Scalar("worker-9", "x", 1, 1.0)]
    points = [(p.replica, p.metric) for p in scalar_points(scalars, ["chief-0", "worker-1"], "chief-0")]
    assert points == [("worker-1", "eval/acc"), ("chief-0", "val_loss"), ("chief-0", "worker-9/x")]
