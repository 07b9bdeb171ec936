"""Pre-training data mixtures: the budget arithmetic, sampling by weights, and a tiny GPT trained on a mix.

The one equation of the lecture's mixture tables:

    tokens drawn from source i  =  w_i * B            (w_i its sampling weight, B the total token budget)
    epochs over source i        =  w_i * B / N_i      (N_i the tokens source i holds)

A source is *repeated* when its epochs exceed 1; Muennighoff et al. 2023 ("Scaling Data-Constrained Language
Models") find up to ~4 epochs nearly as good as fresh data, with fast-diminishing returns after.
"""
from __future__ import annotations

import hashlib
import math
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch

from labs.core import settings
from labs.training import loop as training
from labs.data import corpora
from labs.mixtures.gpt import GPT, GPTConfig, flops_per_token

# ---------------------------------------------------------------------------------------------------------------
# 1. The mixture calculator
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
            raise ValueError("A weight is empty or not a number; give every source a weight (0 to leave it out).")
        if w < 0:
            raise ValueError(f"A weight is negative ({w}); weights are shares of the budget, 0 or more.")
    total = sum(weights)
    if total <= 0:
        raise ValueError("All weights are zero: give at least one source a positive weight.")
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
        raise ValueError("The table is empty: add at least one source (or pick a preset).")
    if budget_b is None or not math.isfinite(budget_b) or budget_b <= 0:
        raise ValueError("The token budget must be a positive number of billions of tokens.")
    for s in sources:
        if s.tokens_b is None or not math.isfinite(s.tokens_b) or s.tokens_b <= 0:
            raise ValueError(f"'{s.name or 'unnamed'}' has size {s.tokens_b}: a source must hold a positive "
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


# ---------------------------------------------------------------------------------------------------------------
# 2. Labels are the inputs shifted by one
# ---------------------------------------------------------------------------------------------------------------


DEFAULT_SENTENCE = "Labels are the inputs shifted by one position, so every token teaches the model something."


@torch.no_grad()
def shift_check(lm, text: str, max_tokens: int = 64) -> tuple[float, float]:
    """(the model's own loss with labels = input_ids, the mean loss of predicting each token at its own position).

    transformers shifts the labels inside its loss, so the first equals the mean of next_token_rows' losses; the
    second scores the same tokens without the shift and is far off, which shows the shift is what makes the match."""
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"][: max_tokens + 1]
    if len(ids) < 2:
        raise ValueError("The text must have at least two tokens.")
    x = torch.tensor([ids], device=lm.device)
    with lm.lock:
        out = lm.model(input_ids=x, labels=x)
    logp = out.logits[0].float().log_softmax(-1)  # (T, V)
    unshifted = -logp.gather(1, x[0][:, None])[:, 0].mean()
    return float(out.loss), float(unshifted)


def shift_for_next_token(ids: list[int]) -> tuple[list[int], list[int]]:
    """inputs = ids[:-1], labels = ids[1:]: position t is trained to predict token t + 1."""
    return list(ids[:-1]), list(ids[1:])


@torch.no_grad()
def next_token_rows(lm, text: str, max_tokens: int = 64) -> list[dict]:
    """Per-position next-token loss of a causal LM on `text` (its own tokenizer, no special tokens).

    Returns rows: position, input token, label token (= next input), p(label), loss = -ln p(label), top guess.
    """
    if not text.strip():
        raise ValueError("Type a sentence first.")
    tok = lm.tokenizer
    ids = tok(text, add_special_tokens=False)["input_ids"][: max_tokens + 1]
    if len(ids) < 2:
        raise ValueError("The text must have at least two tokens: one input and the label that follows it.")
    inputs, labels = shift_for_next_token(ids)
    x = torch.tensor([ids], device=lm.device)
    with lm.lock:
        logits = lm.model(input_ids=x).logits[0, :-1].float()  # (T-1, V): position t predicts ids[t+1]
    logp = logits.log_softmax(-1)
    label_t = torch.tensor(labels, device=logp.device)
    losses = -logp.gather(1, label_t[:, None])[:, 0]
    top = logits.argmax(-1).tolist()
    show = lambda i: tok.decode([i]).replace(" ", "␣").replace("\n", "\\n")  # noqa: E731  (spaces are part of tokens)
    return [{"position": t, "input": show(i), "label": show(l), "p(label)": math.exp(-loss),
             "loss": loss, "model's top guess": show(g)}
            for t, (i, l, loss, g) in enumerate(zip(inputs, labels, losses.tolist(), top))]


# ---------------------------------------------------------------------------------------------------------------
# 3. Quality filtering: exact dedup + simple heuristics (in the spirit of the Gopher rules, Rae et al. 2021, App. A)
#    + near-duplicate removal on a normalised text (CCNet, Wenzek et al. 2020)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterStats:
    """What quality_filter kept and removed: documents and bytes in / out, and the count dropped for each reason."""

    docs_in: int
    docs_out: int
    bytes_in: int
    bytes_out: int
    duplicates: int
    too_short: int
    repetitive: int
    symbols: int
    near_duplicates: int = 0

    @property
    def removed_fraction(self) -> float:
        """Share of the bytes removed (0-1; 0 for empty input)."""
        return 1 - self.bytes_out / self.bytes_in if self.bytes_in else 0.0


FILTER_REASONS = ("duplicate", "too short", "near-duplicate", "repetitive", "symbol-heavy")


def near_duplicate_key(doc: str) -> str:
    """The text a near-duplicate shares with its original: case folded, words holding a digit dropped (dates,
    counters, tracking ids), punctuation made space, whitespace collapsed. CCNet (Wenzek et al. 2020) hashes
    paragraphs normalised like this; copies edited beyond it need MinHash over word shingles (Lee et al. 2022,
    "Deduplicating Training Data Makes Language Models Better")."""
    words = (w for w in doc.casefold().split() if not any(c.isdigit() for c in w))
    return " ".join("".join(c if c.isalnum() else " " for c in " ".join(words)).split())


def filter_reasons(docs: list[str], min_chars: int = 80) -> list[str]:
    """Why each document would be dropped (one of FILTER_REASONS), '' for a document kept. The first copy of a
    duplicate is kept; later copies are dropped."""
    exact, near, out = set(), set(), []
    for d in docs:
        key = hashlib.blake2b(" ".join(d.split()).encode(), digest_size=16).digest()
        normalised = near_duplicate_key(d)
        norm = hashlib.blake2b(normalised.encode(), digest_size=16).digest()
        lines = [ln.strip() for ln in d.splitlines() if ln.strip()]
        if key in exact:
            out.append("duplicate")
        elif len(d) < min_chars:
            out.append("too short")
        elif norm in near:
            out.append("near-duplicate")
        elif len(lines) >= 4 and len(set(lines)) / len(lines) < 0.7:  # Gopher: duplicate-line fraction
            out.append("repetitive")
        elif sum(c.isalnum() or c.isspace() for c in d) / len(d) < 0.6:  # mostly punctuation / markup
            out.append("symbol-heavy")
        else:
            out.append("")
        exact.add(key)
        if len(d) >= min_chars and normalised:  # all-symbol junk has an empty key: not a "copy"
            near.add(norm)
    return out


def quality_filter(docs: list[str], min_chars: int = 80) -> tuple[list[str], FilterStats]:
    """Drop exact duplicates (after whitespace normalisation), short documents, near-duplicates (near_duplicate_key),
    documents whose lines are mostly repeats, and documents that are mostly symbols. Order is kept."""
    reasons = filter_reasons(docs, min_chars)
    kept = [d for d, r in zip(docs, reasons) if not r]
    size = lambda xs: sum(len(x.encode()) for x in xs)  # noqa: E731
    n = {r: reasons.count(r) for r in FILTER_REASONS}
    return kept, FilterStats(len(docs), len(kept), size(docs), size(kept), n["duplicate"], n["too short"],
                             n["repetitive"], n["symbol-heavy"], n["near-duplicate"])


def filter_report(domain_docs: dict[str, list[str]]) -> list[dict]:
    """What the quality filter would remove from each domain's training documents (a table for the page)."""
    rows = []
    for name, docs in domain_docs.items():
        train, _ = corpora.split(docs)
        _, s = quality_filter(train)
        rows.append({"domain": name, "documents": s.docs_in, "kept": s.docs_out, "duplicates": s.duplicates,
                     "near-duplicates": s.near_duplicates, "too short": s.too_short, "repetitive": s.repetitive,
                     "symbol-heavy": s.symbols,
                     "bytes removed": f"{100 * s.removed_fraction:.1f}%"})
    return rows


def filter_vs_labels(pages: list[tuple[str, str]]) -> tuple[list[dict], dict]:
    """How the filter treats each kind of document in a labelled domain (corpora.web_pages: (kind, text) pairs,
    kind 'clean' or a kind of noise), on its training split, as in a run. Returns one row per kind (documents,
    kept, removed by each reason, bytes removed) and {precision, recall, noise_bytes_share}: precision = removed
    documents that are noise / all removed; recall = noise documents removed / all noise documents."""
    pairs = [(kind, text) for kind, text in pages if not corpora.is_validation(text)]  # the training split
    train, labels = [text for _, text in pairs], [kind for kind, _ in pairs]  # by position: an exact copy is
    reasons = filter_reasons(train)  # the same text as its original but labelled as the copy
    rows = []
    for kind in dict.fromkeys(labels):
        mine = [(d, r) for d, r, k in zip(train, reasons, labels) if k == kind]
        size = sum(len(d.encode()) for d, _ in mine)
        removed = sum(len(d.encode()) for d, r in mine if r)
        rows.append({"kind": kind, "documents": len(mine), "kept": sum(not r for _, r in mine),
                     **{reason: sum(r == reason for _, r in mine) for reason in FILTER_REASONS},
                     "bytes removed": f"{100 * removed / max(size, 1):.0f}%"})
    noise = [k != "clean" for k in labels]
    dropped = [bool(r) for r in reasons]
    hits = sum(n and r for n, r in zip(noise, dropped))
    total = sum(len(d.encode()) for d in train)
    return rows, {"precision": hits / max(sum(dropped), 1), "recall": hits / max(sum(noise), 1),
                  "noise_bytes_share": sum(len(d.encode()) for d, n in zip(train, noise) if n) / max(total, 1)}


# ---------------------------------------------------------------------------------------------------------------
# 4. Sampling by weights and the tiny-GPT run
# ---------------------------------------------------------------------------------------------------------------


def sample_domains(weights: list[float], n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n domain indices drawn i.i.d. with probability proportional to weights: (n,) int64."""
    w = torch.tensor(weights, dtype=torch.float64)
    return torch.multinomial(w / w.sum(), n, replacement=True, generator=generator)


def encode(text: str) -> torch.Tensor:
    """Bytes as token ids (vocabulary 256): any text or language encodes; no tokenizer to train or ship."""
    return torch.frombuffer(bytearray(text.encode("utf-8")), dtype=torch.uint8).long()


def decode(ids: list[int]) -> str:
    """Byte ids (0-255) back to text; invalid UTF-8 becomes U+FFFD."""
    return bytes(int(i) for i in ids).decode("utf-8", errors="replace")


SIZES = {  # name -> (n_layer, n_head, n_embd); CPU ms per step of 16 x 64 bytes, one thread (bench/bench_gpt.py)
    "tiny (2 x 64, ~20 ms/step)": (2, 4, 64),
    "small (2 x 96, ~30 ms/step)": (2, 4, 96),
    "medium (3 x 128, ~65 ms/step)": (3, 4, 128),
}
DEFAULT_SIZE = "small (2 x 96, ~30 ms/step)"


@dataclass(frozen=True)
class MixtureRunConfig:
    """One training run of the tiny GPT on a mixture. Uploads enter as (name, sha256) so the run id changes
    with their content; their text reaches the run through `train_mixture`'s `uploads` argument."""

    domains: tuple[str, ...] = corpora.CLEAN_DOMAINS
    weights: tuple[float, ...] = (1.0, 1.0, 1.0)  # relative; normalised at run time
    steps: int = 1000  # ~40 s on an idle 2-core CPU: long enough for the per-domain curves to separate
    batch_size: int = 16
    block_size: int = 64  # 64 bytes of context: a line or two
    size: str = DEFAULT_SIZE
    lr: float = 3e-3  # small models tolerate (and need) a high learning rate
    warmup: int = 30
    eval_every: int = 50
    sample_every: int = 250
    quality_filter: bool = False
    repeat_domain: str = ""  # '' = none; else this domain's training text is cut to repeat_kb
    repeat_kb: int = 4
    uploads: tuple[tuple[str, str], ...] = ()  # (domain name, sha256 of its text)
    seed: int = 0

    def __post_init__(self):
        if not self.domains:
            raise ValueError("Pick at least one domain to train on.")
        if len(self.weights) != len(self.domains):
            raise ValueError("Give one weight per domain.")
        normalise_weights(list(self.weights))  # raises with a message
        from labs.training import loop as training

        training.check_between("Steps", self.steps, 1, 20000)
        training.check_between("Batch size", self.batch_size, 1, 512)
        if not 8 <= self.block_size <= 1024:
            raise ValueError("Context length must be between 8 and 1024 bytes.")
        if self.size not in SIZES:
            raise ValueError(f"Model size must be one of: {', '.join(SIZES)}.")
        training.check_lr(self.lr, "try 3e-3", high=math.inf)
        if self.eval_every < 1 or self.sample_every < 1:
            raise ValueError("Evaluate and sample at least every step (the value must be 1 or more).")
        if self.repeat_domain and self.repeat_domain not in self.domains:
            raise ValueError(f"The repeated domain '{self.repeat_domain}' is not in the mixture.")
        if self.repeat_domain and self.repeat_kb < 1:
            raise ValueError("The repeated domain needs at least 1 KB of text.")

    def gpt_config(self) -> GPTConfig:
        """The byte-level GPT for this run: vocabulary 256, block_size bytes of context, depth and width from SIZES."""
        n_layer, n_head, n_embd = SIZES[self.size]
        return GPTConfig(vocab_size=256, block_size=self.block_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd)


@dataclass
class DomainData:
    """One domain's train and validation byte streams (1-D tensors of byte ids) and how they were made."""

    name: str
    train: torch.Tensor  # (N_train,) byte ids, documents joined by blank lines
    val: torch.Tensor  # (N_val,) byte ids of the held-out documents
    train_docs: int
    filter_stats: FilterStats | None = None
    repeated_to_kb: int = 0
    prompts: list[str] = field(default_factory=list)  # starts of held-out documents, to sample from


def _join(docs: list[str]) -> torch.Tensor:
    return encode("\n\n".join(docs) + "\n\n")


def prepare_domains(cfg: MixtureRunConfig, uploads: dict[str, list[str]] | None = None) -> dict[str, DomainData]:
    """Per-domain train / validation byte streams. Validation is always the *filtered* held-out text (the
    text we care about), so runs with and without the filter are scored on the same data."""
    uploads = uploads or {}
    out = {}
    for name in cfg.domains:
        docs = uploads[name] if name in uploads else corpora.builtin_documents(name)
        train_docs, val_docs = corpora.split(docs)
        clean_val, _ = quality_filter(val_docs)
        val_docs = clean_val or val_docs
        stats = None
        if cfg.quality_filter:
            filtered, stats = quality_filter(train_docs)
            train_docs = filtered or train_docs
        train = _join(train_docs)
        if name == cfg.repeat_domain:
            train = train[: cfg.repeat_kb * 1000]
        val = _join(val_docs)
        need = cfg.block_size + 1
        if len(train) < need or len(val) < need:
            raise ValueError(f"Domain '{name}' has too little text ({len(train)} train / {len(val)} validation "
                             f"bytes) for a context of {cfg.block_size}: add text or shorten the context.")
        out[name] = DomainData(name, train, val, len(train_docs), stats,
                               cfg.repeat_kb if name == cfg.repeat_domain else 0,
                               [d[:24] for d in val_docs[:3]])
    return out


def _windows(stream: torch.Tensor, starts: torch.Tensor, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = starts[:, None] + torch.arange(T + 1)[None, :]  # (B, T+1)
    chunk = stream[idx]
    return chunk[:, :-1], chunk[:, 1:]  # inputs (B, T), labels = inputs shifted by one (B, T)


def get_batch(data: dict[str, DomainData], names: list[str], weights: list[float], B: int, T: int,
              gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A mixed batch: each row's domain drawn by weight, then a random window of that domain's training text.
    Returns x (B, T), y (B, T), domain index per row (B,)."""
    dom = sample_domains(weights, B, gen)  # (B,)
    xs, ys = [], []
    for i in dom.tolist():
        stream = data[names[i]].train
        start = torch.randint(0, len(stream) - T - 1, (1,), generator=gen)
        x, y = _windows(stream, start, T)
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys), dom


def fixed_windows(stream: torch.Tensor, n: int, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n evenly spaced windows of a stream (the same every evaluation, so curves are comparable)."""
    last = len(stream) - T - 1
    starts = torch.linspace(0, last, min(n, last + 1)).long()
    return _windows(stream, starts, T)


@torch.no_grad()
def evaluate(model: GPT, windows: dict[str, tuple[torch.Tensor, torch.Tensor]], device: str) -> dict[str, float]:
    """Mean next-byte loss (nats) per named set of windows."""
    model.eval()
    out = {}
    for key, (x, y) in windows.items():
        out[key] = model.token_losses(x.to(device), y.to(device)).mean().item()
    model.train()
    return out


def warmup_steps(cfg: MixtureRunConfig) -> int:
    """Warm-up length in steps: cfg.warmup, but at most a fifth of the run (at least 1)."""
    return min(cfg.warmup, max(cfg.steps // 5, 1))  # short runs warm up for their first fifth


def upload_entry(name: str, docs: list[str]) -> tuple[str, str]:
    """(name, content hash) of an uploaded domain for MixtureRunConfig: 16 hex digits of the documents' sha256."""
    return name, hashlib.sha256("\x00".join(docs).encode()).hexdigest()[:16]


def train_mixture(ctx, uploads: dict[str, list[str]] | None = None, eval_windows: int = 16,
                  sample_bytes: int = 80) -> dict:
    """The background run: train a fresh GPT on the mixture, logging per-domain validation loss.

    Metrics per step: loss, lr, tokens_per_s; every eval_every steps val_<domain> and train_<domain> (the
    same fixed windows each time) and epochs_<domain>. Every sample_every steps a sample per domain as a note.
    """
    device = settings.device_info().device
    with _gpt_threads(device):
        return _train(ctx, uploads, eval_windows, sample_bytes, device)


@contextmanager
def _gpt_threads(device: str):
    """On a CPU, train this GPT on one thread (LLMLAB_GPT_THREADS): its matrices are tiny, and a second CPU thread
    costs more in synchronisation than it saves (measured: equal speed on an idle 2-core machine, many times
    slower on a busy one). set_num_threads is per thread here, so only this worker changes; restored afterwards
    because the pool reuses its threads."""
    if device != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("LLMLAB_GPT_THREADS", "1")))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _train(ctx, uploads, eval_windows: int, sample_bytes: int, device: str) -> dict:
    cfg: MixtureRunConfig = ctx.config
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    ctx.note("Preparing the text domains (the first run reads the standard library: a few seconds)…")
    data = prepare_domains(cfg, uploads)
    names = list(cfg.domains)
    weights, _ = normalise_weights(list(cfg.weights))
    gcfg = cfg.gpt_config()
    model = GPT(gcfg).to(device)
    T, B = cfg.block_size, cfg.batch_size
    windows = {}
    for n in names:
        windows[f"val_{n}"] = fixed_windows(data[n].val, eval_windows, T)
        windows[f"train_{n}"] = fixed_windows(data[n].train, eval_windows, T)
    for n in names:
        d = data[n]
        extra = ""
        if d.filter_stats:
            s = d.filter_stats
            extra = (f"; quality filter removed {s.removed_fraction:.0%} of its bytes ({s.duplicates} duplicates, "
                     f"{s.too_short} short, {s.repetitive} repetitive, {s.symbols} symbol-heavy documents)")
        if d.repeated_to_kb:
            extra += f"; cut to {d.repeated_to_kb} KB to be repeated"
        ctx.note(f"{n}: {len(d.train) / 1000:.0f} KB train, {len(d.val) / 1000:.0f} KB validation{extra}")
    ctx.note(f"model: {model.num_parameters():,} parameters ({gcfg.n_layer} layers x {gcfg.n_embd} wide), "
             f"byte-level, context {T}, on {device}")
    ctx.set_total(cfg.steps)
    drawn = {n: 0 for n in names}
    samples = []

    def batches():
        while True:
            yield get_batch(data, names, weights, B, T, gen)

    def loss_fn(batch) -> training.StepOutput:
        x, y, dom = batch
        _, loss = model(x.to(device), y.to(device))  # mean next-byte cross-entropy
        for i in dom.tolist():
            drawn[names[i]] += T
        return training.StepOutput(loss, tokens=B * T, flops=flops_per_token(gcfg, T) * B * T)

    def evaluate_step(step: int) -> dict:  # the same fixed windows each time, and epochs read so far per domain
        return {**evaluate(model, windows, device), **{f"epochs_{n}": drawn[n] / len(data[n].train)
                                                               for n in names}}

    def sample(step: int, row: dict) -> None:
        if step % cfg.sample_every == 0 or step == cfg.steps:
            for i, n in enumerate(names):
                text = sample_text(model, data[n].prompts[0] if data[n].prompts else "\n", sample_bytes, device,
                                   seed=cfg.seed * 1_000_003 + step * 101 + i)
                samples.append({"step": step, "domain": n, "text": text})
                ctx.note(f"step {step} · {n}: {text!r}")

    model.train()
    loop = training.LoopSettings(steps=cfg.steps, lr=cfg.lr, warmup=warmup_steps(cfg), weight_decay=0.1,
                                 betas=(0.9, 0.95), eval_every=cfg.eval_every, eval_at_start=True, rate_every=10,
                                 loss_name="loss")
    fit = training.fit(ctx, model.parameters(), batches(), loss_fn, loop, evaluate=evaluate_step, on_step=sample,
                       device=device)
    loss_val, last_eval = fit.final_loss, fit.last_eval
    ctx.save_json("samples.json", samples)
    return {"final_loss": loss_val, **last_eval, "params": model.num_parameters(),
            "flops_per_token": flops_per_token(gcfg, T), "achieved_gflops": fit.achieved_gflops}


# ---------------------------------------------------------------------------------------------------------------
# 5. Quality beats quantity at equal compute (claim M4): the same GPT, steps and seed on the noisy domain, with and
#    without the filter, both scored on the same clean held-out text
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QualityComparisonConfig:
    """Two tiny GPTs trained side by side for the same steps from the same initial weights and seed: one on all of
    a noisy domain, one on what the quality filter keeps of it. Defaults: ~45 s on a 2-core CPU (measured while other
    jobs kept it busy; both models train on one thread)."""

    domain: str = corpora.NOISY_DOMAIN  # a built-in domain; 'web' is the one made noisy on purpose
    steps: int = 600  # the filtered run reads its ~200 KB of clean text ~3 times: inside the ~4-epoch sweet spot
    batch_size: int = 16
    block_size: int = 64
    size: str = DEFAULT_SIZE
    lr: float = 3e-3
    warmup: int = 30
    eval_every: int = 50
    eval_windows: int = 64  # 64 windows x 64 bytes = 4 KB of clean held-out text per evaluation
    seed: int = 0

    def __post_init__(self):
        if self.domain not in corpora.BUILTIN_DOMAINS:
            raise ValueError(f"Pick a built-in domain ({', '.join(corpora.BUILTIN_DOMAINS)}), not '{self.domain}'.")
        if not 1 <= self.eval_windows <= 1024:
            raise ValueError("Evaluate on 1 to 1024 windows of held-out text.")
        self.run_config(True)  # the step, size, lr and eval checks, with their messages

    def run_config(self, filtered: bool) -> MixtureRunConfig:
        """One arm of the comparison as a one-domain mixture run (filtered or not)."""
        return MixtureRunConfig(domains=(self.domain,), weights=(1.0,), steps=self.steps, batch_size=self.batch_size,
                                block_size=self.block_size, size=self.size, lr=self.lr, warmup=self.warmup,
                                eval_every=self.eval_every, sample_every=self.steps, quality_filter=filtered,
                                seed=self.seed)


QUALITY_ARMS = ("unfiltered", "filtered")


def run_quality_comparison(ctx) -> dict:
    """The background run of claim M4. Metrics: loss_<arm> every step (its own training batches) and, every
    eval_every steps, val_<arm> (nats per byte on the same clean held-out windows) for arm in QUALITY_ARMS.
    Returns both final clean-validation losses, the filter's stats and label check, steps and seconds."""
    device = settings.device_info().device
    with _gpt_threads(device):
        return _compare(ctx, ctx.config, device)


def _compare(ctx, cfg: QualityComparisonConfig, device: str) -> dict:
    t0 = time.perf_counter()
    ctx.note(f"Preparing the '{cfg.domain}' domain twice: as scraped, and after the quality filter…")
    data = {arm: prepare_domains(cfg.run_config(arm == "filtered"))[cfg.domain] for arm in QUALITY_ARMS}
    val = data["filtered"].val  # prepare_domains filters the held-out text in both arms: the same clean bytes
    T, B = cfg.block_size, cfg.batch_size
    windows = {"val": fixed_windows(val, cfg.eval_windows, T)}
    gcfg = cfg.run_config(False).gpt_config()
    models, gens = {}, {}
    for arm in QUALITY_ARMS:  # the same initial weights and the same batch order (by position) in both arms
        torch.manual_seed(cfg.seed)
        models[arm] = GPT(gcfg).to(device).train()
        gens[arm] = torch.Generator().manual_seed(cfg.seed)
    stats = data["filtered"].filter_stats
    ctx.note(f"{cfg.domain}: {len(data['unfiltered'].train) / 1000:.0f} KB as scraped, "
             f"{len(data['filtered'].train) / 1000:.0f} KB after the filter (removed {stats.removed_fraction:.0%}); "
             f"{len(val) / 1000:.0f} KB of clean held-out text scores both")
    ctx.set_total(cfg.steps)
    names = [cfg.domain]

    def batches():
        while True:
            yield {arm: get_batch({cfg.domain: data[arm]}, names, [1.0], B, T, gens[arm]) for arm in QUALITY_ARMS}

    def loss_fn(batch) -> training.StepOutput:  # two independent losses: their sum's gradient is each model's own
        losses = {arm: models[arm](x.to(device), y.to(device))[1] for arm, (x, y, _) in batch.items()}
        return training.StepOutput(sum(losses.values()), tokens=2 * B * T,
                                   flops=2 * flops_per_token(gcfg, T) * B * T,
                                   metrics={f"loss_{arm}": float(v.detach()) for arm, v in losses.items()})

    def evaluate_step(step: int) -> dict:
        return {f"val_{arm}": evaluate(models[arm], windows, device)["val"] for arm in QUALITY_ARMS}

    # One param group per model, each clipped on its own: exactly two separate AdamW runs, stepped together so
    # both curves move live and share the x axis.
    loop = training.LoopSettings(steps=cfg.steps, lr=cfg.lr, warmup=warmup_steps(cfg.run_config(False)),
                                 weight_decay=0.1, betas=(0.9, 0.95), eval_every=cfg.eval_every, eval_at_start=True,
                                 rate_every=10, clip_per_group=True, loss_name=None)
    fit = training.fit(ctx, [{"params": list(models[arm].parameters())} for arm in QUALITY_ARMS], batches(),
                       loss_fn, loop, evaluate=evaluate_step, device=device)
    _, labels = (filter_vs_labels(list(corpora.web_pages())) if cfg.domain == corpora.NOISY_DOMAIN else (None, {}))
    return {**fit.last_eval, "steps": fit.steps, "seconds": time.perf_counter() - t0,
            "train_seconds": fit.train_seconds, "filter": asdict(stats),
            "bytes": {arm: len(data[arm].train) for arm in QUALITY_ARMS}, "clean_val_bytes": len(val),
            "params": models["filtered"].num_parameters(), **labels}


@dataclass(frozen=True)
class QualityComparisonResult:
    """A finished M4 run: both clean-validation losses (nats per byte), the filter's counts, and its cost."""

    val_unfiltered: float
    val_filtered: float
    steps: int
    seconds: float
    filter: FilterStats | None
    precision: float | None = None  # of the filter against the web domain's labels (None for other domains)
    recall: float | None = None
    train_bytes: dict = field(default_factory=dict)  # {arm: training bytes}


def quality_result(run) -> QualityComparisonResult | None:
    """The typed result of a finished run_quality_comparison job (None: no run, still active, or no losses)."""
    if run is None or run.active:
        return None
    return _quality_from_summary(run.summary or {})


def _quality_from_summary(s: dict) -> QualityComparisonResult | None:
    if "val_filtered" not in s or "val_unfiltered" not in s:
        return None
    stats = FilterStats(**s["filter"]) if isinstance(s.get("filter"), dict) else None
    return QualityComparisonResult(float(s["val_unfiltered"]), float(s["val_filtered"]), int(s.get("steps", 0)),
                                   float(s.get("seconds", math.nan)), stats, s.get("precision"), s.get("recall"),
                                   dict(s.get("bytes", {})))


def quality_verdict(result: QualityComparisonResult | dict | None):
    """Claim M4 from a comparison's result (or its summary dict): labs.runs.lessons.quality_filter_helps, with the
    steps, seconds and the filter's removed share and precision / recall as further figures."""
    from labs.runs import lessons

    if isinstance(result, dict):
        result = _quality_from_summary(result)
    if result is None:
        return lessons.not_measured("M4", "no finished comparison yet: press 'Compare with and without the filter'")
    v = lessons.quality_filter_helps(result.val_filtered, result.val_unfiltered)
    v.figures.update(steps=result.steps, seconds=round(result.seconds, 1))
    if result.filter is not None:
        v.figures["removed_bytes_share"] = round(result.filter.removed_fraction, 3)
    if result.precision is not None:
        v.figures.update(filter_precision=round(result.precision, 3), filter_recall=round(result.recall, 3))
    return v


OVERFIT_DOMAIN = "prose"  # the domain the lessons benchmark repeats (the page's "Repeat a small domain" knob)


def overfitting_verdict(metrics: list[dict], domain: str):
    """Does the repeated domain overfit in this run? Its train/validation windows at every evaluation point,
    judged by labs.runs.lessons.overfitting (claim C3)."""
    from labs.runs import lessons

    if not domain:
        return lessons.not_measured("C3", "this run repeats no domain: pick one under 'Repeat a small domain' so it "
                                          "is read for many epochs")
    pts = [m for m in metrics if f"val_{domain}" in m and f"train_{domain}" in m]
    return lessons.overfitting([int(m["step"]) for m in pts], [m[f"train_{domain}"] for m in pts],
                               [m[f"val_{domain}"] for m in pts])


def sample_text(model: GPT, prompt: str, n: int, device: str, seed: int = 0, temperature: float = 0.8) -> str:
    """The prompt followed by n sampled bytes (top-k 40), decoded; seeded on CPU, unseeded on other devices."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    idx = encode(prompt)[None, :].to(device)  # (1, T) the prompt's byte ids
    was_training = model.training
    model.eval()
    if device != "cpu":  # torch.multinomial needs a generator on the same device
        gen = None
    out = model.generate(idx, n, temperature=temperature, top_k=40, generator=gen)
    model.train(was_training)
    return decode(out[0].tolist())


def bits(nats: float) -> float:
    """Loss in bits per byte (nats / ln 2): comparable with a compressor's output size."""
    return nats / math.log(2)


__all__ = ["Source", "Preset", "PRESETS", "GPT3", "LLAMA1", "GROWTH", "growth_rows", "normalise_weights",
           "mixture_table", "epochs_differ", "shift_for_next_token", "next_token_rows", "quality_filter",
           "sample_domains", "MixtureRunConfig", "prepare_domains", "train_mixture", "SIZES", "bits", "DEFAULT_SENTENCE",
           "shift_check", "OVERFIT_DOMAIN", "overfitting_verdict", "filter_reasons", "near_duplicate_key",
           "filter_vs_labels", "QualityComparisonConfig", "run_quality_comparison", "quality_result", "quality_verdict"]


# ---------------------------------------------------------------------------------------------------------------
# 6. Charts for this lab (plain data in, Plotly figure out)
# ---------------------------------------------------------------------------------------------------------------


def shares_chart(rows: list[dict]):
    """Share of the training tokens vs share of the data, per source (grouped bars)."""
    import plotly.graph_objects as go

    from labs.core import charts

    names = [r["source"] for r in rows]
    fig = go.Figure()
    fig.add_bar(x=names, y=[100 * r["weight"] for r in rows], name="share of training tokens (weight)",
                marker_color=charts.PALETTE[0])
    fig.add_bar(x=names, y=[100 * r["share of data"] for r in rows], name="share of the data (size)",
                marker_color=charts.PALETTE[1])
    fig = charts._layout(fig, "Sampled more or less than its size?", "", "%")
    return fig.update_layout(barmode="group", legend=dict(y=-0.45, yanchor="top", x=0, xanchor="left"))


def epochs_chart(rows: list[dict], threshold: float):
    """Computed epochs per source, the published figure beside it, lines at 1 epoch and at the threshold."""
    import plotly.graph_objects as go

    from labs.core import charts

    names = [r["source"] for r in rows]
    fig = go.Figure()
    fig.add_bar(x=names, y=[r["epochs"] for r in rows], name="computed: weight x budget / size",
                marker_color=[charts.PALETTE[3] if r["repeated"] else charts.PALETTE[0] for r in rows],
                text=[f"{r['epochs']:.2f}" for r in rows], textposition="auto")
    if any(r["published epochs"] is not None for r in rows):
        fig.add_bar(x=names, y=[r["published epochs"] for r in rows], name="published",
                    marker_color=charts.PALETTE[8],
                    text=[f"{r['published epochs']}" if r["published epochs"] is not None else "" for r in rows],
                    textposition="auto")
    fig.add_hline(y=1, line_dash="dot", annotation_text="1 epoch (every token seen once)")
    fig.add_hline(y=threshold, line_dash="dash", line_color=charts.PALETTE[3],
                  annotation_text=f"{threshold:g} epochs: flagged as repeated")
    fig = charts._layout(fig, "Epochs per source", "", "epochs")
    return fig.update_layout(barmode="group", legend=dict(y=-0.45, yanchor="top", x=0, xanchor="left"))


def growth_chart():
    """Training tokens of GPT-3 -> LLaMA 1 -> 2 -> 3 (log scale), with tokens per parameter in the labels."""
    import plotly.graph_objects as go

    from labs.core import charts

    rows = growth_rows()
    fig = go.Figure(go.Bar(
        x=[f"{r['model']} ({r['year']})" for r in rows], y=[r["tokens (B)"] for r in rows],
        text=[f"{r['tokens (B)'] / 1000:g}T tokens · {r['tokens per parameter']:g} tok/param" for r in rows],
        textposition="outside", marker_color=[charts.PALETTE[2] if r["model"] == "Phi-3-mini" else charts.PALETTE[0]
                                              for r in rows],
        customdata=[[r["params (B)"], r["source"]] for r in rows],
        hovertemplate="%{x}<br>%{y:,}B tokens<br>%{customdata[0]}B parameters<br>%{customdata[1]}<extra></extra>"))
    fig = charts._layout(fig, "Training tokens, published (log scale)", "", "tokens (billions)", log_y=True, height=380)
    fig.update_yaxes(range=[2, 4.7])
    return fig
