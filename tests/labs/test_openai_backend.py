"""An endpoint (LLMLAB_OPENAI_BASE_URL or a models-file entry) against a real HTTP server on localhost
(labs.serving.serve, tiny models), through the one stream interface every target shares."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from labs.serving import endpoints, generation
from labs import models
from labs.serving.generation import GenerationConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, LLMLAB_TINY_MODELS="1")
    proc = subprocess.Popen([sys.executable, "-m", "labs.serving.serve", "--port", str(port)], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("labs.serving.serve did not start")
        yield url + "/v1"
    finally:
        proc.terminate()
        proc.wait(10)


def _endpoint(base_url: str, model: str, timeout: float = 60) -> endpoints.Endpoint:
    return endpoints.Endpoint(models.entry_spec({"name": f"test {model}", "base_url": base_url, "model": model,
                                                 "timeout": timeout}, "test"))


def test_streamed_answer_equals_local_generation(server_url, tiny):
    cfg = GenerationConfig(max_new_tokens=12, temperature=0.8, seed=2, top_p=0.9)
    messages = [{"role": "user", "content": "Hello"}]
    remote = "".join(endpoints.stream(_endpoint(server_url, "smollm2-135m-instruct"), messages, cfg))
    local = "".join(endpoints.stream(tiny, messages, cfg))
    assert remote and remote == local  # same tiny weights (seeded init) and same sampler seed
    assert local == generation.generate(tiny, messages, cfg)


def test_the_global_endpoint_setting_serves_every_chat(server_url, monkeypatch):
    monkeypatch.setenv("LLMLAB_OPENAI_BASE_URL", server_url)
    target = endpoints.default_endpoint("smollm2-135m-instruct")
    assert target is not None and target.spec.location == server_url
    assert "".join(endpoints.stream(target, "Hello", GenerationConfig(max_new_tokens=4, temperature=0), on_wait=print))
    monkeypatch.delenv("LLMLAB_OPENAI_BASE_URL")
    assert endpoints.default_endpoint("smollm2-135m-instruct") is None


def test_server_errors_become_readable_messages(server_url):
    target = _endpoint(server_url, "no-such-model")
    with pytest.raises(models.ModelError, match="no-such-model"):
        "".join(endpoints.stream(target, [{"role": "user", "content": "hi"}], GenerationConfig()))
    with pytest.raises(ValueError, match="empty"):
        "".join(endpoints.stream(target, [{"role": "user", "content": " "}], GenerationConfig()))


def test_unreachable_server_says_so():
    target = _endpoint("http://127.0.0.1:9/v1", "smollm2-135m-instruct", timeout=2)
    with pytest.raises(models.ModelError, match="could not reach"):
        "".join(endpoints.stream(target, [{"role": "user", "content": "hi"}], GenerationConfig(max_new_tokens=4)))


def test_the_server_reports_why_an_answer_ended(server_url):
    """finish_reason comes from the engine's request: a budget of 2 tokens ends on "length", streamed or not."""
    from openai import OpenAI

    client = OpenAI(base_url=server_url, api_key="none", max_retries=0)
    messages = [{"role": "user", "content": "Hello"}]
    whole = client.chat.completions.create(model="smollm2-135m-instruct", messages=messages, max_tokens=2, seed=1)
    assert whole.choices[0].finish_reason == "length"
    chunks = list(client.chat.completions.create(model="smollm2-135m-instruct", messages=messages, max_tokens=2,
                                                 seed=1, stream=True))
    assert chunks[-1].choices[0].finish_reason == "length"
    text = client.completions.create(model="smollm2-135m-instruct", prompt="Once", max_tokens=2, seed=1)
    assert text.choices[0].finish_reason == "length"
