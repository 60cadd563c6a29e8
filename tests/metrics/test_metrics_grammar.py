"""The log-metrics grammar, report()'s lines, and the incremental parser across chunk boundaries."""

from __future__ import annotations

import random

import pytest

from kubeflow_jupyter.metrics import LogParser, format_record, parse_line, report
from kubeflow_jupyter.metrics.grammar import MAX_LINE

ACCEPTED = [
    ("step=26 loss=0.037", 26, {"loss": 0.037}),
    ("chief-0: step 26/120 loss=0.0370", 26, {"loss": 0.037}),  # the seed's style: no "=", with the total
    ("step=26/120 loss=0.0370", 26, {"loss": 0.037}),
    ("step=1 loss=0.0370,", 1, {"loss": 0.037}),  # a trailing comma ends the number
    ("step = 3, loss = .5; acc=1.", 3, {"loss": 0.5, "acc": 1.0}),
    ("INFO:root:step=7 lr=1e-05 grad_norm=-2.5E+3", 7, {"lr": 1e-05, "grad_norm": -2500.0}),
    ("epoch=2 val_loss=0.25", 2, {"val_loss": 0.25}),  # epoch as the x value
    ("epoch=2 step=40 loss=0.5", 40, {"epoch": 2.0, "loss": 0.5}),  # step wins, epoch is a metric
    ("step=5 train/loss=0.1 eval.acc=0.9 top-5=0.99", 5, {"train/loss": 0.1, "eval.acc": 0.9, "top-5": 0.99}),
    ("step=5 loss=1 loss=2", 5, {"loss": 2.0}),  # the last value wins
    ("(step=5, loss=0.5)", 5, {"loss": 0.5}),
    ("step=5 loss=0.5 path=/tmp/x note=ok", 5, {"loss": 0.5}),  # other pairs are not numbers
    ("step=5 loss=nan acc=0.5", 5, {"acc": 0.5}),  # a non-finite value is no point
    ("step=5 big=1e999 acc=0.5", 5, {"acc": 0.5}),
    ("step=0 x=0", 0, {"x": 0.0}),
]

REFUSED = [
    "step=26",  # no metric
    "loss=0.037",  # no step
    "step 26 loss 0.0370",  # the digits example's logging today: no "name=value"
    "Step=3 loss=1",  # case-sensitive
    "mystep=3 loss=1",  # "mystep" is a metric name, not the step
    "step=-1 loss=1",  # a step has no sign
    "step=1.5 loss=1",  # nor a fraction
    "step=3 loss=0.5%",
    "step=3 lr=1e-3x",
    "step=3 v=1.2.3",
    "step=3 loss=nan",
    "step=3 loss=inf",
    "step=3 3d=1",  # a name starts with a letter or _
    "step=3 loss=0x10",
    "",
]


@pytest.mark.parametrize(("line", "step", "values"), ACCEPTED)
def test_metrics_grammar_accepts(line, step, values):
    record = parse_line(line)
    assert record is not None, line
    assert (record.step, record.values) == (step, values)


@pytest.mark.parametrize("line", REFUSED)
def test_metrics_grammar_refuses(line):
    assert parse_line(line) is None


def test_metrics_grammar_ignores_overlong_lines():
    assert parse_line("step=1 loss=1 " + "x" * MAX_LINE) is None


def test_metrics_report_prints_a_record_the_parser_reads_back(capsys):
    report(26, loss=0.037, accuracy=1, lr=1e-5, big=1.5e300)
    line = capsys.readouterr().out
    assert line == "step=26 loss=0.037 accuracy=1 lr=1e-05 big=1.5e+300\n"
    record = parse_line(line.rstrip("\n"))
    assert record.step == 26 and record.values == {"loss": 0.037, "accuracy": 1.0, "lr": 1e-05, "big": 1.5e300}


def test_metrics_report_values_round_trip_exactly():
    rng = random.Random(7)
    for _ in range(500):
        value = rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-30, 30)
        assert parse_line(format_record(1, {"v": value})).values["v"] == value


def test_metrics_report_takes_numpy_scalars_and_prints_nonfinite_without_recording(capsys):
    import numpy as np

    report(np.int64(3), loss=np.float32(0.5), n=np.int32(4), bad=float("nan"))
    line = capsys.readouterr().out.strip()
    assert line == "step=3 loss=0.5 n=4 bad=nan"
    assert parse_line(line).values == {"loss": 0.5, "n": 4.0}


@pytest.mark.parametrize(
    ("step", "metrics", "error"),
    [
        (-1, {"loss": 1}, ValueError),
        (1.5, {"loss": 1}, TypeError),
        (1, {}, ValueError),
        (1, {"a b": 1}, ValueError),
        (1, {"3d": 1}, ValueError),
        (1, {"loss": "0.5"}, (TypeError, ValueError)),
        (1, {"ok": True}, TypeError),
    ],
)
def test_metrics_report_refuses_what_would_not_read_back(step, metrics, error):
    with pytest.raises(error):
        format_record(step, metrics)


LOG = "".join(f"chief-0: step {i}/50 loss={1 / (i + 1):.4f} acc={i / 50}\nsome other line {i}\n" for i in range(50)) + (
    "x" * (MAX_LINE + 10) + " step=1 loss=1\n"
)


@pytest.mark.parametrize("seed", range(5))
def test_metrics_parser_is_the_same_across_any_chunk_boundaries(seed):
    whole = [(r.step, r.values) for r in LogParser().feed(LOG)]
    assert len(whole) == 50
    rng = random.Random(seed)
    parser = LogParser()
    got = []
    i = 0
    while i < len(LOG):
        size = rng.choice([1, 2, 3, 7, 64, 4096, 10_000])
        got.extend((r.step, r.values) for r in parser.feed(LOG[i : i + size]))
        i += size
    assert got == whole
    assert parser.offset == len(LOG) and parser.lines == LOG.count("\n")


def test_metrics_parser_keeps_an_unfinished_line_until_it_ends():
    parser = LogParser()
    assert parser.feed("step=1 loss=0.") == []
    assert parser.offset == 0
    assert [r.values for r in parser.feed("5\nstep=2 lo")] == [{"loss": 0.5}]
    assert parser.offset == len("step=1 loss=0.5\n")
    assert [r.step for r in parser.finish()] == []  # "step=2 lo" is no record
    assert parser.offset == len("step=1 loss=0.5\nstep=2 lo")


def test_metrics_parser_line_by_line_counts_offsets():
    parser = LogParser()
    records = [parser.feed_line(line) for line in ["hello", "step=1 loss=2"]]
    assert records[0] is None and records[1].values == {"loss": 2.0}
    assert parser.offset == len("hello\nstep=1 loss=2\n")
