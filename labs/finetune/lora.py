"""LoRA rank explorer: parameter arithmetic, rank sweeps, and what the update ΔW = BA really learns.

Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models" (arXiv:2106.09685). Freeze W0 ∈ R^{d×k}
and learn ΔW = B A with B ∈ R^{d×r}, A ∈ R^{r×k}, r ≪ min(d, k) (Section 4.1, eq. 3):

    h = W0 x + ΔW x = W0 x + (α / r) · B A x          A ~ Gaussian, B = 0 at the start, so ΔW = 0 at step 0.

Shape legend: d = out features, k = in features, r = rank, L = layers, T = tokens, V = vocabulary.
PEFT does the LoRA; this module holds the lesson: how many parameters, which matrices, which rank, and
the analysis of the trained ΔW (Section 7: spectra, subspace similarity, relation to W0).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch

from labs import models

# Projection names shared by the Llama (SmolLM2) and Gemma-3 implementations in transformers.
ATTENTION_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_TARGETS = ("gate_proj", "up_proj", "down_proj")
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
            raise ValueError(f"{self.name} has no matrix '{target}'. It has: {', '.join(self.matrices)}.")
        return self.matrices[target]


def architecture_of(model: torch.nn.Module, name: str = "model", source: str = "the model's modules") -> Architecture:
    """Read the projection shapes from a live (or meta-device) model; layers are `...layers.<i>.<...>.<target>`
    (`...h.<i>...` in GPT-2). The target names are the architecture's own (models.lora_targets)."""
    import re

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
    from transformers import AutoConfig, AutoModelForCausalLM

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
        raise ValueError("Hidden size, layers, vocabulary and context must all be at least 1.")
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
        raise ValueError(f"Layers to adapt must be between 1 and {arch.layers} (0 means all).")
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
        raise ValueError("Pick at least one weight matrix to adapt (the paper adapts W_q and W_v).")
    unknown = [t for t in targets if t not in arch.matrices]
    if unknown:
        raise ValueError(f"{arch.name} has no {', '.join(unknown)}; choose from {', '.join(arch.matrices)}.")
    if r < 1:
        raise ValueError("The rank r must be at least 1: r = 0 would mean no update at all.")
    limit = min(min(arch.shape(t)) for t in targets)
    if r > limit:
        raise ValueError(f"r = {r} is larger than the smallest chosen matrix allows (min(d, k) = {limit}): "
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


SWEEP_RANKS = (1, 8, 64)  # the rank sweep's default: the paper's smallest, its r = 8, and a large one (Table 6)
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
    from labs.runs import lessons

    scores = {int(s["r"]): s["task_score_after"] for s in summaries if s.get("task_score_after") is not None}
    return lessons.low_rank_suffices(scores, losses={int(s["r"]): s["final_val_loss"] for s in summaries
                                                     if s.get("final_val_loss") is not None})


def qv_verdict(qv: Mapping | None, q: Mapping | None):
    """C7 from the summaries of the W_q+W_v and the W_q-alone runs at an equal budget."""
    from labs.runs import lessons

    if not qv or not q:
        return lessons.not_measured("C7", "needs a finished W_q run and a finished W_q+W_v run at the same budget")
    return lessons.qv_beats_q(qv.get("task_score_after"), q.get("task_score_after"),
                              loss_qv=qv.get("final_val_loss"), loss_q=q.get("final_val_loss"),
                              params_qv=qv.get("trainable_params"), params_q=q.get("trainable_params"))


# ---------------------------------------------------------------------------------------------------
# 3. Inside ΔW (Section 7): spectra, effective rank, subspace similarity, relation to W0
# ---------------------------------------------------------------------------------------------------
def singular_values(matrix: torch.Tensor) -> torch.Tensor:
    """Singular values of a (d×k) matrix in fp32, largest first: (min(d, k),)."""
    return torch.linalg.svdvals(matrix.detach().float())


def effective_rank(s: torch.Tensor) -> float:
    """Roy & Vetterli 2007: exp of the entropy of the normalised singular values (1 for rank one, r for r
    equal singular values) — a smooth count of how many directions the update really uses."""
    s = s.float().clamp_min(0)
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def energy_rank(s: torch.Tensor, energy: float = 0.9) -> int:
    """How many singular directions hold `energy` of ||ΔW||_F² (0 for a zero matrix)."""
    sq = s.float() ** 2
    if sq.sum() <= 0:
        return 0
    cumulative = torch.cumsum(sq, 0) / sq.sum()
    return int((cumulative < energy).sum()) + 1


def right_singular_vectors(matrix: torch.Tensor) -> torch.Tensor:
    """Columns = right-singular vectors of an (r×k) matrix, strongest first: (k, r)."""
    _, _, vh = torch.linalg.svd(matrix.detach().double(), full_matrices=False)
    return vh.T


def subspace_similarity(a1: torch.Tensor, a2: torch.Tensor, i: int, j: int) -> float:
    """Hu et al. 2021, Section 7.2, eq. 4: the normalised subspace similarity based on the Grassmann distance

        φ(A1, A2, i, j) = ||U_{A1}^{i⊤} U_{A2}^{j}||_F² / min(i, j)  ∈ [0, 1]

    where U_A^i are the top-i right-singular vectors of A (rows of A live in R^k). 1 = one subspace contains
    the other; 0 = orthogonal."""
    u1, u2 = right_singular_vectors(a1), right_singular_vectors(a2)
    if not (1 <= i <= u1.shape[1] and 1 <= j <= u2.shape[1]):
        raise ValueError(f"i must be in 1..{u1.shape[1]} and j in 1..{u2.shape[1]}.")
    overlap = u1[:, :i].T @ u2[:, :j]  # (i, j)
    return float((overlap ** 2).sum() / min(i, j))


def similarity_grid(a1: torch.Tensor, a2: torch.Tensor, max_i: int | None = None, max_j: int | None = None) -> list[list[float]]:
    """φ(A1, A2, i, j) for i = 1..max_i (rows), j = 1..max_j (columns) — the paper's Figure 3 heatmap."""
    u1, u2 = right_singular_vectors(a1), right_singular_vectors(a2)
    max_i, max_j = min(max_i or u1.shape[1], u1.shape[1]), min(max_j or u2.shape[1], u2.shape[1])
    overlap_sq = (u1[:, :max_i].T @ u2[:, :max_j]) ** 2  # (i, j)
    cumulative = overlap_sq.cumsum(0).cumsum(1)  # ||U1^{i⊤} U2^{j}||_F² for every (i, j) at once
    return [[float(cumulative[i, j] / min(i + 1, j + 1)) for j in range(max_j)] for i in range(max_i)]


def w0_projection(w0: torch.Tensor, delta: torch.Tensor, r: int | None = None, seed: int = 0) -> dict:
    """Section 7.3 / Table 7: project W0 onto the r-dimensional subspace of ΔW, ||U^⊤ W0 V^⊤||_F, with U, V the
    left/right top-r singular vectors of ΔW; compare with W0's own top-r directions and random directions.
    amplification = ||ΔW||_F / ||U^⊤ W0 V^⊤||_F: ΔW amplifies directions W0 already had but did not emphasise."""
    w0, delta = w0.detach().double(), delta.detach().double()
    r = r or max(1, energy_rank(torch.linalg.svdvals(delta), 0.999))
    u, s, vh = torch.linalg.svd(delta, full_matrices=False)
    u, vh = u[:, :r], vh[:r]
    on_delta = float(torch.linalg.norm(u.T @ w0 @ vh.T))
    u0, _, vh0 = torch.linalg.svd(w0, full_matrices=False)
    on_w0 = float(torch.linalg.norm(u0[:, :r].T @ w0 @ vh0[:r].T))
    g = torch.Generator().manual_seed(seed)
    ur = torch.linalg.qr(torch.randn(w0.shape[0], r, generator=g, dtype=torch.double))[0]
    vr = torch.linalg.qr(torch.randn(w0.shape[1], r, generator=g, dtype=torch.double))[0]
    on_random = float(torch.linalg.norm(ur.T @ w0 @ vr))
    delta_norm = float(torch.linalg.norm(delta))
    return {"r": r, "||W0||_F": float(torch.linalg.norm(w0)), "||ΔW||_F": delta_norm,
            "||U^T W0 V^T||_F (ΔW directions)": on_delta, "||U^T W0 V^T||_F (W0's top directions)": on_w0,
            "||U^T W0 V^T||_F (random directions)": on_random,
            "amplification": delta_norm / on_delta if on_delta > 0 else float("inf")}


# ---------------------------------------------------------------------------------------------------
# 2. Training one adapter (one point of a rank sweep / one row of the "which matrices" table)
# ---------------------------------------------------------------------------------------------------
TASKS = {
    "tldr": "The project's TL;DR answer-card instructions (assets/sft/, shared with the fine-tuning lab): "
            "learn to answer 'TL;DR: …' then bullets.",
    "arithmetic": "Two-number sums answered in one fixed sentence (generated, exact answers).",
}


def arithmetic_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """A tiny task whose answer format the model must learn: 'What is 17 + 25?' -> '17 + 25 = 42.'
    Generated (no dataset needed); disjoint train / held-out sets come from different seeds."""
    g = torch.Generator().manual_seed(seed)
    pairs = []
    for _ in range(n):
        a, b = (int(x) for x in torch.randint(2, 99, (2,), generator=g))
        pairs.append((f"What is {a} + {b}?", f"{a} + {b} = {a + b}."))
    return pairs


def task_pairs(task: str, n_train: int, n_eval: int, seed: int = 0) -> tuple[list[tuple], list[tuple]]:
    """(train, held-out) lists of (prompt, response); a prompt is a string or a list of chat messages."""
    if task == "tldr":
        import random

        from labs.data.instructions import bundled

        train, held = bundled()
        train = random.Random(seed).sample(train, min(n_train, len(train)))
        return [(ex.messages(), ex.output) for ex in train], [(ex.messages(), ex.output) for ex in held[:n_eval]]
    if task == "arithmetic":
        train = arithmetic_pairs(n_train, seed)
        seen = set(train)
        held = [p for p in arithmetic_pairs(n_eval * 3, seed + 10_000) if p not in seen][:n_eval]
        return train, held
    raise ValueError(f"Unknown task '{task}'. Choose from: {', '.join(TASKS)}.")


def task_success(task: str, prompt, answer: str, reference: str) -> bool:
    """Did a greedy answer do the task? tldr: the answer card's format (the fine-tuning lab's check);
    arithmetic: the correct sum is in the answer."""
    if task == "tldr":
        from labs.finetune import sft

        return sft.follows_format(answer)
    return reference.rstrip(".").split("= ")[-1] in answer


def task_score(lm: models.LoadedModel, model: torch.nn.Module, task: str, pairs: Sequence[tuple],
               max_new_tokens: int = 32) -> float:
    """Share of held-out prompts whose greedy answer succeeds (batched generation, left padding)."""
    from labs.serving import generation
    from labs.finetune import sft

    if not pairs:
        return float("nan")
    prompts = [generation.render_prompt(lm, p) for p, _ in pairs]
    was_training = model.training
    model.eval()
    answers = sft.greedy_batch(lm, model, prompts, max_new_tokens)
    model.train(was_training)
    return sum(task_success(task, p, a, r) for (p, r), a in zip(pairs, answers)) / len(pairs)


@dataclass(frozen=True)
class LoraRunConfig:
    """One LoRA training run. Defaults: a 3-rank sweep finishes in about two minutes on a 2-core CPU."""

    model_key: str = models.DEFAULT_CHAT_MODEL
    task: str = "tldr"
    r: int = 8
    alpha: float = 16.0  # scaling α/r; the paper sets α to the first r it tries and does not tune it (Section 4.1)
    targets: tuple[str, ...] = ("q_proj", "v_proj")  # the paper's default (Section 7.1)
    last_layers: int = 8  # adapt only the top N layers (0 = all): backward then stops early, ~2× faster
    dropout: float = 0.0
    use_rslora: bool = False  # scaling α/√r (Kalajdzievski 2023) keeps update size stable as r grows
    use_dora: bool = False  # magnitude + direction (Liu et al. 2024)
    init: str = "gaussian"  # the paper: A Gaussian, B zero
    steps: int = 30
    batch_size: int = 4
    lr: float = 2e-3  # LoRA tolerates (and short runs need) a larger learning rate than full fine-tuning
    max_len: int = 96  # the longest TL;DR example is 96 tokens with SmolLM2's chat template
    n_train: int = 64
    n_eval: int = 16
    score_prompts: int = 8  # held-out prompts answered greedily before and after (0 = skip the task score)
    eval_every: int = 10
    seed: int = 0
    tiny_models: bool = False  # part of the run's identity: a tiny-model run must never replay as a real one

    def __post_init__(self):
        models.spec(self.model_key)
        if self.task not in TASKS:
            raise ValueError(f"Unknown task '{self.task}'. Choose from: {', '.join(TASKS)}.")
        if self.init not in INIT_CHOICES:
            raise ValueError(f"Initialisation must be one of {', '.join(INIT_CHOICES)}.")
        if self.use_dora and self.init != "gaussian" and self.init != "default":
            raise ValueError("DoRA combines with the gaussian or default initialisation only here.")
        from labs.training import loop as training

        self.lora_settings()  # rank, alpha, dropout and target names (validate_rank_targets checks them on the model)
        training.check_between("Steps", self.steps, 1, 2000)
        training.check_between("Batch size", self.batch_size, 1, 64)
        training.check_lr(self.lr, "try 1e-3")
        training.check_between("Max length", self.max_len, 16, 1024, "tokens")
        if not 1 <= self.n_eval <= 256 or not 1 <= self.n_train <= 5000:
            raise ValueError("Use 1–5000 training and 1–256 held-out examples.")
        if self.last_layers < 0:
            raise ValueError("Layers to adapt must be 0 (all) or a positive number.")
        if not 0 <= self.score_prompts <= self.n_eval:
            raise ValueError("The task score uses 0 up to the number of held-out examples.")
        if self.eval_every < 1:
            raise ValueError("Evaluate every 1 step or more.")

    def lora_settings(self, layers: tuple[int, ...] = ()):
        """This run's training.LoraSettings (the one LoRA setup path), on `layers` (() = every layer)."""
        from labs.training import loop as training

        return training.LoraSettings(r=self.r, alpha=self.alpha, dropout=self.dropout, targets=tuple(self.targets),
                                     use_rslora=self.use_rslora, use_dora=self.use_dora,
                                     init_lora_weights=_init_value(self.init), layers=tuple(layers))

    @property
    def label(self) -> str:
        """Short legend name of the run, e.g. "r=8 · W_q+W_v"."""
        names = "+".join(TARGET_NAMES.get(t, t) for t in self.targets)
        return f"r={self.r} · {names}"


def _init_value(init: str):
    return True if init == "default" else init


def lora_model(lm: models.LoadedModel, cfg: LoraRunConfig) -> torch.nn.Module:
    """PEFT LoRA on a copy of the shared model (labs.training.loop), restricted to the top `last_layers` layers."""
    from labs.training import loop as training

    arch = architecture_of(lm.model, lm.spec.display_name)
    validate_rank_targets(arch, cfg.targets, cfg.r)
    layers = range(arch.layers - cfg.last_layers, arch.layers) if 0 < cfg.last_layers < arch.layers else ()
    # ("the last 8 layers" of a 2-layer test model = all of them)
    model, _, _ = training.trainable_model(lm, "lora", cfg.lora_settings(tuple(layers)), seed=cfg.seed)
    return model


def encode_pairs(lm: models.LoadedModel, pairs: Sequence[tuple[str, str]], max_len: int) -> list[dict]:
    """(prompt, response) pairs rendered with the chat template and tokenised with the loss mask, max_len tokens."""
    from labs.serving import generation
    from labs.training import loop as training

    return [training.tokenize_example(lm.tokenizer, generation.render_prompt(lm, p), r, max_len=max_len)
            for p, r in pairs]


@torch.no_grad()
def held_out_scores(model: torch.nn.Module, examples: list[dict], pad_id: int, device, batch_size: int = 8) -> dict:
    """Mean cross-entropy per response token, and teacher-forced token accuracy (the 'task score')."""
    from labs.training import loop as training

    was_training = model.training
    model.eval()
    nll, correct, count = 0.0, 0, 0
    for i in range(0, len(examples), batch_size):
        batch = training.to_device(training.collate(examples[i:i + batch_size], pad_id), device)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits  # (B, T, V)
        logp, mask = training.token_logprobs(logits, batch["labels"])
        nll -= float(logp.sum())
        correct += int(((logits[:, :-1].argmax(-1) == batch["labels"][:, 1:]) & mask).sum())
        count += int(mask.sum())
    model.train(was_training)
    return {"val_loss": nll / max(count, 1), "val_accuracy": correct / max(count, 1)}


def _trainable_state_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Bytes of what training adds on top of frozen weights: adapter weights, their gradients, Adam's moments."""
    total = 0
    for p in model.parameters():
        if p.requires_grad:
            total += p.numel() * p.element_size() * 2  # weight + gradient
    for state in optimizer.state.values():
        total += sum(v.numel() * v.element_size() for v in state.values() if torch.is_tensor(v))
    return total


def train_lora(ctx, lm: models.LoadedModel) -> dict:
    """The step function of one run (labs.runs.jobs): train, log train/held-out loss, save the adapter."""
    from labs.models import adapters
    from labs.training import loop as training

    cfg: LoraRunConfig = ctx.config
    torch.manual_seed(cfg.seed)
    device = next(lm.model.parameters()).device
    pad_id = training.pad_id(lm.tokenizer)
    train_pairs, held_pairs = task_pairs(cfg.task, cfg.n_train, cfg.n_eval, cfg.seed)
    train_ex, held_ex = encode_pairs(lm, train_pairs, cfg.max_len), encode_pairs(lm, held_pairs, cfg.max_len)
    model = lora_model(lm, cfg)
    trainable, total = training.count_parameters(model)
    init_dir = None
    if cfg.init in ("pissa_niter_4", "olora"):  # these move W0; keep the start to convert the result to plain LoRA
        init_dir = ctx.artifacts / "adapter_init"
        model.peft_config["default"].init_lora_weights = True
        model.save_pretrained(str(init_dir))
        model.peft_config["default"].init_lora_weights = _init_value(cfg.init)
    params = [p for p in model.parameters() if p.requires_grad]
    ctx.set_total(cfg.steps)
    ctx.note(f"{cfg.label}: {trainable:,} trainable of {total:,} parameters ({100 * trainable / total:.3f}%)")
    scored = held_pairs[: cfg.score_prompts]
    score_before = task_score(lm, model, cfg.task, scored) if scored else None
    g = torch.Generator().manual_seed(cfg.seed)

    def batches():
        while True:
            pick = torch.randint(len(train_ex), (cfg.batch_size,), generator=g).tolist()
            yield training.to_device(training.collate([train_ex[i] for i in pick], pad_id), device)

    def loss_fn(batch) -> training.StepOutput:
        loss, _ = training.causal_lm_loss(model, batch)  # next-token cross-entropy on the answer tokens
        return training.StepOutput(loss, tokens=int(batch["attention_mask"].sum()))

    # held-out loss before training (step 0), every eval_every steps and after the last
    loop = training.LoopSettings(steps=cfg.steps, lr=cfg.lr, warmup=max(1, cfg.steps // 10),
                                 eval_every=cfg.eval_every, eval_at_start=True)
    started = time.perf_counter()
    fit = training.fit(ctx, params, batches(), loss_fn, loop,
                       evaluate=lambda step: held_out_scores(model, held_ex, pad_id, device), device=device)
    seconds = time.perf_counter() - started
    base, last, optimizer, tokens_seen = fit.first_eval, fit.last_eval, fit.optimizer, fit.tokens
    score_after = task_score(lm, model, cfg.task, scored) if scored else None
    if scored:
        ctx.note(f"task score (greedy, {len(scored)} held-out prompts): {score_before:.0%} before, {score_after:.0%} after")
    memory = _trainable_state_bytes(model, optimizer)
    peak_cuda = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
    folder = ctx.artifacts / "adapter"
    meta = {"label": f"LoRA {cfg.label} ({cfg.task})", "base_model": lm.key, "page": "lora",
            "r": cfg.r, "alpha": cfg.alpha, "targets": list(cfg.targets), "init": cfg.init, "run_id": ctx.run_id}
    if init_dir is not None:
        model.save_pretrained(str(folder), path_initial_model_for_weight_conversion=str(init_dir))
        import json

        (folder / adapters.META).write_text(json.dumps(dict(meta, created=time.time()), indent=2))
    else:
        adapters.save_adapter(model, folder, meta)
    return {"label": cfg.label, "r": cfg.r, "targets": list(cfg.targets), "trainable_params": trainable,
            "total_params": total, "base_val_loss": base["val_loss"], "base_val_accuracy": base["val_accuracy"],
            "final_val_loss": last["val_loss"], "final_val_accuracy": last["val_accuracy"],
            "task_score_before": score_before, "task_score_after": score_after,
            "train_seconds": seconds, "tokens_per_s": tokens_seen / max(seconds, 1e-9),
            "train_state_mb": memory / 2**20, "peak_cuda_mb": peak_cuda / 2**20 if peak_cuda else None,
            "adapter": str(folder)}


# ---------------------------------------------------------------------------------------------------
# Reading a saved adapter: ΔW = scaling · B A for every adapted (layer, matrix)
# ---------------------------------------------------------------------------------------------------
@dataclass
class DeltaW:
    """One saved adapter's update to one (layer, matrix): ΔW = scaling · B A, with A (r, k) and B (d, r)."""

    layer: int
    target: str
    A: torch.Tensor  # (r, k)
    B: torch.Tensor  # (d, r)
    scaling: float  # α/r, or α/√r with rsLoRA
    base_key: str  # name of W0 in the base model's state dict

    @property
    def delta(self) -> torch.Tensor:
        """ΔW = scaling · B A in fp32: (d, k), the shape of W0."""
        return self.scaling * (self.B.float() @ self.A.float())  # (d, k)

    @property
    def name(self) -> str:
        """Display name, layer then matrix, e.g. "L3 W_q"."""
        return f"L{self.layer} {TARGET_NAMES.get(self.target, self.target)}"


def adapter_deltas(folder: str | Path) -> list[DeltaW]:
    """Every (layer, target) update stored in a PEFT adapter folder, ordered by layer then matrix."""
    import json

    from safetensors.torch import load_file

    folder = Path(folder)
    config_path, weights_path = folder / "adapter_config.json", folder / "adapter_model.safetensors"
    if not config_path.exists() or not weights_path.exists():
        raise FileNotFoundError(f"No saved LoRA adapter in {folder}.")
    config = json.loads(config_path.read_text())
    tensors = load_file(str(weights_path))
    found = []
    for key, a in tensors.items():
        if not key.endswith("lora_A.weight"):
            continue
        prefix = key[: -len(".lora_A.weight")]
        b = tensors[prefix + ".lora_B.weight"]
        target = prefix.rsplit(".", 1)[-1]
        layer = int(prefix.split(".layers.")[1].split(".")[0])
        r = config.get("rank_pattern", {}).get(prefix, config["r"])
        alpha = config.get("alpha_pattern", {}).get(prefix, config["lora_alpha"])
        scaling = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
        base_key = prefix.removeprefix("base_model.model.") + ".weight"
        found.append(DeltaW(layer, target, a, b, scaling, base_key))
    order = {t: i for i, t in enumerate(ALL_TARGETS)}
    return sorted(found, key=lambda d: (d.layer, order.get(d.target, 99)))


def delta_spectra(deltas: Sequence[DeltaW]) -> list[dict]:
    """Singular values of each ΔW with its effective rank: how many directions does the update use?"""
    rows = []
    for d in deltas:
        s = singular_values(d.delta)[: d.A.shape[0]]  # rank(BA) ≤ r: the rest are numerically zero
        rows.append({"layer": d.layer, "matrix": TARGET_NAMES.get(d.target, d.target), "r": d.A.shape[0],
                     "||ΔW||_F": float(torch.linalg.norm(s)), "effective rank": effective_rank(s),
                     "90% energy rank": energy_rank(s, 0.9), "singular values": [float(x) for x in s]})
    return rows


def w0_table(lm: models.LoadedModel, deltas: Sequence[DeltaW], r: int | None = None) -> list[dict]:
    """w0_projection for each adapted matrix, reading W0 from the shared model (read only)."""
    state = lm.model.state_dict()
    rows = []
    for d in deltas:
        if d.base_key not in state:
            raise ValueError(f"The adapter does not match {lm.spec.display_name}: {d.base_key} is not in the model.")
        w0 = state[d.base_key].detach().float().cpu()
        rows.append({"layer": d.layer, "matrix": TARGET_NAMES.get(d.target, d.target),
                     **w0_projection(w0, d.delta, r=r or min(d.A.shape[0], 8))})
    return rows


# ---------------------------------------------------------------------------------------------------
# 4. Merge check: W = W0 + scaling · BA folded into the weights, no extra latency (Section 4.1)
# ---------------------------------------------------------------------------------------------------
def random_adapter(lm: models.LoadedModel, r: int = 8, targets: Sequence[str] = ("q_proj", "v_proj"),
                   seed: int = 0) -> torch.nn.Module:
    """A PEFT model over a copy whose B is random too (init_lora_weights=False), so merging changes something."""
    from labs.training import loop as training

    settings_ = training.LoraSettings(r=r, alpha=2 * r, targets=tuple(targets), init_lora_weights=False)
    model, _, _ = training.trainable_model(lm, "lora", settings_, seed=seed)
    return model.eval()


def merge_check(lm: models.LoadedModel, peft_model: torch.nn.Module, prompts: Sequence[str],
                new_tokens: int = 24) -> dict:
    """max |logits_unmerged − logits_merged| on a batch, and greedy generation speed before and after merging.
    The PEFT model is merged in place (merge_adapter) and unmerged again at the end."""
    from labs.serving import generation
    from labs.training import loop as training

    if not prompts or not any(p.strip() for p in prompts):
        raise ValueError("Give at least one non-empty prompt for the merge check.")
    prompts = [p for p in prompts if p.strip()]
    device = next(peft_model.parameters()).device
    pad_id = training.pad_id(lm.tokenizer)
    batch = training.to_device(training.collate(
        [{"input_ids": ids, "labels": ids} for ids in
         (lm.tokenizer(generation.render_prompt(lm, p), add_special_tokens=False)["input_ids"][:256] for p in prompts)],
        pad_id), device)
    config = generation.GenerationConfig(max_new_tokens=new_tokens, temperature=0.0, seed=0, repetition_penalty=1.0)
    peft_model.eval()

    def logits() -> torch.Tensor:
        with torch.no_grad():
            out = peft_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return out.float()[batch["attention_mask"].bool()]  # (tokens, V): padding positions left out

    def timed_generate() -> tuple[str, float]:
        t0 = time.perf_counter()
        text = generation.generate(lm, prompts[0], config, model=peft_model)
        n = len(lm.tokenizer(text, add_special_tokens=False)["input_ids"]) or 1
        return text, n / (time.perf_counter() - t0)

    with torch.no_grad(), peft_model.disable_adapter():
        base_logits = peft_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    base_logits = base_logits[batch["attention_mask"].bool()]
    unmerged = logits()
    generation.generate(lm, prompts[0], dataclasses.replace(config, max_new_tokens=2), model=peft_model)  # warm-up
    text_unmerged, speed_unmerged = timed_generate()
    peft_model.merge_adapter()
    try:
        merged = logits()
        text_merged, speed_merged = timed_generate()
    finally:
        peft_model.unmerge_adapter()
    return {"max_abs_diff": float((unmerged - merged).abs().max()),
            "max_abs_logit": float(unmerged.abs().max()),
            "adapter_effect": float((unmerged - base_logits).abs().max()),
            "tokens": int(batch["attention_mask"].sum()),
            "unmerged_tokens_per_s": speed_unmerged, "merged_tokens_per_s": speed_merged,
            "text_unmerged": text_unmerged, "text_merged": text_merged, "same_text": text_unmerged == text_merged}
