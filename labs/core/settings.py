"""Settings read from the environment, and the device / dtype choice.

Every path written at run time lives under ``LLMLAB_HOME`` (never inside the repo).

| variable                 | meaning                                                        | default                      |
|--------------------------|----------------------------------------------------------------|------------------------------|
| LLMLAB_HOME              | cache of converted models, runs, votes, vectors                | ~/.cache/llmlab              |
| LLMLAB_DEVICE            | force a device: cpu, cuda, cuda:1, mps                          | auto: cuda > mps > cpu       |
| LLMLAB_DTYPE             | force a dtype: float32, bfloat16, float16                       | float32 on CPU, bf16/fp16 GPU|
| LLMLAB_DB_URL            | SQLAlchemy URL for votes, the run queue and the shared limits   | sqlite under LLMLAB_HOME     |
| LLMLAB_RUN_QUEUE         | db = runs queue in that database (every replica and worker)     | db for PostgreSQL, else local|
| LLMLAB_APP_WORKER        | 0 = the app only queues runs; `python -m labs.worker` runs them | 1 (the app runs them too)    |
| LLMLAB_ARTIFACTS         | a directory every replica and worker reads: runs/<id>/ files    | LLMLAB_HOME                  |
| LLMLAB_HEARTBEAT_S       | a worker's heartbeat; silent for 3 beats = its run failed       | 2                            |
| LLMLAB_CHROMA_URL        | http://host:port of a Chroma server                             | embedded PersistentClient    |
| LLMLAB_OPENAI_BASE_URL   | OpenAI-compatible endpoint (vLLM, llama.cpp server) for chat    | local transformers           |
| LLMLAB_OPENAI_API_KEY    | key sent to that endpoint                                       | "none"                       |
| LLMLAB_MODEL_CACHE       | where converted models live (shared by tests)                  | LLMLAB_HOME/models           |
| LLMLAB_TINY_MODELS       | 1 = tiny random models of the real architectures (tests)       | off                          |
| LLMLAB_MAX_HEAVY_JOBS    | background runs executing at once                               | 1 on CPU, 2 on a GPU         |
| LLMLAB_MAX_STREAMS       | answers one model decodes at once in its batch (more wait)      | 96 on CPU, 128 on a GPU      |
| LLMLAB_CPU_THREADS       | the CPU budget: torch threads shared by training and generation | torch's default (cores)      |
| LLMLAB_CLASS_MODE        | 1 = serving a class: per-request token cap on                   | off                          |
| LLMLAB_MAX_NEW_TOKENS    | most new tokens one request may ask for                         | 128 in class mode, else none |
| LLMLAB_RUNS_PER_SESSION  | queued-or-running background runs one browser session may have  | 1 (0 = no limit)             |
| LLMLAB_URL_LOADING       | off = the RAG page never fetches URLs (the whole class)         | on                           |
| LLMLAB_VOTE_BURST        | arena votes one client address may cast per window: "N/seconds" | 12/60                        |
| LLMLAB_TRUST_PROXY       | 1 = take the client address from X-Forwarded-For (behind TLS)   | off                          |
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from labs.core.errors import ConfigError


# HF_HUB_OFFLINE and friends are set in labs/__init__.py, before any module here imports transformers.


def home() -> Path:
    """The root of everything written at run time (created on first use)."""
    root = Path(os.environ.get("LLMLAB_HOME") or Path.home() / ".cache" / "llmlab").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def subdir(name: str) -> Path:
    """LLMLAB_HOME/<name>, created if missing."""
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def db_url() -> str:
    """The votes database: LLMLAB_DB_URL, or SQLite at LLMLAB_HOME/llmlab.sqlite."""
    return os.environ.get("LLMLAB_DB_URL") or f"sqlite:///{home() / 'llmlab.sqlite'}"


def db_configured() -> bool:
    """LLMLAB_DB_URL is set (a class server's database rather than this machine's SQLite file)."""
    return bool(os.environ.get("LLMLAB_DB_URL", "").strip())


def run_queue() -> str:
    """Where background runs queue: "db" (a table every replica and worker shares) or "local" (this process).

    LLMLAB_RUN_QUEUE=db|local; unset: "db" when LLMLAB_DB_URL names a server database (PostgreSQL), else "local",
    so a laptop keeps its in-process queue."""
    value = os.environ.get("LLMLAB_RUN_QUEUE", "").strip().lower()
    if value in ("db", "local"):
        return value
    if value:
        raise ConfigError(f"LLMLAB_RUN_QUEUE must be 'db' or 'local' (got {value!r}).")
    url = os.environ.get("LLMLAB_DB_URL", "").strip()
    return "db" if url and not url.startswith("sqlite") else "local"


def app_worker() -> bool:
    """LLMLAB_APP_WORKER=0: this app process queues runs but never executes them (workers elsewhere do)."""
    return os.environ.get("LLMLAB_APP_WORKER", "").strip().lower() not in _OFF


def artifacts_root() -> Path:
    """Where run folders live (LLMLAB_ARTIFACTS: a directory every replica and worker mounts), else LLMLAB_HOME."""
    value = os.environ.get("LLMLAB_ARTIFACTS", "").strip()
    if not value:
        return home()
    root = Path(value).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def heartbeat_s() -> float:
    """Seconds between a worker's heartbeats (LLMLAB_HEARTBEAT_S); three missed beats fail its run."""
    try:
        return max(0.2, float(os.environ.get("LLMLAB_HEARTBEAT_S", "") or 2.0))
    except ValueError:
        return 2.0


