"""Embed and store: all-MiniLM-L6-v2 vectors in a Chroma collection, one per (corpus, splitter settings, distance).

We always hand Chroma our own embeddings (`embedding_function=None`): Chroma's default embedder would try to
download an ONNX model, and this app never downloads at run time. Telemetry is off.

Chroma's three distances (what `query` returns as "distances"; smaller = closer):

    l2      d(A, B) = Σᵢ (Aᵢ − Bᵢ)²            squared Euclidean (Chroma's default)
    ip      d(A, B) = 1 − Σᵢ AᵢBᵢ              one minus the inner product
    cosine  d(A, B) = 1 − A·B / (‖A‖ ‖B‖)      one minus the cosine similarity

all-MiniLM-L6-v2 ends with a Normalize layer, so ‖A‖ = ‖B‖ = 1 and l2 = 2·cosine, ip = cosine: the three
give the same ranking on its vectors, and differ only for unnormalised embeddings.
"""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence
from urllib.parse import urlparse

import chromadb
import numpy as np
import torch
from chromadb.config import Settings

from labs import models
from labs.core import compute, settings
from labs.core.errors import ConfigError
from labs.rag.split import Chunk, SplitConfig


DISTANCES = {
    "cosine": "d(A, B) = 1 − A·B / (‖A‖ ‖B‖)",
    "l2": "d(A, B) = Σᵢ (Aᵢ − Bᵢ)²   (squared, no square root)",
    "ip": "d(A, B) = 1 − Σᵢ AᵢBᵢ",
}
DISTANCE_LATEX = {
    "cosine": r"d(A,B) = 1 - \frac{\sum_i A_i B_i}{\lVert A\rVert\,\lVert B\rVert}",
    "l2": r"d(A,B) = \sum_i (A_i - B_i)^2",
    "ip": r"d(A,B) = 1 - \sum_i A_i B_i",
}
Progress = Callable[[float, str], None]


