"""Embed -> store -> retrieve -> evaluate on a small slice of the stdlib corpus with the real embedder."""
import numpy as np
import pytest

from labs.runs import jobs
from labs import models
from labs.rag import evaluate, generate, load, retrieve, split, store

# A slice of the default corpus (~18 k characters) so the module embeds in seconds even on a busy CPU.
MODULES = ("heapq", "bisect", "textwrap", "hashlib", "fnmatch", "glob", "secrets", "copy")
SPLIT = split.SplitConfig(chunk_size=500, chunk_overlap=50)


@pytest.fixture(scope="module")
def embedder():
    return models.load_embedder(device="cpu")


@pytest.fixture(scope="module")
def index(embedder):
    docs = load.default_corpus(MODULES)
    chunks = split.split_documents(docs, SPLIT)
    return store.build_index(load.corpus_id(docs), chunks, embedder, SPLIT, "cosine")


def test_index_mirrors_the_collection(index, embedder):
    assert index.collection.count() == len(index.chunks) == len(index.embeddings)
    norms = np.linalg.norm(index.embeddings, axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-4)  # all-MiniLM-L6-v2 normalises: l2 = 2·cosine, ip = cosine
    again = store.build_index(index.corpus_id, index.chunks, embedder, SPLIT, "cosine")
    assert again.reused and again.name == index.name


def test_a_query_that_is_a_chunk_retrieves_it_first(index, embedder):
    for chunk in index.chunks[::12]:
        result = retrieve.retrieve(index, chunk.text, embedder, retrieve.RetrieveConfig(k=3))
        top = result.hits[0]
        assert top.chunk.index == chunk.index or top.similarity > 0.999  # (or an identical duplicate chunk)
        assert top.distance == pytest.approx(1 - top.similarity, abs=1e-3)  # Chroma's raw cosine distance


def test_mmr_lambda_one_is_dense_and_lower_lambda_diversifies(index, embedder):
    q = "hash functions sha256 md5"
    dense = retrieve.retrieve(index, q, embedder, retrieve.RetrieveConfig(k=4))
    pure = retrieve.retrieve(index, q, embedder, retrieve.RetrieveConfig(k=4, method="mmr", mmr_lambda=1.0))
    assert [h.chunk.index for h in pure.hits] == [h.chunk.index for h in dense.hits]
    # two identical candidates and one different: MMR with λ = 0.3 takes the different one second
    cands = np.array([[1, 0, 0], [1, 0, 0], [0.6, 0.8, 0]], dtype=np.float32)
    assert retrieve.mmr(np.array([1, 0, 0.0]), cands, 2, 0.3) == [0, 2]
    assert retrieve.mmr(np.array([1, 0, 0.0]), cands, 2, 1.0) == [0, 1]


def test_rrf_and_hybrid(index, embedder):
    fused = retrieve.rrf([[7, 3], [3, 9]], [0.5, 0.5])
    assert fused[3] == pytest.approx(0.5 / 62 + 0.5 / 61) and max(fused, key=fused.get) == 3
    result = retrieve.retrieve(index, "pbkdf2_hmac", embedder, retrieve.RetrieveConfig(k=3, method="hybrid"))
    assert result.hits[0].chunk.source == "hashlib" and result.hits[0].bm25 > 0
    assert "pbkdf2_hmac" in result.hits[0].chunk.text


def test_hit_at_k_on_the_bundled_questions(index, embedder):
    qs = evaluate.questions(MODULES)
    assert len(qs) >= 8
    vecs = store.embed_texts(embedder, [q.question for q in qs])  # one batch, reused by every method
    for method in retrieve.METHODS:
        config = retrieve.RetrieveConfig(k=4, method=method)
        hits = [evaluate.hit_at_k(retrieve.retrieve(index, q.question, embedder, config, query_vec=v).hits, q.sources)
                for q, v in zip(qs, vecs)]
        print(f"hit@4 {method}: {np.mean(hits):.2f} over {len(qs)} questions")  # reported with pytest -s
        assert np.mean(hits) >= 0.7


def test_off_topic_question_is_answered_with_i_dont_know(index, embedder):
    config = retrieve.RetrieveConfig()
    r = retrieve.retrieve(index, "How do I bake sourdough bread?", embedder, config)
    assert not generate.is_answerable(r, config.min_similarity)
    assert "I don't know" in "".join(generate.stream_answer(None, r, None, config.min_similarity))


def test_triad_orders_good_above_bad(embedder):
    embed = lambda texts: store.embed_texts(embedder, texts)  # noqa: E731
    context = ["heapq.nsmallest: Find the n smallest elements in a dataset."]
    good = evaluate.triad("How do I find the n smallest elements?", "Use heapq.nsmallest [1].", context, embed)
    copy = evaluate.triad("How do I find the n smallest elements?", context[0], context, embed)
    bad = evaluate.triad("How do I find the n smallest elements?", "Paris is the capital of France.", context, embed)
    assert copy["groundedness"] == pytest.approx(1.0, abs=1e-3)
    assert good["groundedness"] > bad["groundedness"] and good["answer_relevance"] > bad["answer_relevance"]
    assert good["context_relevance"] == bad["context_relevance"]  # same question, same context
    q = "How do I find the n smallest elements?"
    pre = evaluate.triad(q, "Use heapq.nsmallest [1].", context, embed, question_vec=embed([q])[0],
                         context_vecs=embed(context))
    assert pre == pytest.approx(good, abs=1e-5)  # precomputed vectors give the same scores
    lo, hi = evaluate.bootstrap_ci([0.2, 0.4, 0.6, 0.8])
    assert lo <= 0.5 <= hi


