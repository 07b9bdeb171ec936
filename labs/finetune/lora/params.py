"""LoRA by the numbers (no weights needed): an architecture's matrices, trainable parameters per rank and target,
the GPT-3 reduction of the paper, and the plans of the rank sweep and the which-matrices comparison (Tables 5, 6)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from labs import models
from labs.core.errors import ConfigError
from labs.models.targets import LORA_TARGETS
from labs.runs import lessons


# Projection names shared by the Llama (SmolLM2) and Gemma-3 implementations in transformers.
ATTENTION_TARGETS, MLP_TARGETS = LORA_TARGETS["llama"]  # the one list (labs.models.targets); Gemma's are the same
ALL_TARGETS = ATTENTION_TARGETS + MLP_TARGETS
TARGET_NAMES = {"q_proj": "W_q", "k_proj": "W_k", "v_proj": "W_v", "o_proj": "W_o",
                "gate_proj": "W_gate", "up_proj": "W_up", "down_proj": "W_down",
                # other families' names for the same matrices (models.LORA_TARGETS)
                "qkv_proj": "W_qkv", "c_attn": "W_qkv", "query_key_value": "W_qkv", "dense": "W_o",
                "c_proj": "W_o / W_down", "gate_up_proj": "W_gate+up", "fc1": "W_up", "fc2": "W_down",
                "c_fc": "W_up", "dense_h_to_4h": "W_up", "dense_4h_to_h": "W_down"}
RANK_CHOICES = (1, 2, 4, 8, 16, 64)  # the paper's Table 6 uses r ∈ {1, 2, 4, 8, 64}
# init_lora_weights values that run on a CPU in seconds (PiSSA/OLoRA do an SVD/QR of W0 at init).
INIT_CHOICES = ("gaussian", "default", "pissa_niter_4", "olora")


# ---------------------------------------------------------------------------------------------------
# 1. Parameter calculator (no weights needed)
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Architecture:
    """The shapes LoRA cares about: every layer has the same projections, W ∈ R^{d×k} (out × in)."""

    name: str
    layers: int
    matrices: dict[str, tuple[int, int]]  # target -> (d out, k in), per layer
    total_params: int
    source: str  # where the numbers come from

    def shape(self, target: str) -> tuple[int, int]:
        """(d out, k in) of one target matrix, per layer; ValueError naming the matrices if it has none."""
        if target not in self.matrices:
            raise ConfigError(f"{self.name} has no matrix '{target}'. It has: {', '.join(self.matrices)}.")
        return self.matrices[target]


def architecture_of(model: torch.nn.Module, name: str = "model", source: str = "the model's modules") -> Architecture:
    """Read the projection shapes from a live (or meta-device) model; layers are `...layers.<i>.<...>.<target>`
    (`...h.<i>...` in GPT-2). The target names are the architecture's own (models.lora_targets)."""
    attention, mlp = models.lora_targets(model)
    names = attention + mlp
    matrices: dict[str, tuple[int, int]] = {}
    layer_ids = set()
    for mod_name, module in model.named_modules():
        leaf = mod_name.rsplit(".", 1)[-1]
        block = re.search(r"\.(?:layers|h|blocks)\.(\d+)\.", mod_name)
        if leaf not in names or block is None:
            continue
        if isinstance(module, torch.nn.Linear):
            shape = (module.out_features, module.in_features)
        elif type(module).__name__ == "Conv1D":  # GPT-2 stores W transposed: weight is (in, out)
            shape = (module.weight.shape[1], module.weight.shape[0])
        else:
            continue
        layer_ids.add(int(block.group(1)))
        matrices.setdefault(leaf, shape)
    ordered = {t: matrices[t] for t in names if t in matrices}
    return Architecture(name, len(layer_ids), ordered, sum(p.numel() for p in model.parameters()), source)


def model_architecture(key: str) -> Architecture:
    """Exact shapes and parameter count of a registry model, built on the meta device (no weights, instant)."""
    spec = models.spec(key)
    folder = models.cache_dir(key)
    if not (folder / "config.json").exists():
        models.ensure_cached(key)
    config = AutoConfig.from_pretrained(str(folder))
    with torch.device("meta"):
        meta = AutoModelForCausalLM.from_config(config)
    return architecture_of(meta, spec.display_name, f"{spec.display_name} config.json")


