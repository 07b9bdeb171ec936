"""One CPU budget: training, generation and embedding share the cores without oversubscribing them.

torch's intra-op thread count is per calling thread, so each kind of work sets its own before it computes:

| who                         | threads while the other is busy | threads alone |
|-----------------------------|---------------------------------|---------------|
| the generation engine       | cores // 2 (at least 1)         | all cores     |
| a training run (jobs worker)| the rest                        | all cores     |
| a query embedding           | 1                               | 1             |

* Decoding a batch of a small model is bound by per-step overhead, so it loses little with fewer threads, while
  a training step keeps its half of the machine: a training run slows by at most about 2x while a class chats.
* One query embedding is a tiny forward: one thread answers in milliseconds, while asking for every core makes it
  queue behind the other pools (234 ms with 2 threads vs 15 ms with 1 on a busy 2-core machine).
* Two engines (two models) never decode at the same moment: `slot("generation")` is one lock, held per step.
* Nothing nests parallel regions: one heavy run at a time on a CPU (jobs), one engine step at a time.
On a GPU the same rules apply to the host-side threads.
"""
from __future__ import annotations

import contextlib
import os
import threading

import torch


CORES = max(1, int(os.environ.get("LLMLAB_CPU_THREADS") or torch.get_num_threads()))

_state = threading.Lock()
_busy = {"generation": 0, "training": 0}
_generation_lock = threading.Lock()
_local = threading.local()


def threads_for(kind: str) -> int:
    """The intra-op threads a thread doing `kind` work may use right now."""
    if kind == "embedding":
        return 1
    with _state:
        other = _busy["training"] if kind == "generation" else _busy["generation"]
    if not other or CORES == 1:
        return CORES
    share = max(1, CORES // 2)
    return share if kind == "generation" else max(1, CORES - share)


def use_threads(kind: str) -> int:
    """Set this thread's torch threads for `kind` (only when it changes: the call is not free)."""
    n = threads_for(kind)
    if getattr(_local, "threads", None) != n:
        torch.set_num_threads(n)
        _local.threads = n
    return n


def reset_threads() -> None:
    """Give this thread the whole budget again (a pooled worker starting new work)."""
    torch.set_num_threads(CORES)
    _local.threads = CORES


@contextlib.contextmanager
def busy(kind: str):
    """Mark `kind` work as running (a training run, or an engine with streams) for the others' thread counts."""
    with _state:
        _busy[kind] += 1
    try:
        yield
    finally:
        with _state:
            _busy[kind] -= 1


@contextlib.contextmanager
def slot(kind: str):
    """Hold the CPU for one step of `kind` work with this thread's share of the cores."""
    use_threads(kind)
    if kind == "generation":
        with _generation_lock:
            yield
    else:
        yield


def active(kind: str) -> int:
    """How many callers are inside `busy(kind)` now, kind 'training' or 'generation'."""
    with _state:
        return _busy[kind]


@contextlib.contextmanager
def threads(n: int):
    """Run a block with `n` torch threads in this thread, then restore (e.g. one query embedding on 1 thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
