"""The models file: a local folder model joins the registry, bad entries each give one message naming the entry and
the field (and never hide the others), the file is re-read when it changes, memory and LoRA targets come from the
model itself."""
from __future__ import annotations

import time

import pytest
import torch

from labs.serving import generation
from labs import models
from labs.training import loop as training
from tests import byo


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return byo.build_tiny_folder(tmp_path_factory.mktemp("byo") / "tiny")


@pytest.fixture
def models_file(tmp_path, monkeypatch):
    path = tmp_path / "models.toml"
    monkeypatch.setenv("LLMLAB_MODELS_FILE", str(path))
    return path


def test_folder_model_is_listed_loaded_and_generates(folder, models_file):
    byo.write_models_file(models_file, [byo.folder_entry(folder)])
    assert byo.FOLDER_KEY in [s.key for s in models.causal_models()]
    assert byo.FOLDER_KEY in [s.key for s in models.generators()]
    assert models.DEFAULT_CHAT_MODEL in [s.key for s in models.causal_models()]  # the packaged trio stays
    lm = models.load_model(byo.FOLDER_KEY, device="cpu")
    assert lm.spec.display_name == byo.FOLDER_NAME and lm.spec.source == "folder"
    assert models.count_parameters(byo.FOLDER_KEY) == lm.num_parameters()  # meta-device count = real count
    assert lm.model.config.hidden_size == 64 and lm.tokenizer("hello")["input_ids"]
    cfg = generation.GenerationConfig(max_new_tokens=6, temperature=0.0)
    assert generation.generate(lm, "Hello", cfg) == generation.generate(lm, "Hello", cfg)  # greedy is repeatable
    assert models.cache_state(byo.FOLDER_KEY) == "ready" and models.cache_dir(byo.FOLDER_KEY) == folder
    assert models.lora_targets(lm.model) == (("q_proj", "k_proj", "v_proj", "o_proj"),
                                             ("gate_proj", "up_proj", "down_proj"))


def test_each_bad_entry_gives_one_message_and_the_rest_still_work(folder, models_file, tmp_path):
    (tmp_path / "empty").mkdir()
    byo.write_models_file(models_file, [
        byo.folder_entry(folder),
        {"name": "Typo", "pth": str(folder)},
        {"path": str(folder)},
        {"name": "No config", "path": str(tmp_path / "empty")},
        {"name": "Two sources", "path": str(folder), "hub_id": "a/b"},
        {"name": "No served model", "base_url": "http://127.0.0.1:9/v1"},
        {"name": "Bad URL", "base_url": "gpu-box:8000", "model": "m"},
        {"name": "Bad kind", "path": str(folder), "kind": "chat"},
    ])
    found = models.user_models()
    assert list(found.specs) == [byo.FOLDER_KEY]
    errors = found.errors
    assert len(errors) == 7
    assert "entry 2 ('Typo'): unknown field 'pth'" in errors[0] and "did you mean 'path'" in errors[0]
    assert "entry 3" in errors[1] and "field 'name' is missing" in errors[1]
    assert "'No config'" in errors[2] and "field 'path'" in errors[2] and "no config.json" in errors[2]
    assert "exactly one of" in errors[3] and "path, hub_id" in errors[3]
    assert "field 'model' is missing" in errors[4]
    assert "field 'base_url'" in errors[5] and "http://" in errors[5]
    assert "field 'kind'" in errors[6]
    models.load_model(byo.FOLDER_KEY, device="cpu")  # the good entry keeps working


def test_a_file_that_is_not_toml_leaves_the_packaged_models(models_file):
    models_file.write_text("[[model]\nname = 'x'\n")
    found = models.user_models()
    assert not found.specs and len(found.errors) == 1 and "not valid TOML" in found.errors[0]
    assert [s.key for s in models.causal_models()] == ["smollm2-135m-instruct", "gemma3-270m"]


def test_the_file_is_re_read_when_it_changes(folder, models_file):
    byo.write_models_file(models_file, [byo.folder_entry(folder)])
    assert list(models.user_models().specs) == [byo.FOLDER_KEY]
    time.sleep(0.01)
    byo.write_models_file(models_file, [byo.folder_entry(folder), byo.folder_entry(folder, "Second copy")])
    assert list(models.user_models().specs) == [byo.FOLDER_KEY, "user-second-copy"]
    models_file.unlink()
    assert models.user_models().specs == {}
    with pytest.raises(models.ModelError, match="Unknown model"):
        models.spec(byo.FOLDER_KEY)


def test_duplicate_names_are_refused(folder, models_file):
    byo.write_models_file(models_file, [byo.folder_entry(folder), byo.folder_entry(folder)])
    found = models.user_models()
    assert list(found.specs) == [byo.FOLDER_KEY] and "entry 2" in found.errors[0] and "field 'name'" in found.errors[0]


