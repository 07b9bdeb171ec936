"""Retrieval-augmented generation, one stage per module: load -> split -> embed/store -> retrieve -> generate -> evaluate.

    docs = load.default_corpus()                                   # or load.load_file(name, data)
    chunks = split.split_documents(docs, split.SplitConfig(chunk_size=500, chunk_overlap=50))
    index = store.build_index(docs_id, chunks, embedder, split_config, distance="cosine")
    result = retrieve.retrieve(index, "How do I parse JSON?", embedder, retrieve.RetrieveConfig(k=4))
    messages = generate.rag_messages(result.question, result.passages)   # then labs.serving.endpoints.stream(lm, messages)
    scores = evaluate.triad(result.question, answer, [h.chunk.text for h in result.hits], embed)
"""
