"""Retrieve: dense top-k from Chroma, MMR diversity, hybrid BM25 + dense, and HyDE query rewriting.

* dense  -- the k nearest chunks by the collection's distance (a dual/bi-encoder: query and chunks are
            embedded separately, so chunk vectors are computed once at ingest).
* mmr    -- Maximal Marginal Relevance (Carbonell & Goldstein 1998): from the `fetch_k` nearest, pick one at a
            time the chunk maximising  λ·sim(q, d) − (1 − λ)·max_{s ∈ selected} sim(d, s).
* hybrid -- BM25 keyword ranking (Robertson & Zaragoza 2009) fused with the dense ranking by Reciprocal Rank
            Fusion (Cormack, Clarke & Büttcher 2009):  score(d) = Σ_rankings 1 / (60 + rank(d)) -- no weight to
            tune, so nothing fitted to one collection's questions ("rrf", the default). "weighted" gives BM25 the
            share w and dense 1 − w:  Σ w_r / (60 + rank_r(d)).
* rerank -- re-score the `fetch_k` candidates with a model that reads question and chunk *together* (a
            cross-encoder; here the local LLM's log p(Yes) − log p(No), a pointwise LLM re-ranker), keep the best k.
* HyDE   -- Hypothetical Document Embeddings (Gao et al. 2022): the model writes a passage that *would*
            answer the question; we search with the mean of the question's and the passage's embeddings.
* compress -- contextual compression: of the k retrieved chunks, hand the model only the `compress_to` sentences
            most similar to the question (cosine of the same embeddings), in rank order, each cited by its chunk's
            number. A 135M reader copies the answer from two relevant sentences far more often than it finds it
            in four 500-character chunks (bench_lessons C9).
"""
from __future__ import annotations

import re
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from rank_bm25 import BM25Okapi

from labs.core.errors import ConfigError
from labs.rag.split import Chunk
from labs.rag.store import Index, cosine_similarity, embed_texts


METHODS = ("dense", "mmr", "hybrid")
REWRITES = ("none", "hyde")
RERANKS = ("none", "llm")
FUSIONS = ("rrf", "weighted")
RRF_K = 60  # Cormack et al. 2009 found 60 works well across collections


