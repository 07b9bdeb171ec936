"""Settings read from the environment, and the device / dtype choice.

Every path written at run time lives under ``LLMLAB_HOME`` (never inside the repo).

| variable                 | meaning                                                        | default                      |
|--------------------------|----------------------------------------------------------------|------------------------------|
| LLMLAB_HOME              | cache of converted models, runs, votes, vectors                | ~/.cache/llmlab              |
| LLMLAB_DEVICE            | force a device: cpu, cuda, cuda:1, mps                          | auto: cuda > mps > cpu       |
| LLMLAB_DTYPE             | force a dtype: float32, bfloat16, float16                       | float32 on CPU, bf16/fp16 GPU|
| LLMLAB_DB_URL            | SQLAlchemy URL for votes and the runs index                     | sqlite under LLMLAB_HOME     |
| LLMLAB_CHROMA_URL        | http://host:port of a Chroma server                             | embedded PersistentClient    |
| LLMLAB_OPENAI_BASE_URL   | OpenAI-compatible endpoint (vLLM, llama.cpp server) for chat    | local transformers           |
| LLMLAB_OPENAI_API_KEY    | key sent to that endpoint                                       | "none"                       |
| LLMLAB_MODEL_CACHE       | where converted models live (shared by tests)                  | LLMLAB_HOME/models           |
| LLMLAB_TINY_MODELS       | 1 = tiny random models of the real architectures (tests)       | off                          |
| LLMLAB_MAX_HEAVY_JOBS    | background runs executing at once                               | 1 on CPU, 2 on a GPU         |
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

# Nothing in this app may talk to a model hub; set before transformers is imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # Chroma's telemetry
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def home() -> Path:
    """The root of everything written at run time (created on first use)."""
    root = Path(os.environ.get("LLMLAB_HOME") or Path.home() / ".cache" / "llmlab").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def subdir(name: str) -> Path:
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def db_url() -> str:
    return os.environ.get("LLMLAB_DB_URL") or f"sqlite:///{home() / 'llmlab.sqlite'}"


def chroma_url() -> str | None:
    return os.environ.get("LLMLAB_CHROMA_URL") or None


def openai_base_url() -> str | None:
    return os.environ.get("LLMLAB_OPENAI_BASE_URL") or None


@dataclass(frozen=True)
class DeviceInfo:
    device: str  # "cpu", "cuda", "cuda:1", "mps"
    dtype: torch.dtype
    name: str  # human-readable, e.g. "CPU (2 threads)" or the GPU's name
    threads: int
    source: str  # "auto" or "LLMLAB_DEVICE"

    @property
    def dtype_name(self) -> str:
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
    return device_info().device == "cpu"


def tiny_models() -> bool:
    """LLMLAB_TINY_MODELS=1: pages get tiny random models of the real architectures (tests, fast demos)."""
    return os.environ.get("LLMLAB_TINY_MODELS", "") not in ("", "0", "false")


def max_heavy_jobs() -> int:
    value = os.environ.get("LLMLAB_MAX_HEAVY_JOBS")
    if value:
        return max(1, int(value))
    return 1 if is_cpu() else 2
