"""The frozen prefix: when only the top blocks of a model train (LoRA on the top K blocks, or the last N blocks), the
blocks below compute the same hidden states for a row at every epoch, every validation pass and every run of a
sweep. They are computed once per row and replayed, so a step costs the top blocks only.

    with prefix.around(input_ids, attention_mask):   # inside: blocks 0..start-1 hand back the stored states
        hidden = body(input_ids=..., attention_mask=...)

Rows are right-padded (training.collate): a real position never attends to a pad, so a row's states do not depend
on the batch it came in, and a replayed batch is the rows' stored states with zeros where the pads were. The values
equal the plain forward's up to the float rounding of another batch shape (tested, with the gradients).
"""
from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from typing import Iterator

import torch
from torch import nn

from labs.training.loop import causal_parts, decoder_layers

LIMIT_BYTES = 512 * 2**20  # stored states, all models together (a 100-token SmolLM2 row is 230 kB)
_STORE: OrderedDict[tuple, torch.Tensor] = OrderedDict()  # (owner, start, autocast, row's token ids) -> (L, M)
_LOCK = threading.Lock()
_bytes = 0


class _Replay(nn.Module):
    """Stands in for block 0: the batch's stored states at the input of block `start`."""

    def __init__(self, hidden: torch.Tensor):
        super().__init__()
        self.hidden = hidden

    def forward(self, hidden_states, *args, **kwargs):
        return self.hidden


class _Skip(nn.Module):
    """Stands in for blocks 1..start-1 (the states are already past them)."""

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states


class _Reached(Exception):
    """Raised by the capture hook at block `start`: the rest of the forward is not needed."""

    def __init__(self, hidden: torch.Tensor):
        self.hidden = hidden


def first_trained_block(model: nn.Module) -> int:
    """Index of the lowest decoder block with a trainable weight (0 if the embeddings train, L if no block does)."""
    body = causal_parts(model)[0]
    embed = getattr(body, "embed_tokens", None)
    if embed is not None and any(p.requires_grad for p in embed.parameters()):
        return 0
    layers = decoder_layers(body)
    return next((i for i, layer in enumerate(layers) if any(p.requires_grad for p in layer.parameters())), len(layers))


def stored_bytes() -> int:
    return _bytes


def clear() -> None:
    global _bytes
    with _LOCK:
        _STORE.clear()
        _bytes = 0


def _store(key: tuple, value: torch.Tensor) -> None:
    global _bytes
    size = value.numel() * value.element_size()
    with _LOCK:
        if key in _STORE or size > LIMIT_BYTES:
            return
        _STORE[key] = value
        _bytes += size
        while _bytes > LIMIT_BYTES:
            _, old = _STORE.popitem(last=False)
            _bytes -= old.numel() * old.element_size()


def _lookup(key: tuple) -> torch.Tensor | None:
    with _LOCK:
        value = _STORE.get(key)
        if value is not None:
            _STORE.move_to_end(key)
        return value


class FrozenPrefix:
    """The stored states of one model's frozen blocks 0..start-1.

    owner: what makes two models' bottom blocks the same (the shared base model's registry key and identity: every
    trainable copy of it shares the states). start: the first block that trains (default: found from requires_grad).
    A start of 0 (everything trains) or L (nothing does) turns the cache off."""

    def __init__(self, model: nn.Module, owner: tuple, start: int | None = None):
        self.model = model
        try:
            self.body = causal_parts(model)[0]
            self.layers = decoder_layers(self.body)
        except AttributeError:  # not a body-and-head LM with blocks under .layers (GPT-2's .h): the plain forward
            self.body, self.layers, self.start = model, [], 0
        else:
            self.start = first_trained_block(model) if start is None else start
        dtype = next(model.parameters()).dtype
        self.owner = (*owner, self.start, str(dtype))
        self.captured = self.replayed = 0  # rows computed through the bottom blocks / served from the store

    def usable(self) -> bool:
        if not 0 < self.start < len(self.layers):
            return False
        config = getattr(self.body, "config", None)
        return not (self.model.training and getattr(config, "attention_dropout", 0.0))  # dropout: not the same twice

    @contextlib.contextmanager
    def around(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> Iterator[bool]:
        """Within the block, a forward of exactly this batch skips blocks 0..start-1; yields whether it does."""
        hidden = self.states(input_ids, attention_mask) if self.usable() else None
        if hidden is None:
            yield False
            return
        saved = [self.layers[i] for i in range(self.start)]
        self.layers[0] = _Replay(hidden)
        for i in range(1, self.start):
            self.layers[i] = _Skip()
        try:
            yield True
        finally:
            for i, layer in enumerate(saved):
                self.layers[i] = layer

    def states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor | None:
        """(B, T, M) states at the input of block `start` (zeros at pads); None if the batch is not right-padded."""
        B, T = input_ids.shape
        if attention_mask is None:
            lengths = [T] * B
        else:
            lengths_t = attention_mask.sum(1)
            right_padded = torch.arange(T, device=attention_mask.device) < lengths_t[:, None]
            if not bool((attention_mask.bool() == right_padded).all()):
                return None  # left padding or holes: a row's states would depend on its batch
            lengths = [int(n) for n in lengths_t]
        device = input_ids.device
        amp = (torch.is_autocast_enabled(device.type), str(torch.get_autocast_dtype(device.type)))
        keys = [(self.owner, amp, tuple(input_ids[b, :lengths[b]].tolist())) for b in range(B)]
        found = {k: _lookup(k) for k in set(keys)}
        missing = [k for k, v in found.items() if v is None]
        if missing:
            found.update(self._capture(missing, device))
        self.captured += len(missing)
        self.replayed += B - len(missing)
        first = next(iter(found.values()))
        out = torch.zeros((B, T, first.shape[-1]), dtype=first.dtype, device=device)
        for b, key in enumerate(keys):
            out[b, :lengths[b]] = found[key]
        return out

    @torch.no_grad()
    def _capture(self, keys: list[tuple], device) -> dict[tuple, torch.Tensor]:
        """Run the missing rows (right-padded) up to block `start` and store each row's states."""
        rows = [k[-1] for k in keys]
        T = max(len(r) for r in rows)
        ids = torch.zeros((len(rows), T), dtype=torch.long, device=device)
        mask = torch.zeros((len(rows), T), dtype=torch.long, device=device)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r, device=device)
            mask[i, :len(r)] = 1

        def reached(module, args, kwargs):
            raise _Reached(args[0] if args else kwargs["hidden_states"])

        handle = self.layers[self.start].register_forward_pre_hook(reached, with_kwargs=True)
        try:
            self.body(input_ids=ids, attention_mask=mask, use_cache=False)
            raise RuntimeError("The forward pass never reached the first trained block.")
        except _Reached as got:
            hidden = got.hidden.detach()
        finally:
            handle.remove()
        out = {}
        for i, (key, r) in enumerate(zip(keys, rows)):
            out[key] = hidden[i, :len(r)].clone()
            _store(key, out[key])
        return out
