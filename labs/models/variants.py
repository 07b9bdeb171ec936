"""Decode variants: read-only copies of a loaded model for generation (bfloat16, int8 weights, int8 dynamic).
Which one serves is LLMLAB_DECODE, or on a CPU the choice of labs.serving.decode_gate (perplexity within +2 % of float32)."""
from __future__ import annotations

import copy
import os
import threading
import warnings

import torch
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

from labs.core.errors import ModelError


_variant_lock = threading.Lock()  # one copy is made at a time (each holds a whole model)


DECODE_VARIANTS = ("float32", "bfloat16", "int8_weight", "int8_dynamic")


class Int8WeightLinear(torch.nn.Module):
    """A Linear whose weights are int8 with one float scale per output row; activations stay float.

    W ≈ scale[:, None] * W_int8 with scale = max|W_row| / 127 (symmetric, per output channel). Decoding one token
    reads every weight once, so a quarter of the bytes means less time waiting on memory; the matmul is torch's
    weight-only int8 kernel (`_weight_int8pack_mm`, the one gpt-fast uses)."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        w = linear.weight.detach().float()  # (out, in)
        scale = (w.abs().amax(dim=1) / 127).clamp(min=1e-8)  # (out,)
        self.register_buffer("weight_int8", torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float())
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., in) -> (..., out): int8 weights times float x, per-row scales, plus the bias."""
        shape = x.shape
        y = torch._weight_int8pack_mm(x.reshape(-1, shape[-1]).float().contiguous(), self.weight_int8, self.scale)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)


def _int8_weight_copy(model: torch.nn.Module) -> torch.nn.Module:
    variant = copy.deepcopy(model)
    for parent in list(variant.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Linear):
                setattr(parent, name, Int8WeightLinear(child))
    return variant.eval()


def forced_decode() -> str:
    """LLMLAB_DECODE if set (one of DECODE_VARIANTS), else 'float32': the shared model as loaded. On a CPU,
    labs.serving.decode_gate may pick a faster variant that passes the quality gate."""
    forced = os.environ.get("LLMLAB_DECODE", "").strip()
    if forced and forced not in DECODE_VARIANTS:
        raise ModelError(f"LLMLAB_DECODE={forced} is not one of {DECODE_VARIANTS}.")
    return forced or "float32"


def decode_variant(lm, name: str) -> torch.nn.Module:
    """A read-only module for generation: 'float32' is the shared model itself (in its loaded dtype);
    'bfloat16' a bf16 copy; 'int8_weight' a copy with int8 weights and float activations; 'int8_dynamic' a copy
    whose Linear layers quantise activations too (CPU only)."""
    if name == "float32" or (name in ("int8_dynamic", "int8_weight") and lm.device != "cpu"):
        return lm.model
    with _variant_lock:
        if name not in lm._variants:
            if name == "bfloat16":
                variant = copy.deepcopy(lm.model).to(torch.bfloat16).eval()
            elif name == "int8_weight":
                variant = _int8_weight_copy(lm.model)
            elif name == "int8_dynamic":
                # Per output channel scales: one scale per tensor flips SmolLM2's answers (outlier rows).
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    variant = quantize_dynamic(copy.deepcopy(lm.model), {torch.nn.Linear: per_channel_dynamic_qconfig},
                                               dtype=torch.qint8).eval()
            else:
                raise ModelError(f"Unknown decode variant {name}; choose from {DECODE_VARIANTS}.")
            lm._variants[name] = variant
        return lm._variants[name]
