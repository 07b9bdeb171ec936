"""A small OpenAI-compatible server over the local models: `python -m labs.serving.serve --port 8000`.

It lets one machine (with the GPU, say) serve generation for other LLM Lab replicas via
LLMLAB_OPENAI_BASE_URL=http://host:8000/v1, and it is the real server the OpenAI backend is tested against.
Endpoints: GET /v1/models, POST /v1/chat/completions and POST /v1/completions (stream or not), GET /health.
"""
from __future__ import annotations

import argparse
import json
import threading
import time
import uuid

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from labs import models
from labs.core import settings
from labs.serving import generation
from labs.serving.runtimes import gate as runtime_gate


_loaded: dict[str, models.LoadedModel] = {}
_load_lock = threading.Lock()


def _model(key: str) -> models.LoadedModel:
    with _load_lock:
        if key not in _loaded:
            _loaded[key] = runtime_gate.serve(models.load_model(key))
        return _loaded[key]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=status)


async def list_models(request: Request) -> JSONResponse:
    """GET /v1/models: the causal models this server can answer with."""
    data = [{"id": s.key, "object": "model", "owned_by": "llmlab"} for s in models.causal_models()]
    return JSONResponse({"object": "list", "data": data})


async def health(request: Request) -> JSONResponse:
    """GET /health: {'status': 'ok'} while the server runs."""
    return JSONResponse({"status": "ok"})


async def chat_completions(request: Request):
    """POST /v1/chat/completions: an OpenAI-style chat answer from a registry model, streamed as
    server-sent events when `stream` is true; errors as OpenAI-style JSON with a status code."""
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "The request body is not JSON.")
    key = body.get("model") or models.DEFAULT_CHAT_MODEL
    messages = body.get("messages") or []
    try:
        models.spec(key)
        config = _sampling(body)
        lm = _model(key)
        generation.encode_prompt(lm, messages, config.max_new_tokens)  # validate before streaming starts
    except (ValueError, models.ModelError) as exc:
        return _error(400, str(exc))
    created, cid = int(time.time()), f"chatcmpl-{uuid.uuid4().hex[:12]}"

    def chunk(delta: dict, finish: str | None) -> str:
        return "data: " + json.dumps({"id": cid, "object": "chat.completion.chunk", "created": created, "model": key,
                                      "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"

    answer = generation.open_stream(lm, messages, config)
    if body.get("stream"):
        def events():
            yield chunk({"role": "assistant", "content": ""}, None)
            for piece in answer.pieces():
                yield chunk({"content": piece}, None)
            yield chunk({}, _finish(answer))
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
    text = "".join(answer.pieces())
    prompt_tokens = len(generation.encode_prompt(lm, messages, config.max_new_tokens))
    completion_tokens = len(lm.tokenizer(text, add_special_tokens=False)["input_ids"])
    return JSONResponse({"id": cid, "object": "chat.completion", "created": created, "model": key,
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                      "finish_reason": _finish(answer)}],
                         "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                   "total_tokens": prompt_tokens + completion_tokens}})


def _finish(answer: generation.Stream) -> str:
    """The OpenAI finish_reason of an answer that has ended: "stop", "length", or ours ("cancelled", "error: ...")."""
    return answer.finish_reason or "stop"


def _sampling(body: dict) -> generation.GenerationConfig:
    config = generation.GenerationConfig(
        max_new_tokens=int(body.get("max_tokens") or body.get("max_completion_tokens") or 128),
        temperature=float(body.get("temperature", 0.7)), top_p=float(body.get("top_p", 1.0)), seed=body.get("seed"))
    settings.check_new_tokens(config.max_new_tokens)
    return config


async def completions(request: Request):
    """POST /v1/completions: a registry model continues `prompt` as written (no chat template: what a base model
    behind a "plain" models-file entry is sent), streamed as server-sent events when `stream` is true."""
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "The request body is not JSON.")
    key = body.get("model") or models.DEFAULT_CHAT_MODEL
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt.strip():
        return _error(400, "'prompt' must be one non-empty string.")
    try:
        models.spec(key)
        config = _sampling(body)
        lm = _model(key)
        ids = generation.encode_text(lm, prompt, config.max_new_tokens)  # continued as written: no template
    except (ValueError, models.ModelError) as exc:
        return _error(400, str(exc))
    created, cid = int(time.time()), f"cmpl-{uuid.uuid4().hex[:12]}"
    answer = generation.Stream(lm, generation.submit_ids(lm, ids, config))
    pieces = answer.pieces()

    def choice(text: str, finish: str | None) -> dict:
        return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}

    if body.get("stream"):
        def events():
            for piece in pieces:
                yield "data: " + json.dumps({"id": cid, "object": "text_completion", "created": created, "model": key,
                                             "choices": [choice(piece, None)]}) + "\n\n"
            yield "data: " + json.dumps({"id": cid, "object": "text_completion", "created": created, "model": key,
                                         "choices": [choice("", _finish(answer))]}) + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
    text = "".join(pieces)
    completion_tokens = len(lm.tokenizer(text, add_special_tokens=False)["input_ids"])
    return JSONResponse({"id": cid, "object": "text_completion", "created": created, "model": key,
                         "choices": [choice(text, _finish(answer))],
                         "usage": {"prompt_tokens": len(ids), "completion_tokens": completion_tokens,
                                   "total_tokens": len(ids) + completion_tokens}})


app = Starlette(routes=[Route("/v1/models", list_models), Route("/health", health),
                        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
                        Route("/v1/completions", completions, methods=["POST"])])


def main(argv: list[str] | None = None) -> None:
    """Serve the app with uvicorn (`python -m labs.serving.serve --host … --port …`)."""
    import uvicorn  # optional dependency: only the OpenAI-compatible server command uses it

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
