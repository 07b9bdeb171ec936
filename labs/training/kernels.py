"""How a training copy computes best on this hardware while it trains (labs.training.loop.fit runs inside):
the same values up to float rounding, and the model exactly as it was afterwards."""
from __future__ import annotations

import contextlib

import torch

from labs.training.loop import causal_parts, decoder_layers, uses_bf16


@contextlib.contextmanager
def training_kernels(model: torch.nn.Module, device, precision: str):
    """Within: how a training copy computes best on this hardware, the same values up to float rounding.

    * Attention as plain matmuls and a softmax ("eager") instead of the fused SDPA kernel, on a CPU: for the short
      rows the labs train on (about 100 tokens) the fused kernel's backward pass costs more than the rest of a block
      (6.5 ms per block for 4 rows of 93 tokens); a SmolLM2 LoRA step took 0.35-0.39 s eager vs 0.46-0.55 s fused
      (median of 12 steps, alternating). On a GPU the fused kernel wins and stays.
    * Under bf16 autocast, the frozen Linear weights of the decoder blocks are held in bfloat16 (autocast casts a
      frozen weight again at every use, about a tenth of a CPU step): the same bf16 values the cast would give, so
      the same products, bit for bit.
    Afterwards the copy gets its kernel and float32 weights back: it decodes and scores like the shared model, and
    its "before" answers (adapter off) equal the shared model's exactly."""
    config = getattr(model, "config", None)
    kernel = getattr(config, "_attn_implementation", None)
    cpu = next(model.parameters()).device.type == "cpu"
    switch = kernel == "sdpa" and cpu and hasattr(model, "set_attn_implementation")
    frozen: list[tuple[torch.nn.Parameter, torch.Tensor]] = []
    if uses_bf16(device, precision):
        try:
            layers = decoder_layers(causal_parts(model)[0])
        except AttributeError:  # not a body-and-head LM with blocks (a custom model): weights as they are
            layers = []
        for layer in layers:
            for module in layer.modules():
                w = getattr(module, "weight", None)
                if isinstance(module, torch.nn.Linear) and w.dtype == torch.float32 and not w.requires_grad:
                    frozen.append((w, w.data))
    try:
        if switch:
            model.set_attn_implementation("eager")
        for w, data in frozen:
            w.data = data.to(torch.bfloat16)
        yield
    finally:
        for w, data in frozen:
            w.data = data
        if switch:
            model.set_attn_implementation(kernel)
