"""The quality gate's measurements: perplexity on a fixed text, the prompts greedy agreement is checked on.

A speed-up that changes the model students see is a defect. Each decode variant is scored on a fixed text that
every machine has and nobody on the project wrote: docstrings of the Python standard library (the same modules,
in the same order, on every run of a given Python). A variant may be the default only if its perplexity is within
+2 % of float32 (GATE); the chosen default and its measured ratio are stored next to the model's cache and shown
on the Home page. The gates themselves live where the choice is made: labs.serving.decode_gate (torch decode
variants) and labs.serving.runtimes.gate (the fast runtime).
"""
from __future__ import annotations

import importlib
import inspect
import math

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
