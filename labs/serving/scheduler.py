"""Who runs this step: a pure scheduler, decided without calling the model (tested without one).

Each step the engine asks three questions, and this module answers them from plain numbers:

* admit    which waiting requests join the batch now: first come, first served, up to max_streams rows and
           PREFILL_TOKENS prompt tokens prefilled together; a model whose cache cannot be re-padded decodes one
           stream at a time; with a sliding window every row must stay inside it for its whole answer;
* finish   did this token end its stream, and why: "stop" (end of sequence), "length" (its budget) or
           "cancelled" (Stop, or its reader went away);
* evict    which rows leave the batch before the next step (cancelled or stopped readers).

(Yu et al. 2022, "Orca: iteration-level scheduling"; vLLM's scheduler makes the same decisions with paging.)
"""
from __future__ import annotations

import collections
from dataclasses import dataclass

from labs.serving.request import Request


PREFILL_TOKENS = 4096  # prompt tokens prefilled together in one step at most (the rest join at the next step)
PAD_SLACK = 1.25  # a prefill forward computes at most this many positions per real prompt token (left padding)


@dataclass(frozen=True)
class BatchState:
    """What the scheduler knows of the running batch: its rows, the cached length T (left padding included),
    whether the model's cache can be re-padded (None until the first prefill), and its sliding window (or None)."""
    running: tuple[Request, ...] = ()
    cached_len: int = 0
    batchable: bool | None = None
    window: int | None = None


class Scheduler:
    """Admission, finish reasons and eviction for one engine; holds no tensors and calls no model."""

    def __init__(self, max_streams: int, prefill_tokens: int = PREFILL_TOKENS):
        self.max_streams = max_streams
        self.prefill_tokens = prefill_tokens

    def admit(self, waiting: collections.deque, state: BatchState) -> list[Request]:
        """Pop from the head of `waiting` the requests that join the batch at this step, in arrival order."""
        joiners: list[Request] = []
        tokens = 0
        while waiting and len(state.running) + len(joiners) < self.max_streams:
            head = waiting[0]
            if not self.fits(head, joiners, state) or (joiners and tokens + len(head.ids) > self.prefill_tokens):
                break
            joiners.append(waiting.popleft())
            tokens += len(head.ids)
        return joiners

    @staticmethod
    def prefill_groups(lengths: list[int], slack: float = PAD_SLACK) -> list[list[int]]:
        """Indices of the newcomers to prefill in each forward: every row of a forward is left-padded to its
        longest prompt, so prompts of similar length go together (longest first) and a forward computes at most
        `slack` positions per real token. 28 retrieval prompts of ~150 tokens padded to 271, then 30 questions of
        ~40 tokens padded to 273 behind one long prompt, took 28 s of prefill for C9; grouped, the padding is gone."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        groups: list[list[int]] = []
        for i in order:
            group = groups[-1] if groups else None
            if group and (len(group) + 1) * lengths[group[0]] <= slack * (sum(lengths[j] for j in group) + lengths[i]):
                group.append(i)
            else:
                groups.append([i])
        return groups

    @staticmethod
    def fits(request: Request, joiners: list[Request], state: BatchState) -> bool:
        """May this request join the batch now? Always if the batch is empty."""
        if not state.running and not joiners:
            return True
        if not state.batchable:
            return False
        if state.window is None:
            return True
        # With a sliding window every row must stay inside it for its whole answer, padding included.
        longest = max([state.cached_len] + [len(r.ids) for r in joiners] + [len(request.ids)])
        budget = max(r.config.max_new_tokens for r in [*state.running, *joiners, request])
        return longest + budget < state.window - 1

    @staticmethod
    def finish_reason(request: Request, token: int) -> str | None:
        """Why `token` ends this stream, or None if it goes on. An end-of-sequence token is not emitted; a token
        that reaches the budget is."""
        if token in request.stop_ids:
            return "stop"
        if len(request.generated) + 1 >= request.config.max_new_tokens:
            return "length"
        if request.wants_out:
            return "cancelled"
        return None

    @staticmethod
    def keep(rows: list[Request]) -> list[int]:
        """Indices of the rows that stay for the next step (the others are evicted as cancelled)."""
        return [i for i, r in enumerate(rows) if not r.wants_out]
