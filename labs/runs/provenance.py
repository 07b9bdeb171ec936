"""What a stored run was made with, so a run made by other code, with another model file or with files cut short
is not replayed as current: the labs code's hash, tiny or real models, each named model file's fingerprint, and
the sizes of the run's artifacts; and the run's identity (its config as data, its kind, its id)."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from labs import models
from labs.core import settings


_LABS = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the labs code (every .py under labs/): a run made by other code is not replayed as current."""
    digest = hashlib.sha256()
    for path in sorted(_LABS.rglob("*.py")):
        digest.update(path.relative_to(_LABS).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def model_fingerprint(key: str) -> str:
    """Where a model's weights come from and the sizes of its converted files: changes when its file changes."""
    s = models.spec(key)
    try:
        manifest = (models.cache_dir(key) / ".complete").read_text()
    except OSError:
        manifest = ""
    return hashlib.sha256(f"{s.install}|{s.location}|{manifest}".encode()).hexdigest()[:12]


def made_with(config: dict) -> dict:
    """What a run's result depends on beyond its config: the labs code, tiny or real models, and a fingerprint of
    each model file the config names (a value that is a model key)."""
    known = models.all_specs()
    keys = sorted({v for v in config.values() if isinstance(v, str) and v in known})
    return {"code": code_version(), "tiny": settings.tiny_models(),
            "models": {k: "tiny" if settings.tiny_models() else model_fingerprint(k) for k in keys}}


def artifact_sizes(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in ("run.json", "run.tmp")}


def stale_reason(was: dict, files: dict[str, int] | None, folder: Path, config: dict) -> str:
    """Why a finished run (made with `was`, its artifacts in `folder` of `files` sizes) is not current for
    `config` ("" when it is): made with other code or another model file, or its files changed since it finished
    (cut short, deleted, corrupt)."""
    now = made_with(config)
    was = was or {}
    if was.get("code") != now["code"]:
        return "it was made by another version of the labs code"
    if was.get("tiny") != now["tiny"]:
        return f"it was made with the {'tiny test' if was.get('tiny') else 'real'} models"
    for key, fingerprint in now["models"].items():
        if was.get("models", {}).get(key) != fingerprint:
            return f"the model file of {key} changed since"
    if files is not None:
        now_files = artifact_sizes(folder)
        if any(now_files.get(name) != size for name, size in files.items()):  # files added later are fine
            return "its files changed since it finished (cut short or deleted)"
    return ""


# -- a run's identity: what was asked, as data and as an id -------------------------------------------------
def config_dict(config: Any) -> dict:
    """The config as plain JSON data (what run.json stores and the run id hashes); a dataclass or a dict."""
    if dataclasses.is_dataclass(config):
        return json.loads(json.dumps(dataclasses.asdict(config), default=str))
    if isinstance(config, dict):
        return json.loads(json.dumps(config, default=str))
    raise TypeError("A run's config must be a dataclass (or a dict).")


def kind_of(config: Any) -> str:
    """The run kind stored in `Run.kind`: the config class's name. Takes the class or an instance, so pages
    refer to a kind by its class (`jobs.list_runs(SFTConfig)`) rather than by a string. A plain dict is "dict".
    Stored runs keep this name: renaming a config class leaves its old runs under the old kind."""
    cls = config if isinstance(config, type) else type(config)
    return cls.__name__ if dataclasses.is_dataclass(cls) else "dict"


def run_id_for(kind: str, config: dict, seed: int | None) -> str:
    """The run id: `<kind>-<hash>` of (kind, config, seed, tiny models?), so the same experiment maps to the
    same folder and replays."""
    # Tiny test models and real models never share a stored result.
    blob = json.dumps({"kind": kind, "config": config, "seed": seed, "tiny": settings.tiny_models()}, sort_keys=True)
    return f"{kind.lower()[:24]}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"
