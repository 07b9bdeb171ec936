"""Two runs side by side and a run's metrics as a file: what the Runs page compares and downloads."""
from __future__ import annotations

import csv
import io

from labs.runs.jobs import Run


def diff_configs(a: Run, b: Run) -> list[dict]:
    """Rows {key, a, b} for each config field that differs (seed included)."""
    left, right = dict(a.config, seed=a.seed), dict(b.config, seed=b.seed)
    keys = sorted(set(left) | set(right))
    return [{"key": k, "a": left.get(k), "b": right.get(k)} for k in keys if left.get(k) != right.get(k)]


def metrics_csv(run: Run) -> str:
    """The run's metrics as CSV text: one row per logged step, a column per key seen."""
    keys: list[str] = []
    for row in run.metrics:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(run.metrics)
    return buf.getvalue()
