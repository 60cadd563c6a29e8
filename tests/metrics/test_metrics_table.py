"""Series downsampling bounds and extremes; the table's merge on step, cursors and DataFrame."""

from __future__ import annotations

import math
import random

import pytest

from kubeflow_jupyter.metrics.grammar import parse_line
from kubeflow_jupyter.metrics.series import Series, goal
from kubeflow_jupyter.metrics.table import EVENTS, MetricsTable, Point


def test_metrics_series_stays_bounded_and_keeps_first_last_and_extremes():
    rng = random.Random(1)
    series = Series(limit=1000)
    values = []
    for step in range(100_000):
        value = math.sin(step / 500) + rng.gauss(0, 0.1)
        if step == 31_337:
            value = -50.0  # one spike down
        if step == 77_777:
            value = 60.0  # one spike up
        values.append(value)
        series.add(step, value)
        assert len(series) <= 1000
    assert series.steps[0] == 0 and series.values[0] == values[0]
    assert series.last() == (99_999, values[-1])
    assert series.best("min") == (31_337, -50.0)
    assert series.best("max") == (77_777, 60.0)
    assert series.steps == sorted(series.steps)
    # Spread over the whole run, not just its end.
    assert len(series) >= 400 and series.steps[len(series) // 2] > 25_000


def test_metrics_series_replaces_a_step_and_inserts_out_of_order():
    series = Series()
    for step, value in [(0, 1.0), (2, 3.0), (1, 2.0), (2, 9.0)]:
        series.add(step, value)
    assert series.points() == [[0, 1.0], [1, 2.0], [2, 9.0]]


def test_metrics_goal_names_which_way_is_better():
    assert goal("loss") == goal("val_loss") == goal("train/epoch_loss") == "min"
    assert goal("accuracy") == goal("val_accuracy") == goal("top-5.acc") == goal("auc") == "max"


def test_metrics_table_merges_sources_on_step_into_a_wide_frame():
    table = MetricsTable()
    for line in ["step=0 loss=1.0 accuracy=0.1", "step=1 loss=0.5", "step=2 loss=0.25 accuracy=0.9"]:
        table.add_record("chief-0", parse_line(line))
    table.add_record("worker-0", parse_line("step=1 loss=0.7"))
    table.add(Point("chief-0", "val_loss", 1, 0.6, EVENTS))
    table.add(Point("chief-0", "val_loss", 3, 0.3, EVENTS))  # a step only the event file has

    frame = table.to_frame()
    assert list(frame.columns) == ["replica", "step", "loss", "accuracy", "val_loss"]
    assert frame["step"].dtype == "int64" and frame["loss"].dtype == "float64"
    rows = frame.to_dict("records")
    assert [(r["replica"], r["step"]) for r in rows] == [
        ("chief-0", 0),
        ("chief-0", 1),
        ("chief-0", 2),
        ("chief-0", 3),
        ("worker-0", 1),
    ]
    assert rows[1]["loss"] == 0.5 and math.isnan(rows[1]["accuracy"]) and rows[1]["val_loss"] == 0.6
    assert math.isnan(rows[3]["loss"]) and rows[3]["val_loss"] == 0.3

    only = table.to_frame(["worker-0"])
    assert list(only.columns) == ["replica", "step", "loss"] and len(only) == 1


def test_metrics_table_empty_frame_has_the_key_columns():
    frame = MetricsTable().to_frame(["chief-0"])
    assert list(frame.columns) == ["replica", "step"] and len(frame) == 0


def test_metrics_table_since_returns_only_what_changed():
    table = MetricsTable()
    table.add_record("w", parse_line("step=0 loss=1 acc=0"))
    first, cursor = table.since(0)
    assert first == {"loss": {"w": [[0, 1.0]]}, "acc": {"w": [[0, 0.0]]}}
    table.add_record("w", parse_line("step=1 loss=0.5"))
    new, cursor2 = table.since(cursor)
    assert new == {"loss": {"w": [[1, 0.5]]}} and cursor2 == cursor + 1
    assert table.since(cursor2) == ({}, cursor2)
    summary = table.summary()
    assert summary["loss"]["w"] == {"last": [1, 0.5], "best": [1, 0.5], "goal": "min"}


@pytest.mark.parametrize("limit", [16, 1000])
def test_metrics_table_series_limit_applies_per_series(limit):
    table = MetricsTable(limit=limit)
    table.add_many(Point("w", "loss", s, float(s)) for s in range(limit * 10))
    assert len(table.series("loss", "w")) <= limit
