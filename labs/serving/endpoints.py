"""One small interface for "something that writes an answer": a local model or an OpenAI-compatible endpoint.

Pages that only need text (arena contenders, RAG answers, the judge, generative evaluation, preference pair-making)
take a *target*: a `LoadedModel` (local, decoded by the shared batched engine in labs.serving.generation) or an `Endpoint`
(a models-file entry with base_url, streamed over HTTP). `stream` / `generate` / `generate_many` accept either.
What needs the weights (log-likelihood scoring, adapters, training) asks `require_local`, which refuses an endpoint
with the reason.
"""
from __future__ import annotations

import os
import threading
from typing import Callable, Iterator, Sequence, Union

import httpx
import openai
import torch
from openai import OpenAI

from labs import models
from labs.core import settings
from labs.core.errors import EmptyPrompt
from labs.models import LoadedModel, ModelError, ModelSpec
from labs.serving import generation
from labs.serving.generation import GenerationConfig, Message


class _EndpointClient:
    """One OpenAI client (a connection pool) for an endpoint entry: streams with a stop flag, and errors that name
    the models-file entry and the field to fix."""

    def __init__(self, s: ModelSpec):
        api_key = "none"
        if s.api_key_env:
            api_key = os.environ.get(s.api_key_env, "")
            if not api_key:
                raise ModelError(f"{s.entry}: field 'api_key_env' names {s.api_key_env}, which is not set in the "
                                 "environment the app was started from. Set it (export "
                                 f"{s.api_key_env}=...) and restart the app, or remove the field.")
        self.client = OpenAI(base_url=s.location, api_key=api_key, timeout=s.timeout, max_retries=0)
        self.model, self.spec = s.endpoint_model, s

    def stream_chat(self, messages, config, stop: threading.Event | None = None):
        """Text pieces from POST /chat/completions (the server applies the model's chat template)."""
        if not any(m.get("content", "").strip() for m in messages):
            raise EmptyPrompt()
        yield from self._stream(lambda: self.client.chat.completions.create(
            model=self.model, messages=list(messages), stream=True, **self._sampling(config)),
            lambda c: c.choices[0].delta.content if c.choices and c.choices[0].delta else None, stop)

    def stream_text(self, prompt: str, config, stop: threading.Event | None = None):
        """Text pieces from POST /completions: a base model (prompt_format "plain") continues `prompt` as written."""
        if not prompt.strip():
            raise EmptyPrompt()
        yield from self._stream(lambda: self.client.completions.create(
            model=self.model, prompt=prompt, stream=True, **self._sampling(config)),
            lambda c: c.choices[0].text if c.choices else None, stop)

    @staticmethod
    def _sampling(config) -> dict:
        return dict(max_tokens=config.max_new_tokens, temperature=config.temperature, top_p=config.top_p,
                    seed=config.seed)

    def _stream(self, create, text_of, stop):
        s = self.spec
        response = None
        try:
            response = create()
            for chunk in response:
                if stop is not None and stop.is_set():
                    break
                piece = text_of(chunk)
                if piece:
                    yield piece
        except openai.APITimeoutError:
            raise ModelError(f"{s.display_name}: the server at {s.location} did not answer within {s.timeout:g} s "
                             f"({s.entry}, field 'timeout'). It may be busy or stuck; try again or raise the "
                             "timeout.") from None
        except openai.APIConnectionError as exc:
            raise ModelError(f"{s.display_name}: could not reach the server at {s.location} ({s.entry}, field "
                             f"'base_url'): {exc.__cause__ or exc}. Is it running, and is the address right?") from None
        except openai.NotFoundError as exc:
            raise ModelError(f"{s.display_name}: the server at {s.location} does not serve model "
                             f"{s.endpoint_model!r} ({s.entry}, field 'model'): {exc.message}") from None
        except openai.APIStatusError as exc:
            raise ModelError(f"{s.display_name}: the server at {s.location} answered {exc.status_code}: "
                             f"{exc.message}") from None
        except (httpx.HTTPError, openai.APIError) as exc:  # the connection dropped in the middle of the answer
            raise ModelError(f"{s.display_name}: the answer from {s.location} broke off ({type(exc).__name__}: "
                             f"{exc}).") from None
        finally:
            if response is not None:
                response.close()


class Endpoint:
    """A model behind an OpenAI-compatible server, with the same streaming interface as a local model."""

    local = False

    def __init__(self, s: ModelSpec):
        if not s.is_endpoint:
            raise ModelError(f"{s.display_name} is not an endpoint.")
        self.spec, self.key, self.display_name = s, s.key, s.display_name
        self._client: _EndpointClient | None = None  # one HTTP client (connection pool) per endpoint, made on first use

    @property
    def client(self) -> _EndpointClient:
        if self._client is None:
            self._client = _EndpointClient(self.spec)
        return self._client

    def messages(self, prompt: str | Sequence[Message]) -> list[Message]:
        """A plain prompt as one user message; a message list as it is."""
        return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)

    def stream(self, prompt: str | Sequence[Message], config: GenerationConfig,
               stop: threading.Event | None = None, on_wait=None) -> Iterator[str]:
        """Text pieces of the endpoint's answer (max_new_tokens checked against the server's cap); Stop ends it.
        A chat model gets messages (/chat/completions); a base model (prompt_format "plain") gets the text a local
        base model would read (generation.plain_text) on /completions. An endpoint shows no queue place: on_wait
        is accepted for the one interface and never called."""
        settings.check_new_tokens(config.max_new_tokens)
        client = self.client
        if self.spec.prompt_format == "plain":
            yield from client.stream_text(generation.plain_text(prompt), config, stop=stop)
        else:
            yield from client.stream_chat(self.messages(prompt), config, stop=stop)

    def __repr__(self) -> str:
        return f"Endpoint({self.key!r}, {self.spec.location!r})"


