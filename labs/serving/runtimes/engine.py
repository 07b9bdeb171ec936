"""The app's side of the fast runtime: the same contract as labs.serving.engine.Engine (submit a Request, tokens arrive
on its queue, queue place while waiting, Stop, a failure ends only its own stream), decoded in a child process.

Admission stays here, not in the runtime's own scheduler: at most `max_streams` requests are in the runtime at
once and the rest wait in arrival order, so a page can show a student's place in the queue. If the runtime
process dies or cannot go on, the streams it was writing end with the reason (the page offers Retry), the ones
still waiting move to the torch engine, and every later request goes to torch.
"""
from __future__ import annotations

import collections
import contextlib
import itertools
import json
import logging
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Listener
from pathlib import Path
from typing import Callable

from labs.core import compute, settings
from labs.serving.request import EngineError, Request, place_in


log = logging.getLogger(__name__)
STARTUP_S = 90  # the child imports OpenVINO and compiles the model (2-5 s on a laptop; a busy CPU is slower)
POLL_S = 0.02  # how often the app looks for Stop / closed tabs while the runtime decodes


class RuntimeUnavailable(EngineError):
    """The fast runtime could not start or stopped; the message says why (torch serves instead)."""


class RuntimeEngine:
    """OpenVINO GenAI continuous batching in a child process, behind the torch engine's interface."""

    def __init__(self, folder, properties: dict, fallback: Callable[[], object], label: str,
                 max_streams: int | None = None):
        self.folder, self.properties, self.label = str(folder), dict(properties), label
        self.max_streams = max_streams or settings.max_streams()
        self.fallback = fallback  # () -> the torch engine that takes over if this one stops
        self.failure: str | None = None  # why the runtime stopped, once it has
        self._lock = threading.Lock()
        self._waiting: collections.deque[Request] = collections.deque()
        self._active: dict[int, Request] = {}
        self._ids = itertools.count(1)
        self._busy: contextlib.ExitStack | None = None
        self.steps = 0
        self.max_batch_seen = 0
        self._conn, self._proc = self._start()
        try:
            ready = self._conn.poll(STARTUP_S)
            kind, info = self._conn.recv() if ready else ("fatal", f"no answer within {STARTUP_S} s")
        except (EOFError, OSError) as exc:
            kind, info = "fatal", f"the process ended ({type(exc).__name__}, exit code {self._proc.poll()})"
        if kind != "ready":
            self._proc.kill()
            raise RuntimeUnavailable(f"The fast runtime could not load the model: {info}")
        # One thread reads, another writes: a reader that also sent could block on a full socket while the child
        # blocks sending to it, and every thread asking for a queue place would then wait on the lock for good.
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, name="llmlab-runtime-writer", daemon=True)
        self._writer.start()
        self._thread = threading.Thread(target=self._pump, name="llmlab-runtime-pump", daemon=True)
        self._thread.start()

    def _start(self):
        """Start `python -m labs.serving.runtimes.worker` and accept its connection on a private Unix socket."""
        folder = tempfile.mkdtemp(prefix="llmlab-runtime-")
        address = os.path.join(folder, "socket")
        key = os.urandom(16)
        listener = Listener(address, family="AF_UNIX", authkey=key)
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, LLMLAB_RUNTIME_KEY=key.hex(),
                   PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
        proc = subprocess.Popen([sys.executable, "-m", "labs.serving.runtimes.worker", address, self.folder,
                                 json.dumps(self.properties), str(self.max_streams)], env=env,
                                stdin=subprocess.DEVNULL)
        accepted: list = []
        thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
        thread.start()
        deadline = time.monotonic() + STARTUP_S
        while thread.is_alive() and proc.poll() is None and time.monotonic() < deadline:
            thread.join(0.1)
        listener.close()
        shutil.rmtree(folder, ignore_errors=True)
        if not accepted:
            proc.kill()
            raise RuntimeUnavailable(f"The fast runtime did not start (exit code {proc.poll()}).")
        return accepted[0], proc

    # -- the engine interface ----------------------------------------------------------------------------------
    def submit(self, request: Request) -> Request:
        """Queue a request (it joins the runtime's batch as soon as a place is free); returns it."""
        with self._lock:
            if self.failure is None:
                request.engine = self
                self._waiting.append(request)
                self._admit()
                return request
        return self.fallback().submit(request)

    def queue_position(self, request: Request) -> int:
        """Place of a waiting request (1 = next to join), 0 when it is decoding or done."""
        with self._lock:
            return place_in(self._waiting, request)

    @property
    def active(self) -> int:
        """Number of streams decoding in the runtime now."""
        return len(self._active)

    @property
    def alive(self) -> bool:
        """The runtime process is serving."""
        return self.failure is None and self._proc.poll() is None

    def close(self) -> None:
        """Stop the child process (streams still running end as cancelled)."""
        self._fail("the runtime was closed", error=False)
        self._outbox.put(("quit",))
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()

    # -- inside ------------------------------------------------------------------------------------------------
    def _admit(self) -> None:
        """Send waiting requests to the runtime while it has places (the caller holds the lock)."""
        while self._waiting and len(self._active) < self.max_streams:
            request = self._waiting.popleft()
            if request.wants_out:
                request.finish("cancelled")
                continue
            rid = next(self._ids)
            c = request.config
            options = {"max_new_tokens": c.max_new_tokens, "temperature": c.temperature, "top_p": c.top_p,
                       "top_k": c.top_k, "seed": c.seed, "repetition_penalty": c.repetition_penalty,
                       "stop_ids": sorted(request.stop_ids), "ignore_eos": not request.stop_ids}
            self._outbox.put(("add", rid, list(request.ids), options))
            self._active[rid] = request
            if self._busy is None:
                self._busy = contextlib.ExitStack()
                self._busy.enter_context(compute.busy("generation"))  # training takes half the cores meanwhile
        self.max_batch_seen = max(self.max_batch_seen, len(self._active))

    def _idle(self) -> None:
        if not self._active and self._busy is not None:
            self._busy.close()
            self._busy = None

    def _write(self) -> None:
        """The only thread that sends to the child (it may block on a full socket without holding any lock)."""
        while True:
            msg = self._outbox.get()
            try:
                self._conn.send(msg)
            except (OSError, ValueError):
                return  # the child is gone: the reader reports it
            if msg[0] == "quit":
                return

    def _pump(self) -> None:
        """Tokens from the child to each request's queue; Stop and closed tabs back to the child."""
        while True:
            try:
                msg = self._conn.recv() if self._conn.poll(POLL_S) else None
            except (EOFError, OSError) as exc:
                code = self._proc.poll()
                self._fail(f"the runtime process ended ({type(exc).__name__}; exit code {code})")
                return
            with self._lock:
                if msg is not None:
                    if msg[0] == "fatal":
                        self._lock.release()
                        try:
                            self._fail(msg[1])
                        finally:
                            self._lock.acquire()
                        return
                    if msg[0] == "failed":
                        request = self._active.pop(msg[1], None)
                        if request is not None:
                            request.fail(EngineError(f"This answer could not start: {msg[2]}"))
                    elif msg[0] == "step":
                        self.steps += 1
                        for rid, tokens, finish in msg[1]:
                            self._deliver(rid, tokens, finish)
                for rid, request in list(self._active.items()):
                    if request.wants_out:
                        self._outbox.put(("cancel", rid))
                        del self._active[rid]
                        request.finish("cancelled")
                self._admit()
                self._idle()

    def _deliver(self, rid: int, tokens: list[int], finish: str | None) -> None:
        request = self._active.get(rid)
        if request is None:
            return  # cancelled here before the runtime heard of it
        for token in tokens:
            if token in request.stop_ids:
                finish = "stop"
                break
            if request.first_token_s is None:
                request.first_token_s = time.perf_counter() - request.submitted
            request.generated.append(token)
            request.out.put(token)
        if finish is not None:
            del self._active[rid]
            if finish.startswith("error"):
                request.fail(EngineError(f"This answer failed in the fast runtime: {finish[7:]}"))
            else:
                request.finish(finish)

    def _fail(self, reason: str, error: bool = True) -> None:
        """The runtime cannot go on: end its streams with the reason, move the waiting ones to torch."""
        with self._lock:
            if self.failure is not None:
                return
            self.failure = reason
            active, waiting = list(self._active.values()), list(self._waiting)
            self._active.clear()
            self._waiting.clear()
            self._idle()
        if error:
            log.error("fast runtime stopped: %s", reason)
        for request in active:
            if error:
                request.fail(EngineError(f"The fast runtime stopped while writing this answer ({reason}). "
                                         "Press Retry: the next answer is written by the torch engine."))
            else:
                request.finish("cancelled")
        for request in waiting:
            self.fallback().submit(request)
