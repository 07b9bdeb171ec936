"""Step functions for the shared-queue tests, and a replica: an app process's job layer driven over stdin.

    python -m tests.labs.queue_steps     # one JSON command per line in, one JSON answer per line out

A replica calls exactly what the pages call (`jobs.submit`, `jobs.get`, `jobs.list_runs`, `jobs.stop`) and the
arena's vote limiter, on the queue `jobs.manager()` builds from the environment (LLMLAB_DB_URL, LLMLAB_RUN_QUEUE,
LLMLAB_APP_WORKER=0: it only queues), so two of them behave as two app replicas behind a load balancer.
"""
from __future__ import annotations

import functools
import json
import os
import sys
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class CountConfig:
    """A run that counts: `n` steps of `delay` seconds (long enough to stop, or to kill its worker)."""
    n: int = 5
    delay: float = 0.02
    tag: str = ""
    seed: int = 0


def count_steps(ctx, lm=None) -> dict:
    ctx.set_total(ctx.config.n)
    for i in range(1, ctx.config.n + 1):
        time.sleep(ctx.config.delay)
        ctx.log(step=i, loss=1.0 / i)
    ctx.save_json("result.json", {"pid": os.getpid(), "tag": ctx.config.tag})
    return {"pid": os.getpid(), "model": getattr(lm, "key", None), "tag": ctx.config.tag}


def _submit(cmd: dict) -> str:
    from labs import models
    from labs.finetune import lora
    from labs.runs import jobs
    from tests.labs import queue_steps as steps  # by module name: as __main__ they would not unpickle elsewhere

    if cmd["kind"] == "lora":  # a real lab's run on the tiny model: the model travels as its key
        cfg = lora.LoraRunConfig(r=cmd.get("r", 2), steps=2, batch_size=2, n_train=8, n_eval=2, score_prompts=1,
                                 eval_every=2, max_len=48, last_layers=0, tiny_models=True, seed=cmd["seed"])
        fn = functools.partial(lora.train_lora, lm=models.tiny_model(cfg.model_key))
    else:
        cfg = steps.CountConfig(n=cmd.get("n", 5), delay=cmd.get("delay", 0.02), tag=cmd.get("tag", ""),
                                seed=cmd["seed"])
        fn = functools.partial(steps.count_steps, lm=None)
    return jobs.submit(cfg, fn, owner=cmd.get("owner"), label=cmd.get("label", cfg.__class__.__name__))


def handle(cmd: dict) -> dict:
    from labs import arena
    from labs.runs import jobs

    op = cmd["op"]
    if op == "submit":
        return {"id": _submit(cmd)}
    if op == "get":
        run = jobs.get(cmd["id"])
        return {"run": None if run is None else {"status": run.status, "reason": run.reason, "worker": run.worker,
                                                 "step": run.step, "summary": run.summary,
                                                 "metrics": len(run.metrics), "position": run.position}}
    if op == "list":
        return {"ids": [r.id for r in jobs.list_runs()]}
    if op == "stop":
        return {"message": jobs.stop(cmd["id"])}
    if op == "vote":
        try:
            arena.classroom.vote_limiter.check(cmd["client"])
            return {"ok": True}
        except arena.votes.VoteRejected as exc:
            return {"ok": False, "message": str(exc)}
    if op == "manager":
        return {"class": type(jobs.manager()).__name__}
    raise ValueError(f"unknown op {op}")


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = handle(json.loads(line))
        except Exception as exc:  # noqa: BLE001 - the test reads the error
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer, default=str), flush=True)


if __name__ == "__main__":
    main()