def test_citations_are_parsed():
    assert generate.citations("Use X [2] and Y [1, 3][9].", k=4) == [2, 1, 3]


def test_question_set_evidence_is_in_the_installed_docstrings():
    docs = {d.source: d.text for d in load.default_corpus()}
    for q in evaluate.questions():
        assert any(q.evidence in docs.get(s, "") for s in q.sources), q.id


def test_eval_run_and_leaderboard(index, embedder, tiny):
    config = evaluate.RagEvalConfig(corpus_modules=MODULES, n_questions=3, max_new_tokens=8, tiny_model=True)
    run_id = jobs.submit(config, lambda ctx: evaluate.run_eval(ctx, embedder, tiny), label="RAG eval")
    run = jobs.wait(run_id, timeout=300)
    assert run.status == jobs.DONE, run.reason
    s = run.summary
    assert s["reused_index"] and 0 <= s["hit_at_k"] <= 1 and len(run.metrics) == 3
    assert all(np.isfinite(s[k]) for k in ("context_relevance", "search_ms_p50"))
    rows = evaluate.leaderboard(jobs.list_runs("RagEvalConfig"))
    assert rows and rows[0]["run"] == run_id and rows[0]["hit@k"] == s["hit_at_k"]
    with pytest.raises(ValueError, match="between 1 and"):
        evaluate.RagEvalConfig(corpus_modules=MODULES, n_questions=99)


def test_rerank_reorders_candidates_and_llm_scores_are_finite(index, embedder, tiny):
    q = "Which function derives a key from a password?"
    wanted = next(c for c in index.chunks if "fnmatchcase" in c.text)  # deliberately an irrelevant chunk
    config = retrieve.RetrieveConfig(k=2, fetch_k=len(index.chunks), rerank="llm")
    r = retrieve.retrieve(index, q, embedder, config, reranker=lambda q, text: float(text == wanted.text))
    assert r.hits[0].chunk.text == wanted.text and r.hits[0].score == 1.0 and "rerank_ms" in r.timings_ms
    with pytest.raises(ValueError, match="Re-ranking needs a model"):
        retrieve.retrieve(index, q, embedder, config)
    score = generate.llm_relevance(tiny, q, index.chunks[0].text)
    assert np.isfinite(score)


def test_chunk_viewer_escapes_markup():
    from labs.rag import charts as rag_charts

    doc = load.Document("x.html", "<script>alert(1)</script> " * 20, "text")
    chunks = split.split_documents([doc], split.SplitConfig(chunk_size=60, chunk_overlap=30))
    html = rag_charts.chunk_viewer_html(doc.text, chunks)
    assert "<script>" not in html and "&lt;script&gt;" in html and "overlap of chunks" in html


def test_contains_answer_and_the_c9_verdict():
    from labs.runs import lessons

    q = evaluate.Question("x", "How do I sort keys?", ("json",), "Pass sort_keys=True.", "sort_keys=True", ("sort_keys",))
    assert evaluate.contains_answer("Use SORT_KEYS=True", q) and not evaluate.contains_answer("use sorted()", q)
    no_keys = evaluate.Question("y", "?", ("json",), "a", "the evidence")
    assert evaluate.contains_answer("… the evidence …", no_keys)
    assert all(q.answer_keys for q in evaluate.questions())  # every bundled question says what counts
    summary = {"hit_at_k": {"dense": 0.8, "hybrid 0.3": 0.85}, "hybrid_mode": "hybrid 0.3", "k": 4, "n": 30,
               "rag_contains": [1.0] * 20 + [0.0] * 10, "no_rag_contains": [0.0] * 25 + [1.0] * 5,
               "rag_similarity": [0.7] * 30, "no_rag_similarity": [0.4] * 30, "similarity_difference_ci": (0.25, 0.35)}
    v = evaluate.rag_claim_verdict(summary)
    assert v.verdict == lessons.HOLDS and "similarity to the reference 0.70 vs 0.40" in v.figure
    worse = evaluate.rag_claim_verdict(dict(summary, hit_at_k={"dense": 0.9, "hybrid 0.3": 0.8}))
    assert worse.verdict == lessons.FAILS and "hybrid" in worse.reason
    assert evaluate.rag_claim_verdict({}).verdict == lessons.NOT_MEASURED


