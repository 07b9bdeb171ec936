"""Which torch decode variant serves a model on a CPU: the first candidate (fastest first) whose perplexity stays
within +2 % of float32 (labs.models.quality.GATE), with its greedy agreement; measured once per model and stored
beside its cache. LLMLAB_DECODE overrides the choice.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass

import torch

from labs.core import settings
from labs.models import quality
from labs.models.cache import cache_dir
from labs.models.variants import decode_variant, forced_decode
from labs.serving import generation


# Candidates for the CPU default, fastest first: the first that passes the quality gate (labs.models.quality: perplexity
# within +2 % of float32) becomes the default. Measured on this project's 2-core CPU (bench.bench_models), none
# earns it: int8_dynamic quantises activations too and multiplies SmolLM2's perplexity by about 3; int8_weight
# keeps the perplexity but torch's weight-only int8 kernel decodes slower than float32; bfloat16 keeps the
# perplexity (+0.2 %) but is no faster without AMX, and in a batch its rounding changed 4 of 16 greedy answers
# (a stream must answer in a batch as alone). So float32 is the CPU default; the variants stay selectable with
# LLMLAB_DECODE, and a machine where one wins can list it here.
CPU_CANDIDATES: tuple[str, ...] = ()


def greedy_agreement(lm, module: torch.nn.Module, reference: list[list[int]] | None = None, new_tokens: int = 16,
                     prompts=quality.AGREEMENT_PROMPTS) -> tuple[float, list[list[int]]]:
    """Share of prompts whose greedy `new_tokens` equal the reference's (float32), and this module's tokens."""
    config = generation.GenerationConfig(max_new_tokens=new_tokens, temperature=0, repetition_penalty=1.0)
    answers = [list(generation.stream_tokens(lm, generation.encode_prompt(lm, p, new_tokens), config, model=module,
                                             ignore_eos=True)) for p in prompts]
    if reference is None:
        return 1.0, answers
    same = sum(a == b for a, b in zip(answers, reference))
    return same / len(prompts), answers


@dataclass(frozen=True)
class VariantScore:
    """One decoding fast path against float32: its perplexity on the reference text, the ratio to float32's,
    the share of prompts with identical greedy tokens, and whether it passes the 2 % gate."""
    variant: str
    perplexity: float
    ppl_ratio: float  # perplexity / float32's
    greedy_agreement: float  # share of prompts with the same greedy tokens as float32
    passes: bool  # ppl_ratio <= quality.GATE


def score_variants(lm, variants: tuple[str, ...], max_tokens: int = 4096) -> list[VariantScore]:
    """Perplexity and greedy agreement of each decode variant next to float32 (the first row)."""
    text = quality.reference_text()
    base_module = decode_variant(lm, "float32")
    base_ppl = quality.perplexity(lm.tokenizer, base_module, text, max_tokens)
    _, reference = greedy_agreement(lm, base_module)
    rows = [VariantScore("float32", round(base_ppl, 4), 1.0, 1.0, True)]
    for name in variants:
        if name == "float32":
            continue
        module = decode_variant(lm, name)
        ppl = quality.perplexity(lm.tokenizer, module, text, max_tokens)
        agree, _ = greedy_agreement(lm, module, reference)
        ratio = ppl / base_ppl
        rows.append(VariantScore(name, round(ppl, 4), round(ratio, 4), agree, ratio <= quality.GATE))
    return rows


def gate_file(lm):
    """Where the decode gate's verdict for this model is cached: beside its cache folder, as <key>.decode_gate.json."""
    # beside the model's cache folder, not in it: the folder's manifest must not change
    return cache_dir(lm.key).parent / f"{lm.key}.decode_gate.json"


def choose_default(lm, candidates: tuple[str, ...], max_tokens: int = 2048) -> dict:
    """The first candidate (fastest first) that passes the gate, with its figures; measured once and stored."""
    path = gate_file(lm)
    if not candidates:
        return {"variant": "float32", "ppl_ratio": 1.0, "greedy_agreement": 1.0, "candidates": [],
                "device": lm.device, "gate": quality.GATE, "rows": [], "text": "float32 is the reference"}
    try:
        stored = json.loads(path.read_text())
        if stored.get("candidates") == list(candidates) and stored.get("device") == lm.device:
            return stored
    except (OSError, ValueError):
        pass
    t0 = time.perf_counter()
    rows = score_variants(lm, candidates, max_tokens)
    chosen = next((r for r in rows if r.variant in candidates and r.passes and r.variant != "float32"), rows[0])
    result = {"variant": chosen.variant, "ppl_ratio": chosen.ppl_ratio, "greedy_agreement": chosen.greedy_agreement,
              "candidates": list(candidates), "device": lm.device, "gate": quality.GATE,
              "rows": [asdict(r) for r in rows], "seconds": round(time.perf_counter() - t0, 1),
              "text": f"docstrings of {len(quality.DOC_MODULES)} standard-library modules, first {max_tokens} tokens"}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))
    except OSError:
        pass  # a read-only cache: measured again next time
    return result


def default_decode_variant(device: str | None = None, lm=None) -> str:
    """LLMLAB_DECODE if set; on a CPU the fastest variant that passes the quality gate (measured once per model
    and stored next to its cache); otherwise the loaded dtype ('float32' means the shared model as loaded)."""
    forced = forced_decode()
    if forced != "float32" or os.environ.get("LLMLAB_DECODE", "").strip():
        return forced
    device = device or settings.device_info().device
    if device != "cpu" or lm is None or settings.tiny_models() or not CPU_CANDIDATES:
        return "float32"
    return choose_default(lm, CPU_CANDIDATES)["variant"]


def choose(lm) -> str:
    """Set lm.decode to this machine's choice for a float32 model (a no-op elsewhere); returns it."""
    if lm.dtype == torch.float32:
        lm.decode = default_decode_variant(lm.device, lm)
    return lm.decode


def decode_gate(lm) -> dict | None:
    """The stored quality-gate measurement of this model (variant, ppl_ratio, rows), or None if not measured."""
    try:
        return json.loads(gate_file(lm).read_text())
    except (OSError, ValueError):
        return None
