"""Retrieval on documentation nobody here wrote: hit@1/3/5 and MRR per mode, splitter and embedder. JSON out.

    .venv/bin/python -m bench.bench_retrieval                 # both doc sets, both embedders, the LLM re-rank
    .venv/bin/python -m bench.bench_retrieval --quick         # MiniLM only, no re-rank (a minute or two)

The corpora are two documentation sets every install has (labs.rag.docsets): the Markdown guides the streamlit
package ships and torch.nn's API reference (its layer classes' docstrings). The questions (bench/retrieval/
questions.json) were written by reading those pages, each with the page(s) that answer it, before anything was
measured on them, and are frozen; every third is a dev question, the rest the test split. Nothing here is tuned:
the test split is what the README reports, the dev split is printed beside it. A question is a hit at k when one of
the first k chunks comes from an answer page; MRR is the mean of 1 / (rank of the first such chunk) within the top
`--k` (0 beyond it). Query time is one question's embedding + search (+ fusion), one at a time, as the page asks.
Run it with nothing else heavy on the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import save


QUESTIONS = Path(__file__).parent / "retrieval" / "questions.json"
TODAY = ("all-minilm-l6-v2", "recursive", "dense")  # the RAG page's defaults before this benchmark existed


def modes() -> dict[str, dict]:
    """The retrieval modes compared, as RetrieveConfig fields."""
    return {"dense": dict(method="dense"), "mmr": dict(method="mmr", mmr_lambda=0.5),
            "hybrid rrf": dict(method="hybrid", fusion="rrf"),
            "hybrid weighted 0.3": dict(method="hybrid", fusion="weighted", bm25_weight=0.3)}


def first_hit(sources: list[str], answers: list[str]) -> int | None:
    """1-based rank of the first retrieved chunk from an answer page, or None."""
    return next((r for r, s in enumerate(sources, start=1) if s in answers), None)


def scores(ranks: list[int | None], k: int) -> dict:
    """hit@1/3/5 and MRR@k (in %, and MRR as a fraction) of first-hit ranks."""
    n = len(ranks)
    hit = {f"hit@{c}": round(100 * sum(r is not None and r <= c for r in ranks) / n, 1) for c in (1, 3, 5)}
    return {**hit, "mrr": round(sum(1 / r for r in ranks if r is not None and r <= k) / n, 3), "n": n}


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else float("nan")


def run(args) -> dict:
    from labs import models
    from labs.rag import docsets, load, retrieve, split, store

    data = json.loads(QUESTIONS.read_text())
    questions = [q for q in data["questions"] if q["docset"] in args.docsets]
    embedders = ["all-minilm-l6-v2"] if args.quick else list(args.embedders)
    splitters = {"recursive": split.SplitConfig(), "markdown": split.SplitConfig(method="markdown")}
    rows, reranker = [], None
    if args.rerank and not args.quick:
        from labs.rag import generate
        lm = models.load_model(models.DEFAULT_CHAT_MODEL)
        reranker = lambda q, text: generate.llm_relevance(lm, q, text)  # noqa: E731 - the page's re-ranker
    for embedder_key in embedders:
        t0 = time.perf_counter()
        embedder = models.load_embedder(key=embedder_key)
        load_s = time.perf_counter() - t0
        for docset in args.docsets:
            docs = docsets.load_docset(docset)
            asked = [q for q in questions if q["docset"] == docset]
            for splitter, split_config in splitters.items():
                chunks = split.split_documents(docs, split_config)
                t0 = time.perf_counter()
                index = store.build_index(store.corpus_for(load.corpus_id(docs), embedder_key), chunks, embedder,
                                          split_config)
                ingest_s = time.perf_counter() - t0
                variants = dict(modes())
                if reranker is not None and embedder_key == embedders[0]:
                    variants["dense + LLM re-rank"] = dict(method="dense", rerank="llm", fetch_k=args.rerank_from)
                for mode, fields in variants.items():
                    config = retrieve.RetrieveConfig(k=args.k, min_similarity=-1.0, compress_to=0,
                                                     **{"fetch_k": 20, **fields})
                    retrieve.retrieve(index, "warm up", embedder, config, reranker=reranker)  # BM25 index, threads
                    ranks, times = {"dev": [], "test": []}, []
                    for q in asked:
                        t0 = time.perf_counter()
                        result = retrieve.retrieve(index, q["question"], embedder, config, reranker=reranker)
                        times.append((time.perf_counter() - t0) * 1000)
                        ranks[q["split"]].append(first_hit([h.chunk.source for h in result.hits], q["answers"]))
                    row = {"docset": docset, "embedder": embedder_key, "splitter": splitter, "mode": mode,
                           "chunks": len(chunks), "test": scores(ranks["test"], args.k),
                           "dev": scores(ranks["dev"], args.k), "query_ms_p50": _pct(times, 50),
                           "query_ms_p95": _pct(times, 95), "ingest_s": round(ingest_s, 1),
                           "ingest_reused": index.reused, "embedder_load_s": round(load_s, 2)}
                    rows.append(row)
                    print(f"{docset:17} {embedder_key:17} {splitter:9} {mode:20} test hit@3 "
                          f"{row['test']['hit@3']:5.1f}  MRR {row['test']['mrr']:.3f}  p95 {row['query_ms_p95']} ms",
                          flush=True)
    return {"rows": rows, "written": data.get("written", ""), "questions": {
        d: {s: sum(q["docset"] == d and q["split"] == s for q in questions) for s in ("dev", "test")}
        for d in args.docsets}}


def overall(rows: list[dict], key: tuple[str, str, str], split_name: str = "test") -> dict:
    """One configuration's scores over every doc set, weighted by questions."""
    mine = [r for r in rows if (r["embedder"], r["splitter"], r["mode"]) == key]
    n = sum(r[split_name]["n"] for r in mine)
    out = {m: round(sum(r[split_name][m] * r[split_name]["n"] for r in mine) / n, 3 if m == "mrr" else 1)
           for m in ("hit@1", "hit@3", "hit@5", "mrr")}
    return {**out, "n": n, "query_ms_p95": max(r["query_ms_p95"] for r in mine)}


