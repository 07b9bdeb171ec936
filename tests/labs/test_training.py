import torch

from labs import adapters, training


def test_tokenize_masks_prompt_and_appends_eos(tiny):
    ex = training.tokenize_example(tiny.tokenizer, "Question: 2+2?\nAnswer:", " 4")
    n_prompt = ex["prompt_len"]
    assert all(label == training.IGNORE for label in ex["labels"][:n_prompt])
    assert ex["labels"][n_prompt:] == ex["input_ids"][n_prompt:]
    assert ex["input_ids"][-1] == tiny.tokenizer.eos_token_id
    trained_on_prompt = training.tokenize_example(tiny.tokenizer, "Question: 2+2?\nAnswer:", " 4", train_on_prompt=True)
    assert trained_on_prompt["labels"] == trained_on_prompt["input_ids"]


def test_sequence_logprobs_equals_manual_sum(tiny):
    ex = training.tokenize_example(tiny.tokenizer, "Hello there", " general Kenobi")
    batch = training.collate([ex, training.tokenize_example(tiny.tokenizer, "Hi", " you")], tiny.tokenizer.eos_token_id)
    total, count = training.sequence_logprobs(tiny.model, **batch)
    logits = tiny.model(input_ids=batch["input_ids"][:1]).logits[0]
    logp = torch.log_softmax(logits.float(), -1)
    manual = sum(logp[t - 1, batch["input_ids"][0, t]] for t in range(ex["prompt_len"], len(ex["input_ids"])))
    assert torch.allclose(total[0], manual, atol=1e-4)
    assert int(count[0]) == len(ex["input_ids"]) - ex["prompt_len"]


def test_lora_starts_equal_to_base_and_copy_leaves_shared_model(tiny, tmp_path):
    model, trainable, total = training.trainable_model(tiny, "lora", training.LoraSettings(r=4))
    assert 0 < trainable < total
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, tiny.model(input_ids=ids).logits, atol=1e-5)  # B = 0
    assert not any(p.requires_grad for p in tiny.model.parameters())
    adapters.save_adapter(model, tmp_path / "adapter", {"label": "t", "base_model": tiny.key})
    loaded = adapters.load_adapter(tiny, tmp_path / "adapter")
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-5)


def test_last_n_trains_only_the_last_layers(tiny):
    model, trainable, total = training.trainable_model(tiny, "last_n", last_n=1)
    layers = training.decoder_layers(model)
    assert all(p.requires_grad for p in layers[-1].parameters())
    assert not any(p.requires_grad for p in layers[0].parameters())
    assert trainable < total


def test_schedule_warms_up_then_decays():
    s = training.Schedule(lr=1e-3, total_steps=100, warmup=10)
    assert s.at(5) < s.at(10) == 1e-3
    assert s.at(100) < s.at(50) < s.at(11)