def test_sentence_vectors_embed_each_sentence_once_and_equal_a_fresh_embedding(embedder, monkeypatch):
    """Compression's sentence vectors: the same as embedding the sentences directly (to float rounding), each
    sentence embedded once per embedder however many questions retrieve its chunk, and the cache stays bounded."""
    texts = ["Push item onto heap.", "Pop the smallest item.", "Raises IndexError if empty."]
    calls = []
    real = retrieve.embed_texts
    monkeypatch.setattr(retrieve, "embed_texts", lambda e, t: calls.append(list(t)) or real(e, t))
    retrieve._SENTENCES.pop(embedder, None)
    first = retrieve.sentence_vectors(embedder, texts[:2])
    again = retrieve.sentence_vectors(embedder, [texts[1], texts[2], texts[0], texts[2]])
    assert calls == [texts[:2], [texts[2]]]  # only the new sentence, once although asked twice
    np.testing.assert_allclose(again, real(embedder, [texts[1], texts[2], texts[0], texts[2]]), atol=1e-5)
    np.testing.assert_array_equal(again[2], first[0])
    monkeypatch.setattr(retrieve, "SENTENCE_CACHE", 2)
    retrieve.sentence_vectors(embedder, ["One more sentence."])
    assert len(retrieve._SENTENCES[embedder]) == 2


def test_contextual_compression_keeps_the_sentence_that_answers(index, embedder):
    text = ("Heap queue algorithm (a.k.a. priority queue).\n\nheapq.heappush: Push item onto heap, maintaining the "
            "heap invariant.\nheapq.heappop: Pop the smallest item off the heap. Raises IndexError if empty.")
    assert retrieve.sentences(text) == ["Heap queue algorithm (a.k.a. priority queue).",
                                        "heapq.heappush: Push item onto heap, maintaining the heap invariant.",
                                        "heapq.heappop: Pop the smallest item off the heap.",
                                        "Raises IndexError if empty."]
    q = "Which function derives a key from a password with PBKDF2?"
    whole = retrieve.retrieve(index, q, embedder, retrieve.RetrieveConfig(k=4, method="hybrid", compress_to=0))
    short = retrieve.retrieve(index, q, embedder, retrieve.RetrieveConfig(k=4, method="hybrid", compress_to=3))
    assert [h.chunk.index for h in short.hits] == [h.chunk.index for h in whole.hits]  # the same chunks retrieved
    assert [p.text for p in whole.passages] == [h.chunk.text.strip() for h in whole.hits]
    assert len(short.passages) == 3 and "compress_ms" in short.timings_ms
    assert any("pbkdf2_hmac" in p.text for p in short.passages)
    ranks = [p.rank for p in short.passages]
    assert ranks == sorted(ranks) and set(ranks) <= {h.rank for h in short.hits}  # cited by their chunk's number
    assert sum(map(len, (p.text for p in short.passages))) < sum(map(len, (p.text for p in whole.passages))) / 2
    user = generate.rag_messages(q, short.passages)[1]["content"]
    assert all(f"[{p.rank}] {p.text}" in user for p in short.passages)
    assert retrieve.whole(whole.hits) == whole.passages  # what the model reads with compression off
    assert generate.answer_config(48).repetition_penalty == 1.0  # copying from the passages is not penalised
    with pytest.raises(ValueError, match="Sentences kept"):
        retrieve.RetrieveConfig(compress_to=-1)


def test_hybrid_rrf_needs_no_weight_and_every_hit_shows_both_ranks(index, embedder):
    question = "pbkdf2_hmac iterations for a password"
    rrf = retrieve.retrieve(index, question, embedder, retrieve.RetrieveConfig(k=5, method="hybrid"))
    assert retrieve.RetrieveConfig().fusion == "rrf"
    # plain RRF ignores the weight; the weighted fusion with a 0.5 share ranks the same (both halves equal)
    other_weight = retrieve.retrieve(index, question, embedder,
                                     retrieve.RetrieveConfig(k=5, method="hybrid", bm25_weight=0.9))
    half = retrieve.retrieve(index, question, embedder,
                             retrieve.RetrieveConfig(k=5, method="hybrid", fusion="weighted", bm25_weight=0.5))
    ids = [h.chunk.index for h in rrf.hits]
    assert ids == [h.chunk.index for h in other_weight.hits] == [h.chunk.index for h in half.hits]
    for h in rrf.hits:  # the fused score is the sum of 1 / (60 + rank) over the rankings that found the chunk
        expected = sum(1 / (retrieve.RRF_K + r) for r in (h.dense_rank, h.bm25_rank) if r is not None)
        assert h.score == pytest.approx(expected) and (h.dense_rank or h.bm25_rank)
    keyword_only = retrieve.retrieve(index, question, embedder, retrieve.RetrieveConfig(
        k=5, method="hybrid", fusion="weighted", bm25_weight=1.0))
    assert [h.bm25_rank for h in keyword_only.hits][:3] == [1, 2, 3]  # all weight on BM25: its own order
    dense = retrieve.retrieve(index, question, embedder, retrieve.RetrieveConfig(k=3))
    assert [h.dense_rank for h in dense.hits] == [1, 2, 3] and all(h.bm25_rank is None for h in dense.hits)
    with pytest.raises(ValueError, match="Fusion"):
        retrieve.RetrieveConfig(fusion="max")