Target = Union[LoadedModel, Endpoint]


def default_endpoint(key: str) -> Endpoint | None:
    """The server named by LLMLAB_OPENAI_BASE_URL serving `key` (the Home chat's "all answers from one server"
    setting, with LLMLAB_OPENAI_API_KEY if set), or None when that setting is off."""
    base_url = settings.openai_base_url()
    if not base_url:
        return None
    entry = {"name": f"{key} at LLMLAB_OPENAI_BASE_URL", "base_url": base_url, "model": key}
    if os.environ.get("LLMLAB_OPENAI_API_KEY"):
        entry["api_key_env"] = "LLMLAB_OPENAI_API_KEY"
    return Endpoint(models.entry_spec(entry, "LLMLAB_OPENAI_BASE_URL"))


def is_endpoint(target) -> bool:
    """The target is an OpenAI-compatible endpoint (not a model loaded here)."""
    return isinstance(target, Endpoint)


def name_of(target: Target) -> str:
    """The display name of a loaded model or an endpoint."""
    return target.display_name if isinstance(target, Endpoint) else target.spec.display_name


def target_for(key: str, load_local: Callable[[str], LoadedModel] = models.load_model) -> Target:
    """An Endpoint for an endpoint entry, else the local model from `load_local` (the page's shared cache)."""
    s = models.spec(key)
    return Endpoint(s) if s.is_endpoint else load_local(key)


def require_local(target: Target, what: str) -> LoadedModel:
    """The local model, or ModelError saying why `what` needs one (log-likelihoods, adapters, training)."""
    if isinstance(target, Endpoint):
        raise ModelError(models.endpoint_refusal(target.spec, what))
    return target


def stream(target: Target, prompt: str | Sequence[Message], config: GenerationConfig = GenerationConfig(),
           stop: threading.Event | None = None, model: torch.nn.Module | None = None,
           on_wait=None) -> Iterator[str]:
    """Text pieces of the answer from a local model (its batched engine; `model` = e.g. an adapter) or an endpoint.
    on_wait(position) is called while a local stream waits for a place in the engine's batch."""
    if isinstance(target, Endpoint):
        if model is not None:
            raise ModelError(models.endpoint_refusal(target.spec, "given an adapter"))
        yield from target.stream(prompt, config, stop=stop, on_wait=on_wait)
    else:
        yield from generation.open_stream(target, prompt, config, stop=stop, model=model).pieces(on_wait=on_wait)


def generate(target: Target, prompt, config: GenerationConfig = GenerationConfig(), **kw) -> str:
    """The whole answer as one string, from a loaded model or an endpoint; same arguments as `stream`."""
    return "".join(stream(target, prompt, config, **kw))


def generate_many(target: Target, prompts: Sequence, config: GenerationConfig | Sequence[GenerationConfig],
                  model: torch.nn.Module | None = None) -> Iterator[str]:
    """Answers in order: batched together on a local model; one request after another on an endpoint."""
    if not isinstance(target, Endpoint):
        return generation.generate_many(target, prompts, config, model=model)
    configs = list(config) if isinstance(config, (list, tuple)) else [config] * len(prompts)
    return (generate(target, p, c, model=model) for p, c in zip(prompts, configs))


def probe(s: ModelSpec, timeout: float = 5.0) -> list[str]:
    """The model names an endpoint serves (GET {base_url}/models); ModelError naming the field when it is down
    or does not serve the entry's model. Used by the Add-a-model form, never on the default path."""
    client = _EndpointClient(s)
    try:
        served = [m.id for m in client.client.with_options(timeout=timeout).models.list()]
    except openai.APITimeoutError:
        raise ModelError(f"{s.entry}: field 'base_url': {s.location} did not answer within {timeout:g} s.") from None
    except openai.APIConnectionError as exc:
        raise ModelError(f"{s.entry}: field 'base_url': could not reach {s.location} ({exc.__cause__ or exc}).") from None
    except openai.APIStatusError as exc:
        raise ModelError(f"{s.entry}: field 'base_url': {s.location}/models answered {exc.status_code} "
                         "(is this an OpenAI-compatible /v1 address?).") from None
    if served and s.endpoint_model not in served:
        raise ModelError(f"{s.entry}: field 'model': the server serves {', '.join(served)}, not {s.endpoint_model!r}.")
    return served
