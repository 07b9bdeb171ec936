"""Token budgets of a pre-training mixture: published mixes (GPT-3, LLaMA-1), epochs per source, training-set growth.

The one equation of the lecture's mixture tables:

    tokens drawn from source i  =  w_i * B            (w_i its sampling weight, B the total token budget)
    epochs over source i        =  w_i * B / N_i      (N_i the tokens source i holds)

A source is *repeated* when its epochs exceed 1; Muennighoff et al. 2023 ("Scaling Data-Constrained Language
Models") find up to ~4 epochs nearly as good as fresh data, with fast-diminishing returns after.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from labs.core.errors import ConfigError


# ---------------------------------------------------------------------------------------------------------------
# The mixture calculator
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One row of a published mixture table: its size in billions of tokens and its sampling weight in percent."""

    name: str
    tokens_b: float  # tokens the source holds, in billions
    weight: float  # sampling weight in percent ("quantity in the training mix")
    published_epochs: float | None = None  # as printed in the paper, for comparison
    disk: str = ""  # disk size where the paper gives one
    derived_size: bool = False  # True when tokens_b was not published but derived from weight and epochs


@dataclass(frozen=True)
class Preset:
    """A published mixture (e.g. GPT-3's): its sources and total training budget in billions of tokens."""

    key: str
    title: str
    citation: str
    budget_b: float  # total training tokens, billions
    sources: tuple[Source, ...]
    note: str = ""


GPT3 = Preset(
    key="gpt3", title="GPT-3 (175B)", budget_b=300,
    citation="Brown et al. 2020, Language Models are Few-Shot Learners, Table 2.2",
    sources=(
        Source("Common Crawl (filtered)", 410, 60, 0.44),
        Source("WebText2", 19, 22, 2.9),
        Source("Books1", 12, 8, 1.9),
        Source("Books2", 55, 8, 0.43),
        Source("Wikipedia", 3, 3, 3.4),
    ),
    note=("The published weights are rounded to whole percent and add up to 101%; the calculator renormalises "
          "them. Where computed and published epochs differ, the 'implied weight' column shows the weight the "
          "published epochs correspond to (WebText2's 2.9 epochs mean about 18% of the 300B tokens, not 22%)."),
)

_LLAMA_BUDGET = 1400
_LLAMA_ROWS = (  # name, weight %, epochs, disk (Table 1)
    ("CommonCrawl", 67.0, 1.10, "3.3 TB"),
    ("C4", 15.0, 1.06, "783 GB"),
    ("Github", 4.5, 0.64, "328 GB"),
    ("Wikipedia", 4.5, 2.45, "83 GB"),
    ("Books", 4.5, 2.23, "85 GB"),
    ("ArXiv", 2.5, 1.06, "92 GB"),
    ("StackExchange", 2.0, 1.03, "78 GB"),
)
LLAMA1 = Preset(
    key="llama1", title="LLaMA-1 (33B / 65B)", budget_b=_LLAMA_BUDGET,
    citation="Touvron et al. 2023, LLaMA: Open and Efficient Foundation Language Models, Table 1",
    sources=tuple(Source(n, round(w / 100 * _LLAMA_BUDGET / e, 1), w, e, disk, derived_size=True)
                  for n, w, e, disk in _LLAMA_ROWS),
    note=("Table 1 gives sampling proportions, epochs (at 1.4T tokens) and disk sizes, not token counts: the "
          "token sizes here are derived as weight x 1.4T / epochs, so the epochs match by construction. The "
          "derived sizes add up to about 1.26T tokens, close to the paper's 'roughly 1.4T tokens', and imply "
          "3-4 bytes of disk per token. The 7B and 13B models saw 1.0T tokens: set the budget to 1000."),
)
PRESETS = {p.key: p for p in (GPT3, LLAMA1)}

