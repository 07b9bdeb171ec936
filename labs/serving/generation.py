"""Streaming generation and the backend interface (local transformers, or an OpenAI-compatible server).

One shared, read-only model serves every browser session: every stream joins the model's batched engine
(labs.serving.engine), which decodes all of them in one forward per step. A stream's greedy answer in a batch equals
its answer alone, and a seeded stream samples the same tokens whoever else is in the batch.
"""
from __future__ import annotations

import collections
import threading
from typing import Iterator, Sequence

import torch

from labs.core import settings
from labs.core.errors import EmptyPrompt
from labs.models import LoadedModel, ModelError
from labs.serving import engine
from labs.serving.request import EngineError, Request
from labs.serving.sampling import GenerationConfig, Message  # noqa: F401 (callers build configs through generation)


class ContextTooLong(ModelError):
    """The prompt plus the requested new tokens do not fit in the model's context (the message says by how much)."""


def render_prompt(lm: LoadedModel, prompt: str | Sequence[Message]) -> str:
    """The exact text the model sees: its chat template for chat models, plain text for base models."""
    if isinstance(prompt, str):
        messages = [{"role": "user", "content": prompt}]
    else:
        messages = list(prompt)
    if not messages or not any(m.get("content", "").strip() for m in messages):
        raise EmptyPrompt()
    if lm.spec.prompt_format == "chat" and getattr(lm.tokenizer, "chat_template", None):
        return lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return plain_text(prompt)


def plain_text(prompt: str | Sequence[Message]) -> str:
    """What a base model (prompt_format "plain", here or behind an endpoint's /v1/completions) reads: a string as
    written (it continues the text), messages as 'Role: content' lines ending in 'Assistant:'."""
    if isinstance(prompt, str):
        return prompt
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in prompt]
    return "\n".join(lines) + "\nAssistant:"


def encode_prompt(lm: LoadedModel, prompt: str | Sequence[Message], max_new_tokens: int) -> list[int]:
    """The prompt's token ids (chat template applied for chat models); ContextTooLong when prompt +
    max_new_tokens exceeds the model's context length (tokens)."""
    return encode_text(lm, render_prompt(lm, prompt), max_new_tokens,
                       add_special_tokens=lm.spec.prompt_format != "chat")


def encode_text(lm: LoadedModel, text: str, max_new_tokens: int, add_special_tokens: bool = True) -> list[int]:
    """Token ids of text exactly as given (no template); ContextTooLong when text + max_new_tokens does not fit."""
    ids = lm.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]
    limit = lm.context_length
    if len(ids) + max_new_tokens > limit:
        raise ContextTooLong(
            f"The prompt is {len(ids)} tokens and {max_new_tokens} new tokens were asked for, but "
            f"{lm.spec.display_name} reads at most {limit} tokens. Shorten the prompt or the answer length.")
    return ids


class _Detokenizer:
    """Yields only newly completed text; holds back a trailing partial UTF-8 character."""

    def __init__(self, tokenizer):
        self.tokenizer, self.ids, self.sent = tokenizer, [], 0

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return ""
        new, self.sent = text[self.sent:], len(text)
        return new