@dataclass(frozen=True)
class RetrieveConfig:
    """How chunks are retrieved for a question: how many (k), by which method (dense, mmr, bm25, hybrid), from
    how many candidates, with optional HyDE rewrite and LLM re-rank, and the similarity floor below which the
    answer is 'I don't know'."""
    k: int = 4  # chunks handed to the model; 4 × 500 characters fit a small model's attention comfortably
    method: str = "dense"
    fetch_k: int = 20  # candidates MMR and hybrid choose from
    mmr_lambda: float = 0.5  # 1 = pure relevance, 0 = pure diversity
    fusion: str = "rrf"  # hybrid: plain reciprocal rank fusion, or "weighted" by bm25_weight
    bm25_weight: float = 0.5  # share of the keyword ranking in weighted fusion
    rewrite: str = "none"  # "none" or "hyde"
    rerank: str = "none"  # "none" or "llm" (re-score fetch_k candidates, one LLM forward pass each)
    # Below this cosine for the best chunk the answer is "I don't know". Measured on the stdlib corpus with
    # all-MiniLM-L6-v2: off-topic questions peak at 0.16-0.26, every bundled question reaches >= 0.40.
    min_similarity: float = 0.30
    compress_to: int = 2  # sentences kept for the model (0 = hand it the whole chunks); see RagClaimConfig

    def __post_init__(self):
        if not 1 <= self.k <= 50:
            raise ConfigError("k (chunks to retrieve) must be between 1 and 50.")
        if self.method not in METHODS:
            raise ConfigError(f"Retrieval method must be one of {', '.join(METHODS)}.")
        if self.fetch_k < self.k:
            raise ConfigError("Candidates (fetch_k) must be at least k.")
        if not 0 <= self.mmr_lambda <= 1 or not 0 <= self.bm25_weight <= 1:
            raise ConfigError("MMR λ and the BM25 weight must be between 0 and 1.")
        if self.fusion not in FUSIONS:
            raise ConfigError(f"Fusion must be one of {', '.join(FUSIONS)}.")
        if self.rewrite not in REWRITES:
            raise ConfigError(f"Query rewriting must be one of {', '.join(REWRITES)}.")
        if self.rerank not in RERANKS:
            raise ConfigError(f"Re-ranking must be one of {', '.join(RERANKS)}.")
        if not -1 <= self.min_similarity <= 1:
            raise ConfigError("The relevance threshold is a cosine similarity between -1 and 1.")
        if not 0 <= self.compress_to <= 50:
            raise ConfigError("Sentences kept for the model must be between 0 (whole chunks) and 50.")


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk: its rank, cosine similarity to the query, the store's distance, the score the method
    ranked by, its BM25 score when known, and its place in the dense and in the BM25 ranking (hybrid fuses those)."""
    rank: int  # 1 = best
    chunk: Chunk
    similarity: float  # cosine(query, chunk) -- comparable across methods
    distance: float | None  # Chroma's raw distance for the collection's metric (None if only BM25 found it)
    score: float  # what the method ranked by (−distance, MMR score, or RRF score)
    bm25: float | None = None
    dense_rank: int | None = None  # 1 = nearest; None when outside the fetched candidates
    bm25_rank: int | None = None  # 1 = best keyword match; None when not searched or no shared word


@dataclass(frozen=True)
class Passage:
    """What the model reads for one retrieved chunk: its rank (the number an answer cites) and the text kept."""
    rank: int
    text: str
    similarity: float | None = None  # cosine(query, this sentence) when it was kept by compression


@dataclass
class Retrieval:
    """The result of one question: the query vector (M,), the hits best first, the HyDE passage if any, and
    timings in milliseconds."""
    question: str
    query_vec: np.ndarray
    hits: list[Hit]
    hypothetical: str = ""  # the HyDE passage, if any
    timings_ms: dict = field(default_factory=dict)
    passages: list[Passage] = field(default_factory=list)  # what the model reads (compressed or whole chunks)

    @property
    def best_similarity(self) -> float:
        """The highest cosine similarity among the hits; −1 when there are none."""
        return max((h.similarity for h in self.hits), default=-1.0)


# ------------------------------------------------------------------------------------------------- rankers

_TOKEN = re.compile(r"[a-z0-9_]+")


def bm25_tokens(text: str) -> list[str]:
    """Lower-cased word tokens of a text for BM25 (the same tokenizer for chunks and questions)."""
    return _TOKEN.findall(text.lower())


def bm25_scores(index: Index, question: str) -> np.ndarray:
    """BM25Okapi score of every chunk for the question's words (the index is built once per collection)."""
    if index._bm25 is None:
        index._bm25 = BM25Okapi([bm25_tokens(c.indexed_text) or ["_"] for c in index.chunks])
    return np.asarray(index._bm25.get_scores(bm25_tokens(question)), dtype=np.float64)


def mmr(query_vec: np.ndarray, candidates: np.ndarray, k: int, lam: float) -> list[int]:
    """Maximal Marginal Relevance over candidate vectors (N, M): returns positions into `candidates`, in pick order."""
    relevance = cosine_similarity(query_vec, candidates)  # (N,)
    unit = candidates / (np.linalg.norm(candidates, axis=1, keepdims=True) + 1e-12)
    pairwise = unit @ unit.T  # (N, N)
    chosen: list[int] = []
    remaining = list(range(len(candidates)))
    while remaining and len(chosen) < k:
        redundancy = pairwise[np.ix_(remaining, chosen)].max(axis=1) if chosen else np.zeros(len(remaining))
        scores = lam * relevance[remaining] - (1 - lam) * redundancy
        chosen.append(remaining.pop(int(np.argmax(scores))))
    return chosen


