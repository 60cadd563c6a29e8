"""One metric of one replica as (step, value) points, in step order, in bounded memory.

Past ``limit`` points (:data:`MAX_POINTS`) a series is compacted: its points are cut into
``limit // 8`` buckets of consecutive steps and each bucket keeps its first, last, lowest and
highest point (TensorBoard keeps a reservoir sample instead; min/max keeps what a loss curve
is read for: where it started, where it is, and its spikes and its best value). So a series
never holds more than ``limit`` points, compaction runs once per ``limit / 2`` new points
(amortised O(1) per point), and the first point, the last point, the global minimum and the
global maximum always survive. A value recorded again at a step already held replaces it
(a restarted replica logging its steps again: the newest run wins).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_POINTS = 10_000
#: Metric names whose best value is the highest; every other metric is best when lowest (a loss).
HIGHER_IS_BETTER = ("acc", "accuracy", "auc", "precision", "recall", "f1", "iou", "map", "reward", "score")


def goal(metric: str) -> str:
    """``"max"`` when a higher value of this metric is better (accuracy, AUC, ...), else ``"min"``."""
    words = metric.lower().replace("/", "_").replace("-", "_").replace(".", "_").split("_")
    return "max" if any(word in HIGHER_IS_BETTER for word in words) else "min"


@dataclass
class Series:
    limit: int = MAX_POINTS
    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    #: the table's sequence number when each point was last written (what ``since`` compares)
    seqs: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.steps)

    def add(self, step: int, value: float, seq: int = 0) -> None:
        steps = self.steps
        if not steps or step > steps[-1]:
            steps.append(step)
            self.values.append(value)
            self.seqs.append(seq)
        else:
            i = bisect_left(steps, step)
            if steps[i] == step:
                self.values[i], self.seqs[i] = value, seq
                return
            steps.insert(i, step)
            self.values.insert(i, value)
            self.seqs.insert(i, seq)
        if len(steps) > self.limit:
            self.compact()

    def compact(self) -> None:
        """Keep each bucket's first, last, lowest and highest point (see the module docstring)."""
        keep = bucket_extremes(len(self.steps), max(self.limit // 8, 1), self.values.__getitem__)
        self.steps = [self.steps[i] for i in keep]
        self.values = [self.values[i] for i in keep]
        self.seqs = [self.seqs[i] for i in keep]

    def points(self, since: int = -1) -> list[list[float]]:
        """``[[step, value], ...]`` written after sequence number ``since`` (all by default)."""
        if since < 0:
            return [[s, v] for s, v in zip(self.steps, self.values, strict=True)]
        return [[s, v] for s, v, q in zip(self.steps, self.values, self.seqs, strict=True) if q > since]

    def last(self) -> tuple[int, float] | None:
        return (self.steps[-1], self.values[-1]) if self.steps else None

    def best(self, direction: str) -> tuple[int, float] | None:
        if not self.steps:
            return None
        pick = max if direction == "max" else min
        i = pick(range(len(self.values)), key=self.values.__getitem__)
        return self.steps[i], self.values[i]


def bucket_extremes(n: int, buckets: int, value: Callable[[int], float]) -> list[int]:
    """The indexes, in order, to keep of ``n`` points in step order: cut into ``buckets`` runs of
    consecutive points, each run keeps its first, last, lowest and highest (by ``value(index)``)."""
    keep: list[int] = []
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        if lo >= hi:
            continue
        chunk = range(lo, hi)
        low = min(chunk, key=value)
        high = max(chunk, key=value)
        keep.extend(sorted({lo, low, high, hi - 1}))
    return keep
