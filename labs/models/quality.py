"""The quality gate on every decode fast path: perplexity and greedy agreement next to float32.

A speed-up that changes the model students see is a defect. Each decode variant is scored on a fixed text that
every machine has and nobody on the project wrote: docstrings of the Python standard library (the same modules,
in the same order, on every run of a given Python). A variant may be the default only if its perplexity is within
+2 % of float32 (GATE); the chosen default and its measured ratio are stored next to the model's cache and shown
on the Home page.
"""
from __future__ import annotations

import inspect
import json
import math
import time
from dataclasses import asdict, dataclass

import torch

GATE = 1.02  # perplexity of a fast path / perplexity of float32, at most
DOC_MODULES = ("json", "textwrap", "argparse", "collections", "functools", "itertools", "pathlib", "csv",
               "random", "statistics", "datetime", "heapq", "bisect", "string", "shutil", "difflib")
AGREEMENT_PROMPTS = (
    "What does the json module do?", "Explain a Python list comprehension in one sentence.",
    "Name three uses of a hash table.", "Why do programmers write tests?", "What is a file path?",
    "Give a tip for reading code you did not write.", "What is the difference between a list and a tuple?",
    "How do you sort a list of numbers in Python?", "What is recursion?", "Describe a queue in one sentence.",
)


def reference_text(max_chars: int = 60_000) -> str:
    """Docstrings of a fixed set of standard-library modules and their public functions and classes."""
    import importlib

    parts = []
    for name in DOC_MODULES:
        module = importlib.import_module(name)
        parts.append(inspect.getdoc(module) or "")
        for attr in sorted(dir(module)):
            if attr.startswith("_"):
                continue
            doc = inspect.getdoc(getattr(module, attr, None))
            if doc and len(doc) > 80:
                parts.append(doc)
    return "\n\n".join(p for p in parts if p)[:max_chars]


@torch.inference_mode()
def perplexity(tokenizer, module: torch.nn.Module, text: str, max_tokens: int = 4096, window: int = 512) -> float:
    """exp(mean next-token loss) over the first `max_tokens` tokens, in non-overlapping windows of `window`."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:max_tokens]
    device = next(module.parameters()).device
    total, count = 0.0, 0
    for start in range(0, len(ids) - 1, window):
        chunk = torch.tensor([ids[start:start + window]], device=device)  # (1, T)
        if chunk.shape[1] < 2:
            break
        logits = module(input_ids=chunk).logits.float()  # (1, T, V)
        loss = torch.nn.functional.cross_entropy(logits[0, :-1], chunk[0, 1:], reduction="sum")
        total, count = total + float(loss), count + chunk.shape[1] - 1
    return math.exp(total / max(count, 1))


def greedy_agreement(lm, module: torch.nn.Module, reference: list[list[int]] | None = None, new_tokens: int = 16,
                     prompts=AGREEMENT_PROMPTS) -> tuple[float, list[list[int]]]:
    """Share of prompts whose greedy `new_tokens` equal the reference's (float32), and this module's tokens."""
    from labs.serving import generation

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
    passes: bool  # ppl_ratio <= GATE


def score_variants(lm, variants: tuple[str, ...], max_tokens: int = 4096) -> list[VariantScore]:
    """Perplexity and greedy agreement of each decode variant next to float32 (the first row)."""
    from labs import models

    text = reference_text()
    base_module = models.decode_variant(lm, "float32")
    base_ppl = perplexity(lm.tokenizer, base_module, text, max_tokens)
    _, reference = greedy_agreement(lm, base_module)
    rows = [VariantScore("float32", round(base_ppl, 4), 1.0, 1.0, True)]
    for name in variants:
        if name == "float32":
            continue
        module = models.decode_variant(lm, name)
        ppl = perplexity(lm.tokenizer, module, text, max_tokens)
        agree, _ = greedy_agreement(lm, module, reference)
        ratio = ppl / base_ppl
        rows.append(VariantScore(name, round(ppl, 4), round(ratio, 4), agree, ratio <= GATE))
    return rows


def gate_file(lm):
    """Where the decode gate's verdict for this model is cached: beside its cache folder, as <key>.decode_gate.json."""
    from labs import models

    # beside the model's cache folder, not in it: the folder's manifest must not change
    return models.cache_dir(lm.key).parent / f"{lm.key}.decode_gate.json"


def choose_default(lm, candidates: tuple[str, ...], max_tokens: int = 2048) -> dict:
    """The first candidate (fastest first) that passes the gate, with its figures; measured once and stored."""
    path = gate_file(lm)
    if not candidates:
        return {"variant": "float32", "ppl_ratio": 1.0, "greedy_agreement": 1.0, "candidates": [],
                "device": lm.device, "gate": GATE, "rows": [], "text": "float32 is the reference"}
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
              "candidates": list(candidates), "device": lm.device, "gate": GATE,
              "rows": [asdict(r) for r in rows], "seconds": round(time.perf_counter() - t0, 1),
              "text": f"docstrings of {len(DOC_MODULES)} standard-library modules, first {max_tokens} tokens"}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))
    except OSError:
        pass  # a read-only cache: measured again next time
    return result
