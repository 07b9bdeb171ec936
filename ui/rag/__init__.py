"""Widgets and drawing for the RAG page (pages/50_RAG_playground.py), one module per tab; the page imports the modules.

- shared: the embedding model picked in 3 · Embed & store, which the other tabs use too.
- load: the 1 · Load tab: uploads, the URL loader (when allowed) and the corpus summary.
- split: the 2 · Split tab: the splitter knobs, splitting the corpus, the chunk statistics and viewer.
- store: the 3 · Embed & store tab: the embedder and distance pickers, the collection name, the index summary.
- ask: the 4 · Retrieve & generate tab: retrieval and answer knobs, the streamed answers, citations, triad, chunks.
- evaluate: the 5 · Evaluate tab: the evaluation summary, the leaderboard and RAG vs no-RAG (C9).

The lesson lives in labs/rag/ (load, split, store, retrieve, generate, evaluate); these helpers only collect widgets
and draw what the labs return.
"""
