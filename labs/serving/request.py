"""One stream's request: its prompt ids, settings, the queue its tokens arrive on, and how it ended.

Every request ends with a finish reason: "stop" (end of sequence), "length" (its token budget), "cancelled" (Stop,
or its reader went away) or "error: ..." (the message its reader sees). Both engines (torch and the fast runtime)
and the OpenAI server report it.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

import torch

from labs.core.errors import LabError
from labs.serving.sampling import GenerationConfig


DONE = object()  # end-of-stream marker in a request's queue


class EngineError(LabError):
    """A request failed; the message says why in words a student understands."""


@dataclass(eq=False)
class Request:
    """One stream: its prompt ids, sampling settings, and the queue its tokens arrive on."""

    ids: list[int]
    config: GenerationConfig
    stop_ids: frozenset
    stop: threading.Event | None = None
    out: queue.SimpleQueue = field(default_factory=queue.SimpleQueue, repr=False)
    cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    generated: list[int] = field(default_factory=list)
    submitted: float = field(default_factory=time.perf_counter)
    first_token_s: float | None = None
    engine: object | None = field(default=None, repr=False)  # the engine it was submitted to (queue_position)
    generator: torch.Generator | None = field(default=None, repr=False)
    finish_reason: str | None = None  # "stop" (end of sequence), "length", "cancelled" or "error: ..."

    def __post_init__(self):
        if self.config.seed is not None:
            self.generator = torch.Generator(device="cpu").manual_seed(self.config.seed)

    @property
    def position(self) -> int:
        """1, 2, ... while waiting for a free place in the batch; 0 once decoding."""
        return self.engine.queue_position(self) if self.engine is not None else 0

    def finish(self, reason: str) -> None:
        """End the stream with a finish reason (the first one given counts)."""
        if self.finish_reason is None:
            self.finish_reason = reason
        self.cancelled.set()
        self.out.put(DONE)

    def fail(self, error: BaseException) -> None:
        """End the stream with an error its reader raises."""
        if self.finish_reason is None:
            self.finish_reason = f"error: {error}"
        self.cancelled.set()
        self.out.put(error)

    def cancel(self) -> None:
        """The reader has gone (Stop, closed tab): the row leaves the batch at the next step."""
        self.cancelled.set()

    @property
    def wants_out(self) -> bool:
        """The reader cancelled or pressed Stop: the engine drops this row at the next step."""
        return self.cancelled.is_set() or (self.stop is not None and self.stop.is_set())

    def tokens(self, poll_s: float = 0.1, on_wait=None):
        """Yield token ids as the engine produces them; raises EngineError if the request failed.
        on_wait(position) is called while the request waits for a place in the batch (position >= 1)."""
        try:
            while True:
                try:
                    item = self.out.get(timeout=poll_s)
                except queue.Empty:
                    if self.wants_out:
                        return
                    if on_wait is not None and not self.generated:
                        position = self.position
                        if position:
                            on_wait(position)
                    continue
                if item is DONE or (self.stop is not None and self.stop.is_set()):
                    return  # Stop takes effect at once, even for tokens the engine decoded ahead
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.cancel()  # a reader that stops early (GeneratorExit) frees its row


def place_in(waiting, request: Request) -> int:
    """1-based place of a request in an engine's waiting line, 0 if it is not waiting (decoding or done)."""
    try:
        return waiting.index(request) + 1
    except ValueError:
        return 0
