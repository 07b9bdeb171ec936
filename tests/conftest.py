"""Test set-up: a throw-away LLMLAB_HOME per session, the shared model cache, one CPU thread per test process."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# One fresh home per pytest process, so concurrent test runs never wipe each other's runs.
_home = Path(os.environ.get("LLMLAB_TEST_HOME") or tempfile.mkdtemp(prefix="llmlab-test-home-"))
os.environ["LLMLAB_HOME"] = str(_home)
# Converted models are expensive to make (~20 s each) and read-only: keep them across test runs.
os.environ.setdefault("LLMLAB_MODEL_CACHE", str(Path.home() / ".cache" / "llmlab" / "models"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import shutil  # noqa: E402

import pytest  # noqa: E402

shutil.rmtree(_home, ignore_errors=True)
_home.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
def smol():
    """The real SmolLM2-135M-Instruct (converted once into the shared cache)."""
    from labs import models

    return models.load_model("smollm2-135m-instruct", device="cpu")


@pytest.fixture(scope="session")
def tiny():
    """A tiny random Llama with SmolLM2's real tokenizer."""
    from labs import models

    return models.tiny_model("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def tiny_gemma():
    from labs import models

    return models.tiny_model("gemma3-270m")


@pytest.fixture(scope="module")
def server():
    """`python -m labs.serving.serve` over tiny models on a free 127.0.0.1 port (an OpenAI-compatible endpoint); its URL."""
    from tests import byo

    proc, url = byo.start_server()
    yield url
    byo.stop(proc)
