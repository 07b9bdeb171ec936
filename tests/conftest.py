"""Test set-up: a throw-away LLMLAB_HOME per session, the shared model cache, one CPU thread per test process."""
from __future__ import annotations

import glob
import os
import socket
import subprocess
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


# ---- a throw-away PostgreSQL cluster ---------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A throw-away PostgreSQL cluster (Debian's initdb + pg_ctl) on a free 127.0.0.1 port; stop() and start() let a
    test take the database away mid-run."""

    def __init__(self, bindir: Path):
        self.bindir, self.root = bindir, Path(tempfile.mkdtemp(prefix="llmlab-pg-"))
        self.data, self.sock = self.root / "data", self.root / "sock"
        self.sock.mkdir()
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sock, "postgres")
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *cmd):
        return subprocess.run(self.prefix + [str(c) for c in cmd], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run(self.bindir / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-l", self.root / "log", "-w", "-t", "30", "start", "-o",
                  f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off")

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(self.prefix + [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30",
                                      "stop"], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def postgres_server():
    """A PostgreSQL server for this test module (skipped where PostgreSQL is not installed); removed after."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL is not installed (scripts/test-system-deps.sh installs Debian's postgresql).")
    server = PostgresServer(Path(bins[-1]).parent)
    try:
        server.init()
        server.start()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        log = (server.root / "log").read_text() if (server.root / "log").exists() else ""
        shutil.rmtree(server.root, ignore_errors=True)
        pytest.fail(f"Could not start PostgreSQL: {exc}\n{getattr(exc, 'stderr', b'')!r}\n{log}")
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_url(postgres_server):
    """The URL of this module's PostgreSQL server (127.0.0.1)."""
    return postgres_server.url