def gpt_like(hidden: int = 12288, layers: int = 96, ffn: int | None = None, vocab: int = 50257,
             context: int = 2048, name: str = "GPT-3 175B") -> Architecture:
    """A GPT-3-style transformer from its dimensions (Brown et al. 2020, Table 2.1: d_model 12,288, 96 layers,
    d_ff = 4 d_model, context 2,048). Square attention projections; the MLP is up (d_ff×d) and down (d×d_ff)."""
    if min(hidden, layers, vocab, context) < 1:
        raise ConfigError("Hidden size, layers, vocabulary and context must all be at least 1.")
    ffn = ffn or 4 * hidden
    matrices = {"q_proj": (hidden, hidden), "k_proj": (hidden, hidden), "v_proj": (hidden, hidden),
                "o_proj": (hidden, hidden), "up_proj": (ffn, hidden), "down_proj": (hidden, ffn)}
    per_layer = 4 * hidden * hidden + 2 * hidden * ffn + 4 * hidden + ffn + hidden + 4 * hidden  # weights, biases, 2 LNs
    total = layers * per_layer + (vocab + context) * hidden + 2 * hidden
    return Architecture(name, layers, matrices, total, "computed from the dimensions")


GPT3 = dict(hidden=12288, layers=96, ffn=49152, vocab=50257, context=2048)


@dataclass(frozen=True)
class ParameterCount:
    """LoRA's trainable parameters against the whole model's, with the storage they take (bytes_per_param each)."""

    rows: list[dict]  # one per target: matrix shape, layers, LoRA parameters
    lora_params: int
    total_params: int
    bytes_per_param: int

    @property
    def fraction(self) -> float:
        """LoRA parameters as a fraction (0-1) of the model's total."""
        return self.lora_params / self.total_params

    @property
    def reduction(self) -> float:
        """How many times fewer trainable parameters than full fine-tuning."""
        return self.total_params / max(self.lora_params, 1)

    @property
    def adapter_bytes(self) -> int:
        """Size of the saved adapter, in bytes."""
        return self.lora_params * self.bytes_per_param

    @property
    def full_bytes(self) -> int:
        """Size of one full copy of the model's weights, in bytes."""
        return self.total_params * self.bytes_per_param

    def storage_for_tasks(self, n_tasks: int) -> dict:
        """n task-specific models as n full copies vs one base model plus n adapters (Section 4.2)."""
        return {"full copies": n_tasks * self.full_bytes, "base + adapters": self.full_bytes + n_tasks * self.adapter_bytes}

    def training_memory(self) -> dict:
        """Weights + gradients + Adam's two moments, all fp32 (16 bytes per trained parameter); LoRA keeps the
        frozen weights (bytes_per_param each) and trains only the adapter. Activations not counted."""
        full = self.total_params * 16
        lora = self.total_params * self.bytes_per_param + self.lora_params * 16
        return {"full fine-tuning": full, "LoRA": lora}


def lora_parameter_count(arch: Architecture, targets: Sequence[str], r: int, layers: int | None = None,
                         use_dora: bool = False, bytes_per_param: int = 2) -> ParameterCount:
    """Trainable parameters of LoRA: per adapted matrix A (r×k) + B (d×r) = r (d + k); DoRA adds a magnitude
    vector of d per matrix (Liu et al. 2024). `layers` = how many layers are adapted (None = all)."""
    validate_rank_targets(arch, targets, r)
    n_layers = arch.layers if layers in (None, 0) else int(layers)
    if not 1 <= n_layers <= arch.layers:
        raise ConfigError(f"Layers to adapt must be between 1 and {arch.layers} (0 means all).")
    rows = []
    for t in targets:
        d, k = arch.shape(t)
        per_matrix = r * (d + k) + (d if use_dora else 0)
        rows.append({"matrix": TARGET_NAMES.get(t, t), "target": t, "d (out)": d, "k (in)": k, "layers": n_layers,
                     "per layer": per_matrix, "LoRA params": per_matrix * n_layers,
                     "full matrix params": d * k * n_layers})
    return ParameterCount(rows, sum(row["LoRA params"] for row in rows), arch.total_params, bytes_per_param)


