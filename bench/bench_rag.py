"""RAG ingest speed and retrieval latency: our path (labs.rag.store) vs plain Chroma + sentence-transformers. JSON out.

    .venv/bin/python -m bench.bench_rag [--chunks 10000] [--embed-sample 256] [--queries 200] [--threads 2]

Ingest (chunks/s) is embedding-dominated, so it is measured on `--embed-sample` real stdlib-docstring chunks
through both paths: ours (batched `embed_texts`, then `collection.add` with our vectors) and the plain one
(`collection.add(documents=...)` with Chroma's SentenceTransformerEmbeddingFunction on the same local model
folder, default settings). Retrieval latency at `--chunks` uses a collection of that many vectors: the sample's
real embeddings repeated with small Gaussian noise and renormalised (HNSW search time depends on N and the
dimension, not on the text), so 10k chunks do not take an hour to embed on a busy CPU. Reported: p50/p95 of
search alone (question already embedded) and of embed + search, for both paths. Goal (issue #7): ingest at
least as fast as the plain path, retrieval p95 < 50 ms. On a shared machine wall time mostly measures the
neighbours; CPU seconds are reported next to it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from bench import save


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=10_000)
    ap.add_argument("--embed-sample", type=int, default=256)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")
    args = ap.parse_args()
    os.environ["LLMLAB_HOME"] = tempfile.mkdtemp(prefix="llmlab-bench-rag-")
    os.environ.pop("LLMLAB_CHROMA_URL", None)

    import chromadb
    import torch
    from chromadb.config import Settings
    from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction

    from labs import models
    from labs.rag import evaluate, load, split, store

    if args.threads:
        torch.set_num_threads(args.threads)
    embedder = models.load_embedder(device="cpu")
    docs = load.default_corpus()
    config = split.SplitConfig()
    chunks = split.split_documents(docs, config)[:args.embed_sample]
    texts = [c.text for c in chunks]
    result: dict = {"device": "cpu", "threads": torch.get_num_threads(), "sample_chunks": len(chunks),
                    "mean_chunk_chars": round(statistics.mean(len(t) for t in texts), 1)}

    # --- ingest: ours
    w0, c0 = time.perf_counter(), time.process_time()
    ours = store.build_index("bench", chunks, embedder, config, "cosine", batch_size=32)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    result["ingest_ours"] = {"chunks_per_s": round(len(chunks) / wall, 1), "wall_s": round(wall, 2),
                             "cpu_s": round(cpu, 2), "chunks_per_cpu_s": round(len(chunks) / cpu, 1)}
    # --- ingest: plain Chroma + sentence-transformers (default settings, same local model folder)
    folder = models.package_dir(models.EMBEDDING_MODEL) / models.spec(models.EMBEDDING_MODEL).filename
    ef = SentenceTransformerEmbeddingFunction(model_name=str(folder), device="cpu")
    plain_client = chromadb.PersistentClient(path=tempfile.mkdtemp(prefix="llmlab-bench-plain-"),
                                             settings=Settings(anonymized_telemetry=False))
    plain = plain_client.create_collection("plain", embedding_function=ef, configuration={"hnsw": {"space": "cosine"}})
    ef(["warm-up"])  # load the model before timing, as ours was loaded before
    w0, c0 = time.perf_counter(), time.process_time()
    plain.add(ids=[c.id for c in chunks], documents=texts)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    result["ingest_plain"] = {"chunks_per_s": round(len(chunks) / wall, 1), "wall_s": round(wall, 2),
                              "cpu_s": round(cpu, 2), "chunks_per_cpu_s": round(len(chunks) / cpu, 1)}

    # --- retrieval at N chunks: real vectors repeated with noise, in both kinds of collection
    rng = np.random.default_rng(0)
    reps = int(np.ceil(args.chunks / len(chunks)))
    big = np.concatenate([ours.embeddings + rng.normal(0, 0.02, ours.embeddings.shape) for _ in range(reps)])
    big = (big / np.linalg.norm(big, axis=1, keepdims=True))[:args.chunks].astype(np.float32)
    big_chunks = [split.Chunk(chunks[i % len(chunks)].text, chunks[i % len(chunks)].source, 0, 1, i, i, 1)
                  for i in range(args.chunks)]

    class Replay:  # hands build_index the prepared vectors instead of embedding 10k texts again
        def encode(self, batch, **kw):
            out = big[self.pos:self.pos + len(batch)]
            self.pos += len(batch)
            return out

        def get_sentence_embedding_dimension(self):
            return big.shape[1]

    replay = Replay()
    replay.pos = 0
    ours_big = store.build_index("bench-big", big_chunks, replay, config, "cosine", batch_size=1000)
    plain_big = plain_client.create_collection("plain-big", embedding_function=ef,
                                               configuration={"hnsw": {"space": "cosine"}})
    for start in range(0, args.chunks, 1000):
        plain_big.add(ids=[f"c{i}" for i in range(start, min(start + 1000, args.chunks))],
                      embeddings=big[start:start + 1000], documents=[c.text for c in big_chunks[start:start + 1000]])
    questions = [q.question for q in evaluate.questions()]
    qs = [questions[i % len(questions)] for i in range(args.queries)]
    qvecs = store.embed_texts(embedder, qs)
    timings = {"ours_search_ms": [], "ours_embed_search_ms": [], "plain_search_ms": [], "plain_embed_search_ms": []}
    for q, v in zip(qs, qvecs):
        t0 = time.perf_counter()
        ours_big.query(v, 4)
        timings["ours_search_ms"].append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        ours_big.query(store.embed_texts(embedder, [q])[0], 4)
        timings["ours_embed_search_ms"].append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        plain_big.query(query_embeddings=[v.tolist()], n_results=4)
        timings["plain_search_ms"].append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        plain_big.query(query_texts=[q], n_results=4)
        timings["plain_embed_search_ms"].append((time.perf_counter() - t0) * 1000)
    result["retrieval"] = {"chunks": args.chunks, "queries": args.queries,
                           **{name: {"p50": _pct(v, 50), "p95": _pct(v, 95)} for name, v in timings.items()}}
    result["goal_ingest_at_least_plain"] = (result["ingest_ours"]["chunks_per_s"]
                                            >= 0.95 * result["ingest_plain"]["chunks_per_s"])
    result["goal_search_p95_under_50ms"] = result["retrieval"]["ours_search_ms"]["p95"] < 50
    save("rag", result)


if __name__ == "__main__":
    main()
