"""Loading: a causal model (LoadedModel, shared read-only across sessions), its tokenizer, the embedder, and
tiny random-initialised models of the real architectures with the real tokenizer (tests, fast demos)."""
from __future__ import annotations

import gc
import shutil
import threading
import time
from dataclasses import dataclass, field

import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from labs.core import settings
from labs.core.errors import ModelError
from labs.models.cache import Progress, cache_dir, embedder_folder, ensure_cached, ensure_local
from labs.models.memory import require_memory
from labs.models.registry import DEFAULT_CHAT_MODEL, EMBEDDING_MODEL, ModelSpec, endpoint_refusal, spec
from labs.models.variants import decode_variant, forced_decode


@dataclass
class LoadedModel:
    """A causal LM shared read-only across sessions; `lock` serialises forward passes that mutate nothing."""

    key: str
    model: torch.nn.Module
    tokenizer: object
    device: str
    dtype: torch.dtype
    load_seconds: float
    note: str = ""
    decode: str = "float32"  # which decode_variant generation uses (LLMLAB_DECODE, or labs.serving.decode_gate's choice)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _variants: dict = field(default_factory=dict, repr=False)
    model_spec: ModelSpec | None = None  # kept at load: a models-file entry may be edited while it is in use
    runtime: object | None = field(default=None, repr=False)  # labs.serving.runtimes engine serving it, None = torch
    runtime_note: str = "torch engine"  # which runtime answers, and why (Home shows it)
    tiny: bool = False  # a tiny random model of the architecture (tests, fast demos)

    @property
    def inference_model(self) -> torch.nn.Module:
        """The module generation runs: the shared model, or a faster read-only copy of it (int8 / bf16)."""
        return decode_variant(self, self.decode)

    @property
    def spec(self) -> ModelSpec:
        """This model's registry entry."""
        return self.model_spec or spec(self.key)

    @property
    def context_length(self) -> int:
        """The longest sequence the model takes, in tokens (max_position_embeddings; 2048 if unset)."""
        return int(getattr(self.model.config, "max_position_embeddings", 2048))

    def num_parameters(self) -> int:
        """Number of parameters (all of them, trainable or not)."""
        return sum(p.numel() for p in self.model.parameters())


def load_tokenizer(key: str, progress: Progress | None = None):
    """The tokenizer of a registry model, converting the model into the cache first if needed."""
    ensure_cached(key, progress)
    return AutoTokenizer.from_pretrained(str(cache_dir(key)))


def load_model(key: str = DEFAULT_CHAT_MODEL, device: str | None = None, dtype: torch.dtype | None = None,
               progress: Progress | None = None) -> LoadedModel:
    """Load a causal model from the safetensors cache (converting on first use), in eval mode."""
    s = spec(key)
    if s.is_endpoint:
        raise ModelError(endpoint_refusal(s, "loaded on this machine"))
    if s.kind != "causal":
        raise ModelError(f"{s.display_name} is not a text generator.")
    if settings.tiny_models() and not s.is_user:  # tests and quick demos: same architecture and tokenizer, random weights
        return tiny_model(key)
    note = ensure_cached(key, progress)
    info = settings.device_info()
    device = device or info.device
    dtype = dtype or info.dtype
    if s.is_user:
        require_memory(key, "inference", dtype=dtype, device=device)
    t0 = time.perf_counter()
    folder = cache_dir(key)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
    except (OSError, ValueError, KeyError) as exc:
        if s.source == "folder":  # the user's own files: never delete them, say what is wrong
            raise ModelError(f"{s.entry}: field 'path': {folder} could not be loaded by transformers "
                             f"({type(exc).__name__}: {exc}).") from None
        shutil.rmtree(folder, ignore_errors=True)  # a file of our cache vanished after the check
        raise ModelError(f"The cache of {s.display_name} could not be read ({exc}); it was removed, try again.") from exc
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    lm = LoadedModel(key, model, tokenizer, device, dtype, time.perf_counter() - t0, note, model_spec=s)
    if dtype == torch.float32:
        lm.decode = forced_decode()
    # A loaded model lives as long as the server: move its (many) Python objects out of the garbage collector's
    # reach, so that no later collection walks them while holding the GIL that the decoder needs.

    gc.freeze()
    return lm


def tiny_model(key: str = DEFAULT_CHAT_MODEL, seed: int = 0, hidden_size: int = 64, layers: int = 2,
               heads: int = 4, kv_heads: int = 2, intermediate: int = 128) -> LoadedModel:
    """A random-initialised model of the same architecture and real tokenizer, for fast tests."""
    tokenizer = load_tokenizer(key)
    config = AutoConfig.from_pretrained(str(cache_dir(key)))
    for name, value in dict(hidden_size=hidden_size, num_hidden_layers=layers, num_attention_heads=heads,
                            num_key_value_heads=kv_heads, intermediate_size=intermediate,
                            head_dim=hidden_size // heads).items():
        if hasattr(config, name):
            setattr(config, name, value)
    if hasattr(config, "layer_types") and config.layer_types is not None:
        config.layer_types = list(config.layer_types)[:layers]
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedModel(key, model, tokenizer, "cpu", torch.float32, 0.0, tiny=True)


def load_embedder(device: str | None = None, key: str = EMBEDDING_MODEL):
    """all-MiniLM-L6-v2 from its package folder (sentence-transformers, no hub), or an embedding model from the
    models file (a sentence-transformers folder, or a plain encoder folder: mean pooling is added)."""
    s = spec(key)
    if s.kind != "embedding":
        raise ModelError(f"{s.display_name} is a text generator, not an embedding model (kind = \"causal\").")
    if s.is_user:
        ensure_local(key)
        folder = cache_dir(key)
    else:
        folder = embedder_folder(key)
    try:
        return SentenceTransformer(str(folder), device=device or settings.device_info().device, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{s.entry or s.display_name}: field 'path': {folder} is not a sentence-embedding model "
                         f"({type(exc).__name__}: {exc}).") from None