def test_hub_id_offline_gives_a_clear_message_and_never_downloads(models_file, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    byo.write_models_file(models_file, [{"name": "From the hub", "hub_id": "HuggingFaceTB/SmolLM2-360M-Instruct"}])
    key = "user-from-the-hub"
    assert models.cache_state(key) == "not downloaded"
    with pytest.raises(models.ModelError, match="not downloaded yet"):
        models.load_model(key)  # the default path never downloads
    with pytest.raises(models.ModelError, match=r"runs offline \(HF_HUB_OFFLINE=1"):
        models.download(key)
    assert not models.cache_dir(key).exists()


def test_gguf_of_an_unsupported_architecture_names_the_field(models_file, tmp_path):
    import gguf

    path = tmp_path / "encoder.gguf"
    writer = gguf.GGUFWriter(str(path), "bert")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert path.exists()
    byo.write_models_file(models_file, [{"name": "An encoder", "gguf": str(path)},
                                        {"name": "Missing file", "gguf": str(tmp_path / "nope.gguf")}])
    errors = models.user_models().errors
    assert "field 'gguf'" in errors[0] and "'bert' model, which transformers cannot load from GGUF" in errors[0]
    assert "field 'gguf'" in errors[1] and "does not exist" in errors[1]


def test_a_model_that_does_not_fit_is_refused_with_the_numbers(folder, models_file, monkeypatch):
    byo.write_models_file(models_file, [byo.folder_entry(folder)])
    n = models.count_parameters(byo.FOLDER_KEY)
    fits = models.check_memory(byo.FOLDER_KEY, "inference", dtype=torch.float32)
    assert fits.fits and fits.need_bytes == int(n * 4 * 1.1)
    monkeypatch.setattr(models.memory, "available_memory", lambda device=None: (1_000_000, "RAM"))
    need_mib = round(int(n * (4 + 16) * 1.1) / 2**20)  # float32 weights + gradient + Adam's two moments, +10 %
    with pytest.raises(models.ModelError, match=rf"Refused: Tiny folder model has 3M parameters: full fine-tuning "
                                                rf"needs about {need_mib} MiB \(20 bytes per parameter\).*1 MiB of RAM free"):
        models.require_memory(byo.FOLDER_KEY, "full", dtype=torch.float32)
    with pytest.raises(models.ModelError, match="Refused"):
        models.load_model(byo.FOLDER_KEY, device="cpu")


def test_endpoints_are_generators_but_not_local_models(models_file):
    byo.write_models_file(models_file, [byo.endpoint_entry("http://127.0.0.1:9/v1")])
    assert byo.ENDPOINT_KEY in [s.key for s in models.generators()]
    assert byo.ENDPOINT_KEY not in [s.key for s in models.causal_models()]
    with pytest.raises(models.ModelError, match="cannot be loaded on this machine.*Pick a local model"):
        models.load_model(byo.ENDPOINT_KEY)


def test_add_to_models_file_writes_an_entry_that_reads_back(folder, models_file):
    spec = models.add_to_models_file(byo.folder_entry(folder, 'Quote " and \\ backslash'))
    assert spec.key in models.user_models().specs
    assert models.user_models().specs[spec.key].location == str(folder)
    with pytest.raises(models.ModelError, match="exists already"):
        models.add_to_models_file(byo.folder_entry(folder, 'Quote " and \\ backslash'))


@pytest.mark.parametrize("family, attention, mlp", [
    ("gpt2", ("c_attn", "c_proj"), ("c_fc",)),
    ("gpt_neox", ("query_key_value", "dense"), ("dense_h_to_4h", "dense_4h_to_h")),
    ("phi", ("q_proj", "k_proj", "v_proj", "dense"), ("fc1", "fc2")),
    ("qwen2", ("q_proj", "k_proj", "v_proj", "o_proj"), ("gate_proj", "up_proj", "down_proj")),
])
def test_lora_targets_follow_the_architecture_and_peft_accepts_them(family, attention, mlp):
    from transformers import AutoConfig, AutoModelForCausalLM

    from labs.finetune import lora

    config = AutoConfig.for_model(family, vocab_size=128, hidden_size=32, n_embd=32, num_hidden_layers=2, n_layer=2,
                                  num_attention_heads=2, n_head=2, num_key_value_heads=2, intermediate_size=64)
    model = AutoModelForCausalLM.from_config(config)
    assert models.lora_targets(model) == (attention, mlp)
    arch = lora.architecture_of(model, family)
    assert arch.layers == 2 and set(arch.matrices) == set(attention + mlp)
    # every module carrying one of the names gets A (r x k) and B (d x r): r (d + k) each (Hu et al. 2021);
    # GPT-2's c_proj names both the attention output and the MLP down projection, so both are adapted
    expected = sum(2 * sum(m.weight.shape) for name, m in model.named_modules() if name.rsplit(".", 1)[-1] in attention)
    settings = training.LoraSettings(r=2, targets=attention)
    peft_model = __import__("peft").get_peft_model(model, settings.peft_config())
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert trainable == expected > 0