def distance(kind: str, query: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """The formula Chroma uses for `kind`, in numpy: query (M,), vectors (N, M) -> (N,) distances."""
    q, v = np.asarray(query, dtype=np.float64), np.asarray(vectors, dtype=np.float64)
    if kind == "l2":
        return ((v - q) ** 2).sum(axis=1)
    if kind == "ip":
        return 1.0 - v @ q
    if kind == "cosine":
        return 1.0 - (v @ q) / (np.linalg.norm(v, axis=1) * np.linalg.norm(q) + 1e-12)
    raise ConfigError(f"Unknown distance '{kind}': use one of {', '.join(DISTANCES)}.")


def cosine_similarity(query: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity of query (M,) to each row of vectors (N, M): (N,), in [−1, 1]."""
    return 1.0 - distance("cosine", query, vectors)


# ------------------------------------------------------------------------------------------------ the client

_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


def where() -> str:
    """Where vectors live: the server URL or the folder of the embedded store."""
    return settings.chroma_url() or str(settings.home() / "chroma")


def client():
    """PersistentClient under LLMLAB_HOME/chroma, or HttpClient when LLMLAB_CHROMA_URL is set (one per target)."""
    target = where()
    with _clients_lock:
        if target not in _clients:
            chroma_settings = Settings(anonymized_telemetry=False)
            url = settings.chroma_url()
            if url:
                parsed = urlparse(url if "://" in url else f"http://{url}")
                if not parsed.hostname:
                    raise ConfigError(f"LLMLAB_CHROMA_URL={url} is not a URL like http://localhost:8000.")
                ssl = parsed.scheme == "https"
                try:
                    _clients[target] = chromadb.HttpClient(host=parsed.hostname, port=parsed.port or (443 if ssl else 8000),
                                                           ssl=ssl, settings=chroma_settings)
                except Exception as exc:  # noqa: BLE001 - connection errors come in several types
                    raise ConnectionError(f"Could not reach the Chroma server at {url} ({exc}). Start it with "
                                          "`chroma run --path <folder> --port <port>` or unset LLMLAB_CHROMA_URL.") from exc
            else:
                _clients[target] = chromadb.PersistentClient(path=str(settings.subdir("chroma")), settings=chroma_settings)
        return _clients[target]


def corpus_for(corpus_id: str, embedder_key: str) -> str:
    """The corpus id an index is stored under: other embedding models (from the models file) get their own
    collections, since their vectors have other meanings and sizes."""
    if embedder_key == models.EMBEDDING_MODEL:
        return corpus_id
    return f"{corpus_id}-e{hashlib.sha256(embedder_key.encode()).hexdigest()[:8]}"


def collection_name(corpus_id: str, split_config: SplitConfig, kind: str) -> str:
    """One collection per (corpus, splitter settings, distance); Chroma names allow [a-zA-Z0-9._-]."""
    blob = repr((split_config.method, split_config.chunk_size, split_config.chunk_overlap, split_config.unit,
                 split_config.separators))
    return f"rag-{corpus_id}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}-{kind}"


# -------------------------------------------------------------------------------------------------- the index

@dataclass
class Index:
    """A stored collection plus an in-memory mirror of its vectors (for MMR, BM25, the 2-D map and the triad)."""

    name: str
    distance: str
    corpus_id: str
    split_config: SplitConfig
    chunks: list[Chunk]
    embeddings: np.ndarray  # (N, M) float32, row i = chunk i
    collection: object = field(repr=False)
    reused: bool = False  # True when the collection already held these chunks (nothing was embedded)
    embed_seconds: float = 0.0
    store_seconds: float = 0.0
    _bm25: object = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def chunks_per_second(self) -> float:
        """Embedding throughput of this index's build, chunks per second (NaN when the time was not measured)."""
        return len(self.chunks) / self.embed_seconds if self.embed_seconds else float("nan")

    def query(self, query_vec: np.ndarray, n: int) -> list[tuple[int, float]]:
        """Chroma's nearest neighbours: [(chunk index, raw distance)], closest first."""
        n = max(1, min(n, len(self.chunks)))
        result = self.collection.query(query_embeddings=[np.asarray(query_vec, dtype=np.float32).tolist()],
                                       n_results=n, include=["distances"])
        return [(int(i[1:]), float(d)) for i, d in zip(result["ids"][0], result["distances"][0])]


def embed_texts(embedder, texts: Sequence[str], batch_size: int = 32, progress: Progress | None = None) -> np.ndarray:
    """Embed in batches (so a progress bar can move); returns (N, M) float32."""
    progress = progress or (lambda f, m: None)
    if not texts:
        return np.zeros((0, embedder.get_sentence_embedding_dimension()), dtype=np.float32)
    out, t0 = [], time.perf_counter()
    # A query or two is a tiny forward: one thread answers in milliseconds instead of queueing for every core
    # behind training and generation (labs.core.compute). Bulk ingest uses this thread's share.
    n_threads = compute.threads_for("embedding") if len(texts) <= 4 else torch.get_num_threads()
    for start in range(0, len(texts), batch_size):
        batch = [t.strip() or t for t in texts[start:start + batch_size]]
        with compute.threads(n_threads):
            vecs = embedder.encode(batch, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
        out.append(np.asarray(vecs, dtype=np.float32))
        done = min(start + batch_size, len(texts))
        rate = done / max(time.perf_counter() - t0, 1e-9)
        progress(done / len(texts), f"Embedded {done}/{len(texts)} chunks · {rate:.0f} chunks/s")
    return np.concatenate(out)


_build_locks: dict[str, threading.Lock] = {}


def build_index(corpus_id: str, chunks: list[Chunk], embedder, split_config: SplitConfig, kind: str = "cosine",
                batch_size: int = 32, progress: Progress | None = None) -> Index:
    """Embed and store `chunks`, or reuse the collection if it already holds exactly these chunks."""
    if kind not in DISTANCES:
        raise ConfigError(f"Unknown distance '{kind}': use one of {', '.join(DISTANCES)}.")
    if not chunks:
        raise ConfigError("There are no chunks to store: load a document with some text first.")
    progress = progress or (lambda f, m: None)
    db = client()
    name = collection_name(corpus_id, split_config, kind)
    with _clients_lock:
        lock = _build_locks.setdefault(name, threading.Lock())
    with lock:  # two sessions asking for the same collection embed it once
        collection = db.get_or_create_collection(name, configuration={"hnsw": {"space": kind}},
                                                 embedding_function=None, metadata={"corpus": corpus_id,
                                                                                    "splitter": split_config.label})
        ids = [c.id for c in chunks]
        if collection.count() == len(chunks):
            t0 = time.perf_counter()
            got = collection.get(ids=ids, include=["embeddings"])
            if len(got["ids"]) == len(ids):
                order = {cid: i for i, cid in enumerate(got["ids"])}
                vectors = np.asarray([got["embeddings"][order[cid]] for cid in ids], dtype=np.float32)
                progress(1.0, f"Reused the stored collection {name} ({len(ids)} chunks)")
                return Index(name, kind, corpus_id, split_config, chunks, vectors, collection, reused=True,
                             store_seconds=time.perf_counter() - t0)
        if collection.count():  # stale or half-written: start again
            db.delete_collection(name)
            collection = db.get_or_create_collection(name, configuration={"hnsw": {"space": kind}},
                                                     embedding_function=None,
                                                     metadata={"corpus": corpus_id, "splitter": split_config.label})
        t0 = time.perf_counter()
        vectors = embed_texts(embedder, [c.indexed_text for c in chunks], batch_size,
                              lambda f, m: progress(0.9 * f, m))
        embed_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        step = 1000
        try:
            step = min(step, int(db.get_max_batch_size()))
        except Exception:  # noqa: BLE001 - older servers lack the endpoint
            pass
        for start in range(0, len(chunks), step):
            part = chunks[start:start + step]
            collection.add(ids=[c.id for c in part], embeddings=vectors[start:start + step],
                           documents=[c.text for c in part],
                           metadatas=[{"source": c.source, "start": c.start, "end": c.end, "position": c.position,
                                       "length": c.length, "heading": c.heading} for c in part])
        progress(1.0, f"Stored {len(chunks)} chunks in {name}")
        return Index(name, kind, corpus_id, split_config, chunks, vectors, collection,
                     embed_seconds=embed_seconds, store_seconds=time.perf_counter() - t0)