# Training-set growth. Parameters are the flagship trained on that many tokens.
GROWTH = (
    # name, year, training tokens (billions), parameters (billions), source
    ("GPT-3", 2020, 300, 175, "Brown et al. 2020, Table 2.2"),
    ("Chinchilla", 2022, 1400, 70, "Hoffmann et al. 2022"),
    ("LLaMA-1", 2023, 1400, 65, "Touvron et al. 2023a, sec. 2"),
    ("Llama 2", 2023, 2000, 70, "Touvron et al. 2023b, sec. 2.1"),
    ("Phi-3-mini", 2024, 3300, 3.8, "Abdin et al. 2024, Phi-3 Technical Report"),
    ("Llama 3", 2024, 15000, 70, "Meta 2024, 'over 15T tokens' (Grattafiori et al. 2024)"),
)
CHINCHILLA_TOKENS_PER_PARAM = 20  # Hoffmann et al. 2022: compute-optimal ~20 tokens per parameter


def growth_rows() -> list[dict]:
    """GROWTH as table rows: training tokens and parameters (billions each) and tokens per parameter."""
    return [{"model": n, "year": y, "tokens (B)": t, "params (B)": p,
             "tokens per parameter": round(t / p, 1), "source": s} for n, y, t, p, s in GROWTH]


def normalise_weights(weights: list[float]) -> tuple[list[float], str]:
    """Weights as fractions summing to 1, and a message when they had to be rescaled ('' if not).

    Raises ValueError for negative, NaN or all-zero weights.
    """
    for w in weights:
        if w is None or not math.isfinite(w):
            raise ConfigError("A weight is empty or not a number; give every source a weight (0 to leave it out).")
        if w < 0:
            raise ConfigError(f"A weight is negative ({w}); weights are shares of the budget, 0 or more.")
    total = sum(weights)
    if total <= 0:
        raise ConfigError("All weights are zero: give at least one source a positive weight.")
    message = ""
    if abs(total - 100) > 0.05 and abs(total - 1) > 1e-4:
        message = (f"The weights add up to {total:g}, not 100%: each was divided by the total "
                   f"so they sum to 100% (relative sizes unchanged).")
    return [w / total for w in weights], message


def mixture_table(sources: list[Source], budget_b: float, repeat_threshold: float = 4.0) -> tuple[list[dict], list[str]]:
    """Rows of the calculator (tokens drawn, epochs, shares, published comparison) and messages for the user.

    epochs_i = w_i * budget / N_i. Raises ValueError for an empty table, a bad budget or a bad size.
    """
    if not sources:
        raise ConfigError("The table is empty: add at least one source (or pick a preset).")
    if budget_b is None or not math.isfinite(budget_b) or budget_b <= 0:
        raise ConfigError("The token budget must be a positive number of billions of tokens.")
    for s in sources:
        if s.tokens_b is None or not math.isfinite(s.tokens_b) or s.tokens_b <= 0:
            raise ConfigError(f"'{s.name or 'unnamed'}' has size {s.tokens_b}: a source must hold a positive "
                             "number of tokens (billions). Fix the size or delete the row.")
    fractions, message = normalise_weights([s.weight for s in sources])
    messages = [message] if message else []
    total_tokens = sum(s.tokens_b for s in sources)
    rows = []
    for s, w in zip(sources, fractions):
        drawn = w * budget_b
        epochs = drawn / s.tokens_b
        row = {
            "source": s.name,
            "size (B tokens)": s.tokens_b,
            "weight": w,
            "share of data": s.tokens_b / total_tokens,
            "tokens drawn (B)": drawn,
            "epochs": epochs,
            "published epochs": s.published_epochs,
            "implied weight": (s.published_epochs * s.tokens_b / budget_b) if s.published_epochs else None,
            "repeated": epochs > repeat_threshold,
        }
        rows.append(row)
        if epochs > repeat_threshold:
            messages.append(f"'{s.name}' is repeated {epochs:.1f} times (more than {repeat_threshold:g} epochs): "
                            "beyond ~4 epochs extra repeats add little (Muennighoff et al. 2023); the lecture's "
                            "sweet spot is 1-2.")
    return rows, messages


def epochs_differ(row: dict, tolerance: float = 0.05) -> bool:
    """True when the computed epochs differ from the published figure by more than rounding (5%)."""
    pub = row.get("published epochs")
    return pub is not None and abs(row["epochs"] - pub) > tolerance * max(pub, 1e-9)
