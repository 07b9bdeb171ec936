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


@pytest.fixture(scope="module")
def postgres_url():
    """initdb + pg_ctl from Debian's postgresql package, on a free localhost port, in a temp dir; removed after."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL is not installed (scripts/test-system-deps.sh installs Debian's postgresql).")
    bindir = Path(bins[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="llmlab-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    run = lambda *cmd, **kw: subprocess.run(prefix + [str(c) for c in cmd], check=True, capture_output=True,  # noqa: E731
                                            timeout=60, **kw)
    try:
        run(bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        run(bindir / "pg_ctl", "-D", data, "-l", root / "log", "-w", "-t", "30", "start", "-o",
            f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"Could not start PostgreSQL: {exc}\n{getattr(exc, 'stderr', b'')!r}\n{log}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(prefix + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