def validate_rank_targets(arch: Architecture, targets: Sequence[str], r: int) -> None:
    """The page's bad-input checks, in words: no target, unknown target, r = 0 or r above the matrix rank."""
    if not targets:
        raise ConfigError("Pick at least one weight matrix to adapt (the paper adapts W_q and W_v).")
    unknown = [t for t in targets if t not in arch.matrices]
    if unknown:
        raise ConfigError(f"{arch.name} has no {', '.join(unknown)}; choose from {', '.join(arch.matrices)}.")
    if r < 1:
        raise ConfigError("The rank r must be at least 1: r = 0 would mean no update at all.")
    limit = min(min(arch.shape(t)) for t in targets)
    if r > limit:
        raise ConfigError(f"r = {r} is larger than the smallest chosen matrix allows (min(d, k) = {limit}): "
                         f"a rank above min(d, k) adds parameters but no expressive power. Use r ≤ {limit}.")


def gpt3_reduction(r: int = 4, targets: Sequence[str] = ("q_proj", "v_proj")) -> dict:
    """The lecture's figure from the dimensions alone: GPT-3 175B with LoRA r = 4 on W_q and W_v
    (Section 4.2: checkpoint 350 GB -> 35 MB, "10,000×" fewer trainable parameters)."""
    count = lora_parameter_count(gpt_like(**GPT3), targets, r)
    return {"lora_params": count.lora_params, "total_params": count.total_params, "reduction": count.reduction,
            "full_fp32_gb": count.total_params * 4 / 1e9, "full_fp16_gb": count.total_params * 2 / 1e9,
            "adapter_fp16_mb": count.lora_params * 2 / 1e6}


def rank_for_budget(arch: Architecture, targets: Sequence[str], budget: int, layers: int | None = None) -> int:
    """The rank that spends (about) `budget` parameters on these targets — the paper's Table 5 set-up,
    where a fixed budget buys r = 8 on one matrix type, r = 4 on two, r = 2 on four."""
    n_layers = arch.layers if not layers else layers
    per_rank = sum(sum(arch.shape(t)) for t in targets) * n_layers
    return max(1, round(budget / per_rank))


SWEEP_RANKS = (1, 8)  # the rank sweep's default: the paper's smallest and its r = 8 (Table 6), the two C6 compares
MATRIX_CHOICES = {"W_q": ("q_proj",), "W_k": ("k_proj",), "W_v": ("v_proj",), "W_o": ("o_proj",),
                  "W_q+W_k": ("q_proj", "k_proj"), "W_q+W_v": ("q_proj", "v_proj"), "all four": ATTENTION_TARGETS}
BUDGET_RANK = 8  # the budget of the which-matrices comparison: r = 8 on W_q alone (Table 5 spends r = 8 on one type)


def equal_budget_plan(arch: Architecture, names: Sequence[str], budget_r: int = BUDGET_RANK,
                      last_layers: int = 8) -> list[tuple[str, tuple[str, ...], int]]:
    """[(name, targets, rank)]: each configuration of MATRIX_CHOICES at the parameter count of rank `budget_r`
    on W_q alone over the top `last_layers` layers."""
    layers = min(last_layers, arch.layers) or None
    budget = lora_parameter_count(arch, ["q_proj"], int(budget_r), layers).lora_params
    return [(n, MATRIX_CHOICES[n], rank_for_budget(arch, MATRIX_CHOICES[n], budget, layers)) for n in names]


def rank_verdict(summaries: Sequence[Mapping]):
    """C6 from finished rank-sweep runs (their summaries): labs.runs.lessons.low_rank_suffices on the task score."""
    scores = {int(s["r"]): s["task_score_after"] for s in summaries if s.get("task_score_after") is not None}
    return lessons.low_rank_suffices(scores, losses={int(s["r"]): s["final_val_loss"] for s in summaries
                                                     if s.get("final_val_loss") is not None})


def qv_verdict(qv: Mapping | None, q: Mapping | None):
    """C7 from the summaries of the W_q+W_v and the W_q-alone runs at an equal budget."""
    if not qv or not q:
        return lessons.not_measured("C7", "needs a finished W_q run and a finished W_q+W_v run at the same budget")
    return lessons.qv_beats_q(qv.get("task_score_after"), q.get("task_score_after"),
                              loss_qv=qv.get("final_val_loss"), loss_q=q.get("final_val_loss"),
                              params_qv=qv.get("trainable_params"), params_q=q.get("trainable_params"))
