"""Fast local runtimes under the engine's contract (labs.serving.engine: per-stream settings, seed, Stop, streaming, queue
place, fails alone); torch (labs.serving.engine) stays the reference, the fallback and the GPU path.

export   the loaded model's own float32 weights -> a GGUF file -> an OpenVINO IR in LLMLAB_MODEL_CACHE, once
worker   the child process that runs OpenVINO GenAI's continuous-batching pipeline (no torch, no GIL shared)
engine   the app's side: waiting queue, admission, token streams, Stop, and the fall back to torch
gate     which runtime serves a model: the quality gate over the candidates, and the one line Home shows
"""
