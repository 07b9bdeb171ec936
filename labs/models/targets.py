"""LoRA target names: each architecture family names its projections differently in transformers."""
from __future__ import annotations

import torch


# ---------------------------------------------------------------------------------------------------------
# LoRA target names come from the architecture: each family names its projections differently in transformers.
# ---------------------------------------------------------------------------------------------------------
_LLAMA_LIKE = (("q_proj", "k_proj", "v_proj", "o_proj"), ("gate_proj", "up_proj", "down_proj"))
LORA_TARGETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # model_type -> (attention, MLP)
    **{t: _LLAMA_LIKE for t in ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gemma3_text",
                                "olmo", "olmo2", "granite", "smollm3")},
    "phi": (("q_proj", "k_proj", "v_proj", "dense"), ("fc1", "fc2")),
    "phi3": (("qkv_proj", "o_proj"), ("gate_up_proj", "down_proj")),
    "gpt2": (("c_attn", "c_proj"), ("c_fc",)),  # GPT-2's attn.c_proj and mlp.c_proj share one name
    "gpt_neox": (("query_key_value", "dense"), ("dense_h_to_4h", "dense_4h_to_h")),
}


def lora_targets(model: torch.nn.Module) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(attention, MLP) module names LoRA can adapt in this model: from its architecture's naming, kept only where
    the model really has them; an unknown architecture lists the Linear layers found inside its blocks."""
    model_type = getattr(getattr(model, "config", None), "model_type", "")
    leaves = set()
    for name, module in model.named_modules():
        kind = type(module).__name__
        if (isinstance(module, torch.nn.Linear) or kind == "Conv1D") and "." in name:
            leaves.add(name.rsplit(".", 1)[-1])
    if model_type in LORA_TARGETS:
        attention, mlp = LORA_TARGETS[model_type]
        return tuple(t for t in attention if t in leaves), tuple(t for t in mlp if t in leaves)
    found = tuple(sorted(leaves - {"lm_head", "score", "classifier", "embed_out"}))
    return found, ()
