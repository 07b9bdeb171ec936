"""Serving: turning a prompt into streamed tokens for many sessions at once.

    sampling    temperature / top-k / top-p draws, seeded per stream (bottom: imports no other serving module)
    request     a stream's request, its token queue and its finish reason (stop, length, cancelled, error: ...)
    scheduler   who is admitted, prefilled, decoded and evicted each step; pure, tested without a model
    engine      the torch engine: the step loop over a batched KV cache (the reference, and the GPU path)
    decode_gate which torch decode variant serves on a CPU (perplexity within +2 % of float32), stored per model
    runtimes/   the fast CPU runtime (OpenVINO GenAI) behind the engine's contract, its export and quality gate
    generation  one stream(prompt, config, stop, on_wait) for a local model, the fast runtime and an endpoint
    endpoints   OpenAI-compatible endpoints (vLLM, llama.cpp server, our own server) as models
    serve       our own OpenAI-compatible server: `python -m labs.serving.serve`
"""