def main(argv=None) -> dict:
    from labs.rag import docsets

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="MiniLM only, no LLM re-rank")
    ap.add_argument("--docsets", nargs="+", default=list(docsets.DOCSETS))
    ap.add_argument("--embedders", nargs="+", default=["all-minilm-l6-v2", "all-mpnet-base-v2"])
    ap.add_argument("--k", type=int, default=5, help="chunks retrieved (hit@5 and MRR@5 need 5)")
    ap.add_argument("--no-rerank", dest="rerank", action="store_false")
    ap.add_argument("--rerank-from", type=int, default=10, help="dense candidates the LLM re-ranks")
    ap.add_argument("--out", default="retrieval")
    args = ap.parse_args(argv)
    os.environ.setdefault("LLMLAB_HOME", tempfile.mkdtemp(prefix="llmlab-bench-retrieval-"))
    os.environ.pop("LLMLAB_CHROMA_URL", None)
    result = run(args)
    rows = result["rows"]
    configs = sorted({(r["embedder"], r["splitter"], r["mode"]) for r in rows})
    table = {" · ".join(c): overall(rows, c) for c in configs}
    best = max(table, key=lambda c: (table[c]["hit@3"], table[c]["mrr"]))
    today = " · ".join(TODAY)
    hybrid_vs_dense = {f"{e} · {s}": {"hybrid rrf": table[f"{e} · {s} · hybrid rrf"]["hit@3"],
                                      "dense": table[f"{e} · {s} · dense"]["hit@3"]}
                       for e, s, m in configs if m == "dense"}
    result.update({
        "overall_test": table, "today_default": today, "best": best,
        "goals": {
            "hybrid_rrf_ge_dense_hit3_every_embedder_and_splitter":
                all(v["hybrid rrf"] >= v["dense"] for v in hybrid_vs_dense.values()),
            "best_hit3_at_least_today_plus_15": table[best]["hit@3"] >= table[today]["hit@3"] + 15
            if today in table else None,
            "best_query_p95_le_50ms": table[best]["query_ms_p95"] <= 50,
        },
        "hybrid_vs_dense_hit3": hybrid_vs_dense,
        "note": "Test split only in overall_test; per doc set and dev figures in rows. Measured with nothing else "
                "heavy running on the machine.",
    })
    print(json.dumps({"best": best, **table[best], "today": table.get(today), "goals": result["goals"]}, indent=1))
    save(args.out, result)
    return result


if __name__ == "__main__":
    main()
