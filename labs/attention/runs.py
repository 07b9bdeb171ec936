"""Stored attention runs, read back: the config a task run was trained with, and one table row per finished run."""
from __future__ import annotations

from labs.attention.mixers import VARIANTS
from labs.attention.model import TrainConfig
from labs.runs import jobs


def train_config(run: jobs.Run):
    """The labs.attention.TrainConfig a stored task run was trained with (fields it no longer has are dropped),
    e.g. to reload its models with model.load_trained(run.artifacts, config, mixer)."""
    fields = TrainConfig.__dataclass_fields__
    return TrainConfig(**{k: (tuple(v) if k == "mixers" else v) for k, v in run.config.items() if k in fields})


def task_rows(task_runs: list[jobs.Run]) -> list[dict]:
    """One row per finished attention task run: task, pairs (MQAR only), length, width d, steps, then the held-out
    accuracy of each mixer under its display name. Runs without accuracies are left out."""
    rows = []
    for r in task_runs:
        accuracy = (r.summary or {}).get("accuracy")
        if not accuracy:
            continue
        row = {"task": r.config["task"], "pairs": r.config["num_kv_pairs"] if r.config["task"] == "mqar" else None,
               "length": r.summary.get("seq_len"), "d": r.config["d_model"], "steps": r.config["steps"]}
        row.update({VARIANTS.get(k, k): v for k, v in accuracy.items()})
        rows.append(row)
    return rows
