"""Continuous batching: one decoder per loaded module that every concurrent stream joins.

Shape legend: B active streams, T cached positions (left-padded to a common length), V vocabulary.

Decoding a small model on a CPU is bound by per-step overhead (30 layers of Python and kernel launches), not by
arithmetic, so one forward over B streams costs little more than a forward over one. The engine keeps one batch:

* a new request is prefilled alone at the next step (its prompt in one forward, B = 1, exactly as if it were
  alone), then its KV cache joins the batch: every row is left-padded to the longest, padding is masked out and
  each row keeps its own position ids, so RoPE sees the same positions as alone (Yu et al. 2022, "Orca:
  iteration-level scheduling"; the same idea as vLLM's scheduler, without paging);
* one forward per step decodes a token for every row (B, 1) -> logits (B, 1, V);
* each row samples with its own settings and its own seeded generator, so a stream's answer does not depend on
  who else is in the batch; a row that hits end-of-sequence, its token budget, its Stop, or whose reader went away
  leaves at the next step, and all-padding columns are trimmed.

A model whose cache cannot be re-padded (not a list of key/value layers, or a sliding window that a batch would
outgrow) is served one stream at a time, in arrival order.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
import types
import weakref

import torch
from transformers import DynamicCache

from labs.core import compute, settings
from labs.serving.request import DONE, EngineError, Request, place_in  # noqa: F401 (the engine's contract)
from labs.serving.sampling import sample_next
from labs.serving.scheduler import BatchState, Scheduler


log = logging.getLogger(__name__)

def _layers(cache):
    """The per-layer key/value holders of a transformers DynamicCache, or None if it is not one."""
    layers = getattr(cache, "layers", None)
    if not layers or not all(hasattr(l, "keys") and hasattr(l, "values") for l in layers):
        return None
    return layers


SKINNY_ROWS = 6  # decode steps of 2..6 rows take the weight-major product (at 8 rows both kernels took as long)


def _skinny_forward(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """nn.Linear.forward, except for a decode step of 2..SKINNY_ROWS rows in float32 on a CPU under inference mode:
    y = (W x^T)^T instead of x W^T. Both read every weight once, but torch's x W^T kernel for 2-6 rows was up to 2x
    slower than for 1 or 8 (SmolLM2-135M decode step, alternating in one process: 2-4 rows 52-84 ms vs 104-174 ms,
    5-6 rows 69-97 ms vs 81-128 ms; 8 rows 115-135 ms vs 107-149 ms).
    Same products, another summation order: the logits differ by float rounding (about 1e-6), as a row in a batch
    already does from the same row alone; greedy answers are tested equal to the plain kernel's."""
    rows = x.numel() // max(x.shape[-1], 1)
    if 2 <= rows <= SKINNY_ROWS and x.dtype == self.weight.dtype == torch.float32 and x.device.type == "cpu" \
            and torch.is_inference_mode_enabled():
        y = torch.mm(self.weight, x.reshape(rows, x.shape[-1]).t()).t()
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)
    return torch.nn.functional.linear(x, self.weight, self.bias)


def skinny_linears(module: torch.nn.Module) -> None:
    """Give every plain nn.Linear of `module` the decode-step kernel above (idempotent; copies keep it; training and
    scoring, with more rows or gradients, take the usual path)."""
    for layer in module.modules():
        if type(layer) is torch.nn.Linear and "forward" not in vars(layer):
            layer.forward = types.MethodType(_skinny_forward, layer)


