"""Saved LoRA adapters: one folder per adapter (PEFT's adapter_model.safetensors + adapter_config.json) plus
our adapter.json (label, base model, page, created). The arena and evaluation pages list them as contenders."""
from __future__ import annotations

import copy
import io
import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from peft import PeftModel

from labs.core import settings
from labs.core.errors import ConfigError
from labs.models import LoadedModel, ModelError


META = "adapter.json"


@dataclass(frozen=True)
class AdapterInfo:
    """A saved adapter: its folder, label, the base model key, the page that trained it, when (epoch
    seconds) and the rest of its metadata."""
    path: str
    label: str
    base_model: str
    page: str
    created: float
    meta: dict


def save_adapter(peft_model, folder: str | Path, meta: dict) -> Path:
    """Save a PEFT model's adapter weights + our metadata. meta needs 'label' and 'base_model' (a registry key)."""
    missing = {"label", "base_model"} - set(meta)
    if missing:
        raise ConfigError(f"Adapter metadata needs {sorted(missing)}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(folder), safe_serialization=True)
    (folder / META).write_text(json.dumps(dict(meta, created=meta.get("created", time.time())), indent=2, default=str))
    return folder


def zip_adapter(folder: str | Path) -> bytes:
    """The adapter folder (safetensors + configs) as a zip, for download."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in sorted(Path(folder).iterdir()):
            if f.is_file():
                z.write(f, f.name)
    return buf.getvalue()


def list_adapters(base_model: str | None = None) -> list[AdapterInfo]:
    """Every saved adapter under LLMLAB_ARTIFACTS (else LLMLAB_HOME): runs/*/**/adapter.json, newest first."""
    found = []
    for meta_path in settings.artifacts_root().glob("runs/**/" + META):  # LLMLAB_ARTIFACTS: every replica sees them
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        if not (meta_path.parent / "adapter_config.json").exists():
            continue
        if base_model and meta.get("base_model") != base_model:
            continue
        found.append(AdapterInfo(str(meta_path.parent), meta.get("label", meta_path.parent.name),
                                 meta.get("base_model", ""), meta.get("page", ""), float(meta.get("created", 0)), meta))
    return sorted(found, key=lambda a: a.created, reverse=True)


def load_adapter(lm: LoadedModel, path: str | Path):
    """A PeftModel = a copy of the shared base + the saved adapter, in eval mode (the shared model stays untouched)."""
    path = Path(path)
    if not (path / "adapter_config.json").exists():
        raise ModelError(f"No adapter at {path} (adapter_config.json is missing).")
    meta = json.loads((path / META).read_text()) if (path / META).exists() else {}
    if meta.get("base_model") and meta["base_model"] != lm.key:
        raise ModelError(f"This adapter was trained on {meta['base_model']}, not {lm.key}.")
    model = PeftModel.from_pretrained(copy.deepcopy(lm.model), str(path))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
