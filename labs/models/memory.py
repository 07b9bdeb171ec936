"""Size and memory: a model that will not fit is refused with the numbers."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from gguf import GGUFReader
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from labs.core import settings
from labs.core.errors import ConfigError, ModelError
from labs.models.cache import cache_dir, cache_state, embedder_folder, ensure_cached, ensure_local
from labs.models.registry import ModelSpec, endpoint_refusal, spec


# ---------------------------------------------------------------------------------------------------------
# Size and memory: a model that will not fit is refused with the numbers.
# ---------------------------------------------------------------------------------------------------------
_param_cache: dict[tuple, int] = {}


def count_parameters(key: str) -> int:
    """Parameters of a model from its config alone (built on the meta device: no weights read, about a second).
    A GGUF that is not converted yet is counted from the tensor shapes in its header."""
    s = spec(key)
    if s.is_endpoint:
        raise ModelError(endpoint_refusal(s, "measured"))
    if s.source == "gguf" and cache_state(key) != "ready":
        return int(sum(int(t.n_elements) for t in GGUFReader(s.location).tensors))
    if s.source == "package" and s.kind == "embedding":
        folder = embedder_folder(key)
    else:
        if s.source == "package":
            ensure_cached(key)
        else:
            ensure_local(key)
        folder = cache_dir(key)
    config_path = folder / "config.json"
    signature = (key, str(config_path), config_path.stat().st_mtime_ns)
    if signature not in _param_cache:
        config = AutoConfig.from_pretrained(str(folder))
        with torch.device("meta"):
            model = (AutoModelForCausalLM if s.kind == "causal" else AutoModel).from_config(config)
        _param_cache[signature] = sum(p.numel() for p in model.parameters())
    return _param_cache[signature]


def entry_parameters(s: ModelSpec) -> int:
    """Parameters of a models-file entry from its config.json (or a GGUF header), before it is in the file."""
    if s.is_endpoint:
        raise ModelError(endpoint_refusal(s, "measured"))
    if s.source == "gguf":
        return int(sum(int(t.n_elements) for t in GGUFReader(s.location).tensors))
    folder = cache_dir(s.key) if s.source == "hub" else Path(s.location)
    try:
        config = AutoConfig.from_pretrained(str(folder))
        with torch.device("meta"):
            model = (AutoModelForCausalLM if s.kind == "causal" else AutoModel).from_config(config)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{s.entry}: the config.json in {folder} cannot be read by transformers "
                         f"({type(exc).__name__}: {exc}).") from None
    return sum(p.numel() for p in model.parameters())


def params_text(n: int) -> str:
    """A parameter count in words: '135M', '1.24B'."""
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


# Bytes per parameter beyond the weights themselves, by what is done with the model:
# inference holds the weights once; LoRA training adds a private copy (the shared one stays read-only);
# full fine-tuning adds the copy plus its gradient and Adam's two moments in float32 (4 + 4 + 4 bytes).
PURPOSES = {"inference": "answering", "lora": "training adapters on a private copy", "full": "full fine-tuning"}


@dataclass(frozen=True)
class MemoryCheck:
    """Whether a model fits before loading it: parameters × bytes per parameter (bytes) against the free
    RAM or GPU memory (bytes), and the sentence to show."""
    name: str
    params: int
    bytes_per_param: int
    need_bytes: int
    available_bytes: int
    where: str  # "RAM" or "GPU memory"
    purpose: str

    @property
    def fits(self) -> bool:
        """The estimate fits in the free memory."""
        return self.need_bytes <= self.available_bytes

    def text(self) -> str:
        """The check in one sentence: size, bytes per parameter, and the free memory."""
        return (f"{self.name} has {params_text(self.params)} parameters: {PURPOSES[self.purpose]} "
                f"needs about {size_text(self.need_bytes)} ({self.bytes_per_param} bytes per parameter), and this "
                f"machine has {size_text(self.available_bytes)} of {self.where} free.")


def size_text(n: int) -> str:
    """A byte count as GiB (one decimal) or MiB."""
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def available_memory(device: str | None = None) -> tuple[int, str]:
    """(free bytes, 'RAM' or 'GPU memory') on `device` (default: the app's device)."""
    device = device or settings.device_info().device
    if device.startswith("cuda") and torch.cuda.is_available():
        return int(torch.cuda.mem_get_info(torch.device(device))[0]), "GPU memory"
    import psutil  # optional dependency: memory figures fall back without it

    return int(psutil.virtual_memory().available), "RAM"


def check_memory(key: str | ModelSpec, purpose: str = "inference", dtype: torch.dtype | None = None,
                 device: str | None = None, params: int | None = None) -> MemoryCheck:
    """Will `key` (a registry key, or the spec of an entry not yet in the file) fit for this purpose?"""
    if purpose not in PURPOSES:
        raise ConfigError(f"purpose must be one of {', '.join(PURPOSES)}.")
    s = key if isinstance(key, ModelSpec) else spec(key)
    dtype = dtype or settings.device_info().dtype
    n = params if params is not None else (count_parameters(s.key) if not isinstance(key, ModelSpec)
                                           else entry_parameters(s))
    weight = torch.tensor([], dtype=dtype).element_size()
    per = {"inference": weight, "lora": 2 * weight, "full": weight + 16}[purpose]
    need = int(n * per * 1.1)  # +10 %: activations, KV cache and the tokenizer for short class prompts
    available, where = available_memory(device)
    return MemoryCheck(s.display_name, n, per, need, available, where, purpose)


def require_memory(key: str, purpose: str = "inference", **kw) -> MemoryCheck:
    """check_memory, raising ModelError (with the numbers) when the model will not fit."""
    check = check_memory(key, purpose, **kw)
    if not check.fits:
        raise ModelError(f"Refused: {check.text()} Pick a smaller model, LoRA instead of full fine-tuning, or a "
                         "machine with more memory.")
    return check
