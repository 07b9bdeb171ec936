"""What the update learned (Section 7): ΔW = scaling · B A read from a saved adapter, its spectrum and effective
rank, subspace similarity between ranks, its relation to W0; and the merge check (Section 4.1): W = W0 + scaling · BA
folded into the weights gives the same logits with no extra latency."""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from safetensors.torch import load_file

from labs import models
from labs.core.errors import ConfigError, MissingData
from labs.finetune.lora.params import ALL_TARGETS, TARGET_NAMES
from labs.serving import generation
from labs.training import loop as training


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
        raise ConfigError(f"i must be in 1..{u1.shape[1]} and j in 1..{u2.shape[1]}.")
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

    folder = Path(folder)
    config_path, weights_path = folder / "adapter_config.json", folder / "adapter_model.safetensors"
    if not config_path.exists() or not weights_path.exists():
        raise MissingData(f"No saved LoRA adapter in {folder}.")
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
            raise ConfigError(f"The adapter does not match {lm.spec.display_name}: {d.base_key} is not in the model.")
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
    settings_ = training.LoraSettings(r=r, alpha=2 * r, targets=tuple(targets), init_lora_weights=False)
    model, _, _ = training.trainable_model(lm, "lora", settings_, seed=seed)
    return model.eval()


def merge_check(lm: models.LoadedModel, peft_model: torch.nn.Module, prompts: Sequence[str],
                new_tokens: int = 24) -> dict:
    """max |logits_unmerged − logits_merged| on a batch, and greedy generation speed before and after merging.
    The PEFT model is merged in place (merge_adapter) and unmerged again at the end."""
    if not prompts or not any(p.strip() for p in prompts):
        raise ConfigError("Give at least one non-empty prompt for the merge check.")
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