def chroma_url() -> str | None:
    """LLMLAB_CHROMA_URL (a Chroma server), or None for the embedded store under LLMLAB_HOME/chroma."""
    return os.environ.get("LLMLAB_CHROMA_URL") or None


def openai_base_url() -> str | None:
    """LLMLAB_OPENAI_BASE_URL (an OpenAI-compatible server), or None for local generation."""
    return os.environ.get("LLMLAB_OPENAI_BASE_URL") or None


@dataclass(frozen=True)
class DeviceInfo:
    """The device the app computes on, its dtype, a readable name, CPU threads, and how it was chosen."""
    device: str  # "cpu", "cuda", "cuda:1", "mps"
    dtype: torch.dtype
    name: str  # human-readable, e.g. "CPU (2 threads)" or the GPU's name
    threads: int
    source: str  # "auto" or "LLMLAB_DEVICE"

    @property
    def dtype_name(self) -> str:
        """The dtype without the 'torch.' prefix: 'float32', 'bfloat16'."""
        return str(self.dtype).removeprefix("torch.")


_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
           "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}


def _auto_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


@lru_cache(maxsize=1)
def device_info() -> DeviceInfo:
    """CUDA > Apple MPS > CPU unless LLMLAB_DEVICE says otherwise; dtype likewise via LLMLAB_DTYPE."""
    forced = os.environ.get("LLMLAB_DEVICE", "").strip().lower()
    device = forced or _auto_device()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"LLMLAB_DEVICE={forced} but torch sees no CUDA GPU; unset it or use cpu.")
    if device == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError("LLMLAB_DEVICE=mps but this torch build has no Apple MPS; unset it or use cpu.")
    forced_dtype = os.environ.get("LLMLAB_DTYPE", "").strip().lower()
    if forced_dtype:
        if forced_dtype not in _DTYPES:
            raise RuntimeError(f"LLMLAB_DTYPE={forced_dtype} is not one of {sorted(set(_DTYPES))}.")
        dtype = _DTYPES[forced_dtype]
    elif device.startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    elif device == "mps":
        dtype = torch.float16
    else:
        # bf16 matmuls on most laptop CPUs are slower than fp32, and small models are cheap in fp32.
        dtype = torch.float32
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(torch.device(device))
    elif device == "mps":
        name = "Apple GPU (MPS)"
    else:
        name = f"CPU ({torch.get_num_threads()} threads)"
    return DeviceInfo(device, dtype, name, torch.get_num_threads(), "LLMLAB_DEVICE" if forced else "auto")


def is_cpu() -> bool:
    """The app computes on the CPU."""
    return device_info().device == "cpu"


def tiny_models() -> bool:
    """LLMLAB_TINY_MODELS=1: pages get tiny random models of the real architectures (tests, fast demos)."""
    return os.environ.get("LLMLAB_TINY_MODELS", "") not in ("", "0", "false")


