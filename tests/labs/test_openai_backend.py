"""The OpenAI-compatible backend against a real HTTP server on localhost (labs.serving.serve, tiny models)."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from labs.serving import generation
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


def test_streamed_answer_equals_local_generation(server_url, tiny):
    backend = generation.OpenAIBackend(base_url=server_url, model="smollm2-135m-instruct")
    cfg = GenerationConfig(max_new_tokens=12, temperature=0.8, seed=2, top_p=0.9)
    messages = [{"role": "user", "content": "Hello"}]
    remote = "".join(backend.stream_chat(messages, cfg))
    local = "".join(generation.LocalBackend(tiny).stream_chat(messages, cfg))
    assert remote and remote == local  # same tiny weights (seeded init) and same sampler seed


def test_server_errors_become_readable_messages(server_url):
    backend = generation.OpenAIBackend(base_url=server_url, model="no-such-model")
    with pytest.raises(models.ModelError, match="Unknown model"):
        "".join(backend.stream_chat([{"role": "user", "content": "hi"}], GenerationConfig()))
    with pytest.raises(ValueError, match="empty"):
        "".join(backend.stream_chat([{"role": "user", "content": " "}], GenerationConfig()))


def test_unreachable_server_says_so():
    backend = generation.OpenAIBackend(base_url="http://127.0.0.1:9/v1", timeout=2)
    with pytest.raises(models.ModelError, match="Could not reach"):
        "".join(backend.stream_chat([{"role": "user", "content": "hi"}], GenerationConfig(max_new_tokens=4)))