def rrf(rankings: list[list[int]], weights: list[float]) -> dict[int, float]:
    """Reciprocal Rank Fusion: Σ w / (60 + rank), rank starting at 1."""
    fused: dict[int, float] = {}
    for ranking, w in zip(rankings, weights):
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + w / (RRF_K + rank)
    return fused


def hyde_query(question: str, passage: str, embedder) -> np.ndarray:
    """HyDE: mean of the question's and the hypothetical passage's embeddings, renormalised."""
    vecs = embed_texts(embedder, [question, passage])
    mean = vecs.mean(axis=0)
    return mean / (np.linalg.norm(mean) + 1e-12)


def retrieve(index: Index, question: str, embedder, config: RetrieveConfig = RetrieveConfig(),
             rewriter: Callable[[str], str] | None = None, query_vec: np.ndarray | None = None,
             reranker: Callable[[str, str], float] | None = None) -> Retrieval:
    """Top-k chunks for `question` under `config`. `rewriter(question) -> passage` is needed for HyDE,
    `reranker(question, chunk_text) -> score` (higher = more relevant) for re-ranking;
    `query_vec` skips embedding the question (when it was embedded already, e.g. in a batch)."""
    question = (question or "").strip()
    if not question:
        raise ConfigError("Type a question first.")
    timings: dict[str, float] = {}
    hypothetical = ""
    t0 = time.perf_counter()
    if query_vec is not None and config.rewrite == "none":
        pass
    elif config.rewrite == "hyde":
        if rewriter is None:
            raise ConfigError("HyDE needs a model to write the hypothetical passage.")
        hypothetical = rewriter(question)
        timings["rewrite_ms"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        query_vec = hyde_query(question, hypothetical, embedder) if hypothetical.strip() else embed_texts(embedder, [question])[0]
    else:
        query_vec = embed_texts(embedder, [question])[0]
    timings["embed_ms"] = (time.perf_counter() - t0) * 1000

    t0 = time.perf_counter()
    fetch = config.k if config.method == "dense" and config.rerank == "none" else config.fetch_k
    nearest = index.query(query_vec, fetch)  # [(chunk index, raw distance)]
    raw = dict(nearest)
    dense_ranks = {i: r for r, (i, _) in enumerate(nearest, start=1)}
    bm25, keyword_ranks = None, {}
    if config.method == "dense":
        order = [(i, -d) for i, d in nearest]
    elif config.method == "mmr":
        cand = [i for i, _ in nearest]
        picks = mmr(query_vec, index.embeddings[cand], config.k, config.mmr_lambda)
        rel = cosine_similarity(query_vec, index.embeddings[cand])
        order = [(cand[p], float(rel[p])) for p in picks]  # score shown: relevance of the picked chunk
    else:  # hybrid
        bm25 = bm25_scores(index, question)
        keyword = [int(i) for i in np.argsort(-bm25, kind="stable")[:config.fetch_k] if bm25[i] > 0]
        keyword_ranks = {i: r for r, i in enumerate(keyword, start=1)}
        weights = [1.0, 1.0] if config.fusion == "rrf" else [1 - config.bm25_weight, config.bm25_weight]
        fused = rrf([[i for i, _ in nearest], keyword], weights)
        order = sorted(fused.items(), key=lambda kv: -kv[1])
    timings["search_ms"] = (time.perf_counter() - t0) * 1000
    if config.rerank == "llm":
        if reranker is None:
            raise ConfigError("Re-ranking needs a model to score the candidates.")
        t0 = time.perf_counter()
        if config.method == "mmr":  # MMR already chose k; re-rank a diverse list of fetch_k instead
            cand = [i for i, _ in nearest]
            order = [(cand[p], 0.0) for p in mmr(query_vec, index.embeddings[cand], config.fetch_k, config.mmr_lambda)]
        candidates = [i for i, _ in order[:config.fetch_k]]
        order = sorted(((i, float(reranker(question, index.chunks[i].text))) for i in candidates), key=lambda kv: -kv[1])
        timings["rerank_ms"] = (time.perf_counter() - t0) * 1000
    order = order[:config.k]
    sims = cosine_similarity(query_vec, index.embeddings[[i for i, _ in order]]) if order else []
    hits = [Hit(rank=r + 1, chunk=index.chunks[i], similarity=float(s), distance=raw.get(i), score=float(score),
                bm25=float(bm25[i]) if bm25 is not None else None, dense_rank=dense_ranks.get(i),
                bm25_rank=keyword_ranks.get(i))
            for r, ((i, score), s) in enumerate(zip(order, sims))]
    t0 = time.perf_counter()
    passages = compress(hits, query_vec, embedder, config.compress_to) if config.compress_to else whole(hits)
    if config.compress_to:
        timings["compress_ms"] = (time.perf_counter() - t0) * 1000
    return Retrieval(question, query_vec, hits, hypothetical, timings, passages)


MAX_CHARS_PER_CHUNK = 1200  # a whole chunk is cut here: k chunks stay well inside a small model's context window
MAX_CHARS_PER_SENTENCE = 300
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\[`*])|\n(?=[\w.]+: )")  # '. Next' or a new 'module.name: ' entry


def sentences(text: str) -> list[str]:
    """A chunk cut into sentences (and docstring entries), whitespace collapsed; fragments under 16 characters
    (headings, stray symbols) are dropped."""
    out = []
    for paragraph in re.split(r"\n\s*\n", text):
        for piece in _SENTENCE_END.split(paragraph.strip()):
            piece = " ".join(piece.split())
            if len(piece) >= 16:
                out.append(piece[:MAX_CHARS_PER_SENTENCE])
    return out


def whole(hits: list[Hit]) -> list[Passage]:
    """Every retrieved chunk as one passage (cut to MAX_CHARS_PER_CHUNK)."""
    return [Passage(h.rank, h.chunk.text.strip()[:MAX_CHARS_PER_CHUNK]) for h in hits]


_SENTENCES: "weakref.WeakKeyDictionary[object, OrderedDict[str, np.ndarray]]" = weakref.WeakKeyDictionary()
_SENTENCES_LOCK = threading.Lock()
SENTENCE_CACHE = 20_000  # sentence vectors kept per embedder (MiniLM: 1.5 kB each, 30 MB in all)


def sentence_vectors(embedder, texts: list[str]) -> np.ndarray:
    """(N, M) vectors of sentences, each embedded once per embedder: the chunks a question retrieves come back for
    other questions (the RAG claim's 30 questions read 588 sentences, 473 of them distinct) and at every later run
    on the same corpus (compressing all 30 again: 5 ms instead of about 6 s on 2 cores, measured)."""
    with _SENTENCES_LOCK:
        known = _SENTENCES.setdefault(embedder, OrderedDict())
        have = {t: known[t] for t in texts if t in known}  # kept here: another thread may evict them meanwhile
    missing = list(dict.fromkeys(t for t in texts if t not in have))
    new = dict(zip(missing, embed_texts(embedder, missing))) if missing else {}
    with _SENTENCES_LOCK:
        known.update(new)
        while len(known) > SENTENCE_CACHE:
            known.popitem(last=False)
    return np.stack([have[t] if t in have else new[t] for t in texts])


def compress(hits: list[Hit], query_vec: np.ndarray, embedder, keep: int) -> list[Passage]:
    """Contextual compression: the `keep` sentences of the hits most similar to the query, in rank order (then
    in their order inside the chunk), each tagged with its chunk's rank."""
    candidates = [(h.rank, n, text) for h in hits for n, text in enumerate(sentences(h.chunk.text))]
    if not candidates:
        return whole(hits)
    sims = cosine_similarity(query_vec, sentence_vectors(embedder, [c[2] for c in candidates]))
    best = sorted(np.argsort(-sims, kind="stable")[:keep], key=lambda i: candidates[i][:2])
    return [Passage(candidates[i][0], candidates[i][2], float(sims[i])) for i in best]