def max_heavy_jobs() -> int:
    """Runs the job queue executes at once: LLMLAB_MAX_HEAVY_JOBS, else 1 on a CPU and 2 on a GPU."""
    value = os.environ.get("LLMLAB_MAX_HEAVY_JOBS")
    if value:
        return max(1, int(value))
    return 1 if is_cpu() else 2


# ---- a class server: what one student may use ------------------------------------------------------------
_OFF = ("0", "off", "false", "no")


def _env_int(name: str, default: int | None) -> int | None:
    """A non-negative integer from the environment; an unset or unreadable value gives the default."""
    value = os.environ.get(name, "").strip()
    try:
        return max(0, int(value)) if value else default
    except ValueError:
        return default


def class_mode() -> bool:
    """LLMLAB_CLASS_MODE=1: the app serves a class, so each request is bounded (see max_new_tokens)."""
    return os.environ.get("LLMLAB_CLASS_MODE", "").strip().lower() not in ("", *_OFF)


def max_new_tokens() -> int | None:
    """The most new tokens one generation request may ask for; None = no cap beyond each page's own slider."""
    cap = _env_int("LLMLAB_MAX_NEW_TOKENS", 128 if class_mode() else None)
    return cap or None


def runs_per_session() -> int:
    """Queued-or-running background runs one browser session may have at once (0 = no limit)."""
    return _env_int("LLMLAB_RUNS_PER_SESSION", 1)


def url_loading() -> bool:
    """LLMLAB_URL_LOADING=off: the server never fetches a URL for anyone (the RAG page says so)."""
    return os.environ.get("LLMLAB_URL_LOADING", "").strip().lower() not in _OFF


def vote_burst() -> tuple[int, float]:
    """(votes, seconds): the most arena votes one client address may cast in a sliding window."""
    value = os.environ.get("LLMLAB_VOTE_BURST", "").strip()
    try:
        n, seconds = value.split("/")
        if int(n) > 0 and float(seconds) > 0:
            return int(n), float(seconds)
    except ValueError:
        pass
    # A person reads two answers before voting (10 s or more); 12 a minute leaves room for a few people who
    # share one address and still stops a script.
    return 12, 60.0


def trust_proxy() -> bool:
    """LLMLAB_TRUST_PROXY=1: a reverse proxy (TLS) sits in front, so the client is the X-Forwarded-For address."""
    return os.environ.get("LLMLAB_TRUST_PROXY", "").strip().lower() not in ("", *_OFF)


def check_new_tokens(requested: int) -> int:
    """`requested` if it is within the class's cap on new tokens per request, else ValueError saying the cap."""
    cap = max_new_tokens()
    if cap is not None and int(requested) > cap:
        raise ConfigError(f"This server answers with at most {cap} new tokens per request (class mode, "
                         f"LLMLAB_MAX_NEW_TOKENS); ask for {cap} or fewer.")
    return int(requested)


def new_tokens_slider_max(page_max: int, page_min: int = 16) -> int:
    """A page's 'max tokens' slider top, lowered to the class cap (never below the slider's own minimum)."""
    cap = max_new_tokens()
    return page_max if cap is None else max(page_min, min(page_max, cap))


def max_streams() -> int:
    """How many streams one model's engine decodes at once; later arrivals wait and see their place."""
    value = os.environ.get("LLMLAB_MAX_STREAMS")
    if value:
        return max(1, int(value))
    return 96 if is_cpu() else 128  # bench_classroom: 96 beat 32 on every figure for 30 students


RUNTIMES = ("auto", "torch", "openvino")


def runtime() -> str:
    """LLMLAB_RUNTIME: 'auto' (the fast CPU runtime where it is installed, passes the quality gate and can run
    the model; torch otherwise and on a GPU), 'torch' (always the reference engine), 'openvino' (also for tiny
    test models)."""
    value = os.environ.get("LLMLAB_RUNTIME", "auto").strip().lower() or "auto"
    if value not in RUNTIMES:
        raise RuntimeError(f"LLMLAB_RUNTIME={value} is not one of {RUNTIMES}.")
    return value
