"""Chroma: the three distances match their formulas on known vectors, in the embedded store and on a server."""
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from labs.rag import split, store
from labs.rag.split import Chunk

ROOT = Path(__file__).resolve().parents[2]
A = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 2.0], [-1.0, 0.5, 0.5]], dtype=np.float32)
Q = np.array([0.8, 0.6, 0.0], dtype=np.float32)


class FixedEmbedder:
    """Stands in for the sentence-transformer: hands out the known vectors A in order."""

    def __init__(self, vectors):
        self.vectors = vectors

    def encode(self, texts, **kw):
        return self.vectors[:len(texts)]

    def get_sentence_embedding_dimension(self):
        return self.vectors.shape[1]


def known_chunks():
    return [Chunk(f"text {i}", "known", i * 10, i * 10 + 6, i, i, 6) for i in range(len(A))]


def test_numpy_formulas_on_known_vectors():
    np.testing.assert_allclose(store.distance("l2", Q, A), [0.4, 0.08, 5.0, 3.5], rtol=1e-5)  # squared, no sqrt
    np.testing.assert_allclose(store.distance("ip", Q, A), [0.2, 0.04, 1.0, 1.5], rtol=1e-5)
    np.testing.assert_allclose(store.distance("cosine", Q, A), [0.2, 0.04, 1.0, 1 - (-0.5) / np.sqrt(1.5)], rtol=1e-5)
    with pytest.raises(ValueError, match="Unknown distance"):
        store.distance("manhattan", Q, A)


def _check_chroma_distances(corpus: str):
    config = split.SplitConfig(chunk_size=100, chunk_overlap=0)
    for kind in store.DISTANCES:
        index = store.build_index(corpus, known_chunks(), FixedEmbedder(A), config, kind)
        got = index.query(Q, len(A))
        expected = store.distance(kind, Q, A)
        assert [i for i, _ in got] == list(np.argsort(expected)), kind
        np.testing.assert_allclose([d for _, d in got], np.sort(expected), rtol=1e-4, atol=1e-5, err_msg=kind)
        again = store.build_index(corpus, known_chunks(), FixedEmbedder(A * 0), config, kind)
        assert again.reused and np.allclose(again.embeddings, A), "same settings reuse the stored vectors"


def test_persistent_client_distances_and_reuse():
    assert store.settings.chroma_url() is None
    _check_chroma_distances("known-vectors")
    assert (store.settings.home() / "chroma").is_dir()


def test_collection_names_differ_by_settings():
    a = store.collection_name("abc", split.SplitConfig(), "cosine")
    assert a != store.collection_name("abc", split.SplitConfig(chunk_overlap=0), "cosine")
    assert a != store.collection_name("abc", split.SplitConfig(), "l2")
    assert a == store.collection_name("abc", split.SplitConfig(), "cosine")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(monkeypatch):
    """`chroma run` on a free localhost port, for at most the test's duration."""
    exe = ROOT / ".venv" / "bin" / "chroma"
    exe = exe if exe.exists() else shutil.which("chroma")
    if not exe:
        pytest.skip("the `chroma` CLI (from the chromadb package) is not installed")
    folder = tempfile.mkdtemp(prefix="llmlab-chroma-server-")
    port = _free_port()
    proc = subprocess.Popen([str(exe), "run", "--path", folder, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace")[-500:]
                pytest.skip(f"`chroma run` exited at start (code {proc.returncode}): {out}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.skip("`chroma run` did not open its port within 30 s")
        monkeypatch.setenv("LLMLAB_CHROMA_URL", f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def test_http_client_against_chroma_run(chroma_server):
    assert store.where() == chroma_server
    _check_chroma_distances("known-vectors-on-server")
    names = [c.name if hasattr(c, "name") else c for c in store.client().list_collections()]
    assert any(n.startswith("rag-known-vectors-on-server-") for n in names)
