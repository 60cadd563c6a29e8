"""Event files written by real TensorFlow (tf.summary), once per session: TensorFlow takes seconds to import."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

WRITE_EVENTS = textwrap.dedent(
    """
    import sys
    import tensorflow as tf

    root = sys.argv[1]
    for run, tag, scale in [("", "val_loss", 1.0), ("train", "epoch_loss", 2.0), ("worker-1", "loss", 3.0)]:
        writer = tf.summary.create_file_writer(f"{root}/{run}" if run else root)
        with writer.as_default():
            for step in range(5):
                tf.summary.scalar(tag, scale / (step + 1), step=step)
                tf.summary.histogram("weights", [1.0, 2.0, 3.0], step=step)
                tf.summary.text("note", "not a scalar", step=step)
        writer.flush()
    """
)


@pytest.fixture(scope="session")
def tf_logdir(tmp_path_factory):
    """A logdir holding tf.summary scalars: ``val_loss`` (root), ``train/epoch_loss``, ``worker-1/loss``,
    each at steps 0..4 (value scale / (step + 1)), plus a histogram and a text summary."""
    pytest.importorskip("tensorflow")
    root = tmp_path_factory.mktemp("tf-logdir")
    subprocess.run(
        [sys.executable, "-c", WRITE_EVENTS, str(root)],
        check=True,
        timeout=240,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    return root
