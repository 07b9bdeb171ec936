"""Helpers for the bring-your-own-model tests: a tiny Hugging Face folder model (random weights, SmolLM2's real
tokenizer), a models file, and the project's own OpenAI-compatible server (`python -m labs.serving.serve`) on a free
loopback port. Every request these helpers make goes to 127.0.0.1."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER_NAME = "Tiny folder model"
FOLDER_KEY = "user-tiny-folder-model"
ENDPOINT_NAME = "Served by labs.serving.serve"
ENDPOINT_KEY = "user-served-by-labs-serving-serve"


def build_tiny_folder(folder: Path, seed: int = 1) -> Path:
    """config.json + model.safetensors (a 2-layer Llama, hidden 64) + SmolLM2's tokenizer files."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from labs import models

    source = models.cache_dir("smollm2-135m-instruct")
    models.ensure_cached("smollm2-135m-instruct")
    config = AutoConfig.from_pretrained(str(source))
    for name, value in dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                            intermediate_size=128, head_dim=16).items():
        setattr(config, name, value)
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    for f in source.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "chat_template", "generation_config")):
            shutil.copy(f, folder / f.name)
    return folder


def toml_table(entry: dict) -> str:
    from labs import models

    return models.toml_entry(entry)


def write_models_file(path: Path, entries: list[dict], extra: str = "") -> Path:
    path.write_text("\n".join(toml_table(e) for e in entries) + extra, encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env_extra: dict | None = None) -> tuple[subprocess.Popen, str]:
    """`python -m labs.serving.serve` (tiny models) on a free 127.0.0.1 port; returns (process, base_url ending in /v1)."""
    port = free_port()
    env = dict(os.environ, LLMLAB_TINY_MODELS="1", **(env_extra or {}))
    env.pop("LLMLAB_MODELS_FILE", None)
    proc = subprocess.Popen([sys.executable, "-m", "labs.serving.serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        if proc.poll() is not None:
            raise RuntimeError("labs.serving.serve exited early")
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            return proc, url + "/v1"
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("labs.serving.serve did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def folder_entry(folder: Path, name: str = FOLDER_NAME) -> dict:
    return {"name": name, "path": str(folder), "kind": "causal", "prompt_format": "chat"}


def endpoint_entry(base_url: str, name: str = ENDPOINT_NAME, timeout: float | None = None) -> dict:
    entry = {"name": name, "base_url": base_url, "model": "smollm2-135m-instruct"}
    if timeout is not None:
        entry["timeout"] = timeout
    return entry
