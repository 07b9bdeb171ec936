"""Retrieval-augmented generation, one stage per module: load -> split -> embed/store -> retrieve -> generate -> evaluate.

    docs = load.default_corpus()                                   # or load.load_file(name, data)
    chunks = split.split_documents(docs, split.SplitConfig(chunk_size=500, chunk_overlap=50))
    index = store.build_index(docs_id, chunks, embedder, split_config, distance="cosine")
    result = retrieve.retrieve(index, "How do I parse JSON?", embedder, retrieve.RetrieveConfig(k=4))
    messages = generate.rag_messages(result.question, result.passages)   # then labs.serving.endpoints.stream(lm, messages)
    scores = evaluate.triad(result.question, answer, [h.chunk.text for h in result.hits], embed)

    load      files in the formats people bring (text, Markdown, HTML, PDF, CSV, JSON) and the default corpus
    docsets   documentation nobody here wrote that every install has (streamlit's guides, torch.nn's reference)
    checks    notes on what was loaded: another script, all code, duplicates
    markdown  what a reader never sees in Markdown sources, dropped before splitting
    split     chunks with overlap, by characters or tokens; Markdown by headings first (each chunk's heading path)
    store     embeddings in Chroma (our embedder, never Chroma's default)
    retrieve  dense, BM25, hybrid (reciprocal rank fusion) and MMR retrieval, and contextual compression
    generate  the prompt with the retrieved passages and cited answers
    evaluate  retrieval hit rate, the RAG triad, RAG vs no-RAG (claim C9)
    charts    chunk lengths, the 2-D embedding map, the leaderboard
"""