def _pad_left(x: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    if n == 0:
        return x
    shape = list(x.shape)
    shape[dim] = n
    return torch.cat([x.new_zeros(shape), x], dim=dim)


class Engine:
    """The batched decoder of one module (a loaded model, a decode variant, or an adapter-wrapped copy)."""

    def __init__(self, module: torch.nn.Module, lock: threading.Lock, max_streams: int | None = None):
        self.module = module
        self.device = next(module.parameters()).device
        skinny_linears(module)
        self.lock = lock  # the model's lock: scoring and decoding on one model take turns
        self.max_streams = max_streams or settings.max_streams()
        self.scheduler = Scheduler(self.max_streams)
        self.window = self._sliding_window(module)
        self._cv = threading.Condition()
        self._waiting: collections.deque[Request] = collections.deque()
        self._thread: threading.Thread | None = None
        # the batch (touched only by the engine thread)
        self.rows: list[Request] = []
        self.cache = None
        self.mask: torch.Tensor | None = None  # (B, T) 1 = real token, 0 = left padding
        self.next_tokens: torch.Tensor | None = None  # (B, 1)
        self.positions: torch.Tensor | None = None  # (B,) position id of each row's next token
        self.batchable = self._probe_batchable(module)  # is the cache a list of KV layers? (checked at each prefill)
        self.steps = 0  # decode steps taken (for tests and benchmarks)
        self.prefills = 0  # prefill forwards (several newcomers share one)
        self.max_batch_seen = 0

    @staticmethod
    def _sliding_window(module) -> int | None:
        config = getattr(module, "config", None)
        window = getattr(config, "sliding_window", None) if config is not None else None
        return int(window) if window else None

    @staticmethod
    def _probe_batchable(module) -> bool | None:
        """Whether this module's cache will be a list of key/value layers, guessed from an empty cache built for its
        config (no forward), so the first requests to a fresh engine share one prefill instead of the first going
        alone (a new fine-tuned copy gets a new engine). None when unsure: the first prefill then decides."""
        config = getattr(module, "config", None)
        if config is None:
            return None
        try:
            return True if _layers(DynamicCache(config=config)) is not None else None
        except Exception:  # noqa: BLE001 - an unknown config: learn it from the first prefill
            return None

    # -- the public side ---------------------------------------------------------------------------------------
    def submit(self, request: Request) -> Request:
        """Queue a request to join the batch at the next step (starting the decode thread if idle); returns it."""
        request.engine = self
        with self._cv:
            self._waiting.append(request)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="llmlab-engine", daemon=True)
                self._thread.start()
            self._cv.notify()
        return request

    def submit_all(self, requests: list[Request]) -> list[Request]:
        """Queue several requests at once: the decode thread sees them together, so they join at the same step
        (one prefill between them, as far as the scheduler admits)."""
        with self._cv:  # a re-entrant lock: the thread that submit() starts waits until all are queued
            return [self.submit(request) for request in requests]

    def queue_position(self, request: Request) -> int:
        """Place of a waiting request (1 = next to join), 0 when it is decoding or done."""
        with self._cv:
            return place_in(self._waiting, request)

    @property
    def active(self) -> int:
        """Number of streams decoding in the batch now."""
        return len(self.rows)

    # -- the engine thread -------------------------------------------------------------------------------------
    def _run(self) -> None:
        with compute.busy("generation"):
            self._loop()

    def _loop(self) -> None:
        while True:
            with self._cv:
                if not self.rows and not self._waiting:
                    self._thread = None  # idle: the next submit starts a fresh thread
                    return
                joiners = self.scheduler.admit(self._waiting, self._state())
            try:
                with compute.slot("generation"):
                    if joiners:
                        self._join(joiners)
                    self._drop_finished()
                    if self.rows:
                        self._step()
                    self._drop_finished()
            except Exception as exc:  # noqa: BLE001 - a failed batch step fails its rows, never the engine
                log.exception("batched decode step failed")
                for request in self.rows:
                    request.fail(EngineError(f"Generation failed: {type(exc).__name__}: {exc}"))
                self._reset()

    def _state(self) -> BatchState:
        return BatchState(tuple(self.rows), self.mask.shape[1] if self.mask is not None else 0, self.batchable,
                          self.window)

    def _requeue(self, requests: list[Request]) -> None:
        """Put admitted requests back at the head of the queue, in their order (they join at a later step)."""
        with self._cv:
            self._waiting.extendleft(reversed(requests))

    @torch.inference_mode()
    def _join(self, requests: list[Request]) -> None:
        """Prefill the newcomers' prompts in one forward (left-padded to the longest, (N, T) in, one logit row
        each out), emit each one's first token, and merge their caches into the batch. One prompt alone is
        prefilled unpadded, exactly as it would be outside a batch."""
        for gone in [r for r in requests if r.wants_out]:
            gone.finish("cancelled")
        requests = [r for r in requests if not r.wants_out]
        if not requests:
            return
        groups = self.scheduler.prefill_groups([len(r.ids) for r in requests])
        if len(groups) > 1:  # prompts of very different lengths: one forward per group of similar length
            for k, group in enumerate(groups):
                if k and not self.batchable:  # the first forward showed a cache that cannot batch: the rest wait
                    self._requeue([requests[i] for g in groups[k:] for i in g])
                    return
                self._join([requests[i] for i in group])
            return
        lengths = [len(r.ids) for r in requests]
        t_new = max(lengths)
        mask = torch.tensor([[0] * (t_new - n) + [1] * n for n in lengths], device=self.device)  # (N, T)
        ids = torch.tensor([[0] * (t_new - len(r.ids)) + r.ids for r in requests], device=self.device)
        padded = min(lengths) < t_new
        try:
            self.prefills += 1
            with self.lock:
                out = self.module(input_ids=ids, use_cache=True, logits_to_keep=1,
                                  attention_mask=mask if padded else None,
                                  position_ids=(mask.cumsum(1) - 1).clamp(min=0) if padded else None)
        except Exception as exc:  # noqa: BLE001 - find the request at fault: one at a time, each fails alone
            if len(requests) > 1:
                for request in requests:
                    self._join([request])
                return
            requests[0].fail(EngineError(f"This answer failed while reading the prompt: "
                                         f"{type(exc).__name__}: {exc}"))
            return
        self.batchable = _layers(out.cache) is not None
        if not self.batchable and len(requests) > 1:  # the guess was wrong: one stream at a time from here on
            self._requeue(requests[1:])  # nothing was emitted for them yet
            self._join(requests[:1])
            return
        keep, tokens = [], []
        for i, request in enumerate(requests):
            try:
                token = self._sample(request, out.logits[i, -1])
            except Exception as exc:  # noqa: BLE001 - this request only
                request.fail(EngineError(f"This answer failed: {type(exc).__name__}: {exc}"))
                continue
            request.first_token_s = time.perf_counter() - request.submitted
            if not self._emit(request, token):
                keep.append(i)
                tokens.append(token)
        cache = out.cache
        if not keep:
            return
        rows = [requests[i] for i in keep]
        if len(keep) < len(requests):  # some finished at their first token: their rows leave the new cache
            index = torch.tensor(keep, device=self.device)
            for layer in _layers(cache) or ():
                layer.keys, layer.values = layer.keys.index_select(0, index), layer.values.index_select(0, index)
            mask = mask.index_select(0, index)
        next_tokens = torch.tensor(tokens, device=self.device)[:, None]
        positions = torch.tensor([len(r.ids) for r in rows], device=self.device)
        if not self.rows:
            self.rows, self.cache, self.mask = rows, cache, mask
            self.next_tokens, self.positions = next_tokens, positions
            self._trim()
            return
        mine, theirs = _layers(cache), _layers(self.cache)
        if mine is None or theirs is None or len(mine) != len(theirs):
            raise EngineError("This model's cache cannot be batched.")  # Scheduler.fits prevents this
        t_batch = self.mask.shape[1]
        n = max(t_batch, t_new)
        for a, b in zip(theirs, mine):
            a.keys = torch.cat([_pad_left(a.keys, n - t_batch, -2), _pad_left(b.keys, n - t_new, -2)], dim=0)
            a.values = torch.cat([_pad_left(a.values, n - t_batch, -2), _pad_left(b.values, n - t_new, -2)], dim=0)
            if hasattr(a, "cumulative_length"):  # sliding-window layers count positions themselves
                a.cumulative_length = n
        self.mask = torch.cat([_pad_left(self.mask, n - t_batch, 1), _pad_left(mask, n - t_new, 1)], dim=0)
        self.next_tokens = torch.cat([self.next_tokens, next_tokens], dim=0)
        self.positions = torch.cat([self.positions, positions])
        self.rows.extend(rows)

    @torch.inference_mode()
    def _step(self) -> None:
        """One decode step for every row: (B, 1) tokens in, (B, 1, V) logits out."""
        self.mask = torch.cat([self.mask, torch.ones(len(self.rows), 1, dtype=torch.long, device=self.device)], dim=1)
        padded = not bool(self.mask.all())
        with self.lock:
            out = self.module(input_ids=self.next_tokens, use_cache=True, logits_to_keep=1, cache=self.cache,
                              attention_mask=self.mask if padded else None,
                              position_ids=self.positions[:, None] if padded else None)
        self.cache = out.cache
        self.steps += 1
        self.max_batch_seen = max(self.max_batch_seen, len(self.rows))
        logits = out.logits[:, -1]  # (B, V)
        tokens = []
        for i, request in enumerate(self.rows):
            try:
                token = self._sample(request, logits[i])
            except Exception as exc:  # noqa: BLE001 - one row's failure (e.g. NaN logits) ends only that row
                request.fail(EngineError(f"This answer failed: {type(exc).__name__}: {exc}"))
                token = 0
            else:
                self._emit(request, token)
            tokens.append(token)
        self.next_tokens = torch.tensor(tokens, device=self.device)[:, None]
        self.positions = self.positions + 1

    def _sample(self, request: Request, logits: torch.Tensor) -> int:
        previous = torch.tensor(request.ids[-64:] + request.generated[-64:], dtype=torch.long)
        return sample_next(logits.float().cpu(), request.config, request.generator, previous)

    def _emit(self, request: Request, token: int) -> bool:
        """Hand a token to the reader; True when the request is finished (EOS, budget or Stop)."""
        reason = self.scheduler.finish_reason(request, token)
        if reason != "stop":
            request.generated.append(token)
            request.out.put(token)
        if reason is not None:
            request.finish(reason)
        return reason is not None

    def _drop_finished(self) -> None:
        keep = self.scheduler.keep(self.rows)
        if len(keep) == len(self.rows):
            return
        for i, request in enumerate(self.rows):
            if i not in keep:
                request.finish("cancelled")  # harmless if the reader already has its end
        if not keep:
            self._reset()
            return
        index = torch.tensor(keep, device=self.device)
        self.rows = [self.rows[i] for i in keep]
        self.mask = self.mask.index_select(0, index)
        self.next_tokens = self.next_tokens.index_select(0, index)
        self.positions = self.positions.index_select(0, index)
        for layer in _layers(self.cache) or ():
            layer.keys, layer.values = layer.keys.index_select(0, index), layer.values.index_select(0, index)
        self._trim()

    def _trim(self) -> None:
        """Drop the leading columns that are padding in every row (the cache and the mask)."""
        first_real = int(self.mask.any(dim=0).nonzero()[0])
        if first_real == 0:
            return
        for layer in _layers(self.cache) or ():
            layer.keys, layer.values = layer.keys[:, :, first_real:], layer.values[:, :, first_real:]
            if hasattr(layer, "cumulative_length"):
                layer.cumulative_length -= first_real
        self.mask = self.mask[:, first_real:]

    def _reset(self) -> None:
        self.rows, self.cache, self.mask, self.next_tokens, self.positions = [], None, None, None, None


_engines: "weakref.WeakKeyDictionary[torch.nn.Module, Engine]" = weakref.WeakKeyDictionary()
_engines_lock = threading.Lock()


def engine_for(module: torch.nn.Module, lock: threading.Lock) -> Engine:
    """The one engine of this module (created on first use, gone with the module)."""
    with _engines_lock:
        engine = _engines.get(module)
        if engine is None:
            engine = _engines[module] = Engine(module, lock)
        return engine