def eos_ids(lm: LoadedModel) -> set[int]:
    """Every token id that ends an answer: the tokenizer's and generation config's EOS, plus the chat
    end-of-turn tokens this vocabulary has."""
    ids = set()
    for source in (lm.tokenizer.eos_token_id, getattr(lm.model.generation_config, "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif source:
            ids.update(source)
    for token in ("<|im_end|>", "<end_of_turn>", "<|endoftext|>", "<eos>"):
        tid = lm.tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid != lm.tokenizer.unk_token_id and tid is not None and tid >= 0:
            ids.add(tid)
    return ids


def stream_tokens(lm: LoadedModel, ids: list[int], config: GenerationConfig, stop: threading.Event | None = None,
                  model: torch.nn.Module | None = None, ignore_eos: bool = False) -> Iterator[int]:
    """Token ids of the answer, decoded by the model's batched engine together with every other stream."""
    yield from submit_ids(lm, ids, config, stop=stop, model=model, ignore_eos=ignore_eos).tokens()


def submit_ids(lm: LoadedModel, ids: list[int], config: GenerationConfig, stop: threading.Event | None = None,
               model: torch.nn.Module | None = None, ignore_eos: bool = False) -> Request:
    """Queue a stream and return its handle: on the model's fast runtime when one serves it (labs.serving.runtimes),
    else on the torch engine of `model` (default: the model's decode variant; an adapter-wrapped copy is always
    decoded by torch)."""
    request = Request(list(ids), config, frozenset() if ignore_eos else frozenset(eos_ids(lm)), stop)
    return _decoder(lm, model).submit(request)


def submit_many(lm: LoadedModel, id_lists: Sequence[list[int]], config: GenerationConfig,
                model: torch.nn.Module | None = None) -> list[Request]:
    """Queue several streams at once (same settings, same decoder as submit_ids): on a torch engine they join the
    batch at the same step, sharing one prefill, instead of the first starting alone."""
    stop_ids = frozenset(eos_ids(lm))
    requests = [Request(list(ids), config, stop_ids) for ids in id_lists]
    decoder = _decoder(lm, model)
    if hasattr(decoder, "submit_all"):
        return decoder.submit_all(requests)
    return [decoder.submit(r) for r in requests]


def _decoder(lm: LoadedModel, model: torch.nn.Module | None):
    """What decodes a stream: the given runtime engine, the model's fast runtime, else the torch engine of `model`
    (default: the model's decode variant)."""
    if hasattr(model, "submit"):  # an engine itself: a runtime serving an adapter (labs.serving.runtimes.gate)
        return model
    if model is None and lm.runtime is not None:
        return lm.runtime
    return engine.engine_for(model if model is not None else lm.inference_model, lm.lock)


class Stream:
    """One answer being written: iterate for text pieces; `position` is the place in the queue (0 = decoding)."""

    def __init__(self, lm: LoadedModel, request: Request):
        self.lm, self.request = lm, request

    @property
    def position(self) -> int:
        """Place in the engine's waiting queue (1 = next), 0 once decoding."""
        return self.request.position

    def cancel(self) -> None:
        """Stop this stream; the engine drops its row at the next step."""
        self.request.cancel()

    @property
    def finish_reason(self) -> str | None:
        """How the answer ended once it has: "stop" (end of sequence), "length" (its budget), "cancelled" or
        "error: ..."; None while it is being written."""
        return self.request.finish_reason

    def __iter__(self) -> Iterator[str]:
        return self.pieces()

    def pieces(self, on_wait=None) -> Iterator[str]:
        """Text pieces of the answer; on_wait(position) is called while it waits for a place in the batch."""
        detok = _Detokenizer(self.lm.tokenizer)
        try:
            for token in self.request.tokens(on_wait=on_wait):
                piece = detok.push(token)
                if piece:
                    yield piece
        except EngineError as exc:
            raise ModelError(str(exc)) from None


def open_stream(lm: LoadedModel, prompt: str | Sequence[Message], config: GenerationConfig = GenerationConfig(),
                stop: threading.Event | None = None, model: torch.nn.Module | None = None) -> Stream:
    """Validate the prompt (context length, the class's cap on new tokens) and queue it; the answer arrives by
    iterating the returned Stream."""
    settings.check_new_tokens(config.max_new_tokens)
    ids = encode_prompt(lm, prompt, config.max_new_tokens)
    return Stream(lm, submit_ids(lm, ids, config, stop=stop, model=model))


def stream(lm: LoadedModel, prompt: str | Sequence[Message], config: GenerationConfig = GenerationConfig(),
           stop: threading.Event | None = None, model: torch.nn.Module | None = None) -> Iterator[str]:
    """Stream the answer as text pieces. `model` overrides the model used (e.g. a PEFT-wrapped copy)."""
    yield from open_stream(lm, prompt, config, stop=stop, model=model)


def generate_many(lm: LoadedModel, prompts: Sequence, config: GenerationConfig | Sequence[GenerationConfig],
                  model: torch.nn.Module | None = None, window: int | None = None) -> Iterator[str]:
    """The answers to many prompts, in order, decoded together: up to `window` of them share each decode step.
    `config` is one for all, or one per prompt (e.g. different seeds). Closing the iterator cancels the rest."""
    configs = list(config) if isinstance(config, (list, tuple)) else [config] * len(prompts)
    window = window or settings.max_streams()
    pending: collections.deque[Stream] = collections.deque()
    queued = iter(zip(prompts, configs))
    try:
        for prompt, cfg in queued:
            pending.append(open_stream(lm, prompt, cfg, model=model))
            if len(pending) >= window:
                break
        while pending:
            answer = "".join(pending.popleft())
            nxt = next(queued, None)
            if nxt is not None:
                pending.append(open_stream(lm, nxt[0], nxt[1], model=model))
            yield answer
    finally:
        for s in pending:
            s.cancel()


def generate(lm: LoadedModel, prompt, config: GenerationConfig = GenerationConfig(), **kw) -> str:
    """The whole answer as one string (greedy with temperature 0); same arguments as `stream`."""
    return "".join(stream(lm, prompt, config, **kw))
