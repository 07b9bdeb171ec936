import threading

import pytest
import torch

from labs.serving import generation, sampling
from labs.serving.generation import GenerationConfig


def test_config_validation_messages():
    with pytest.raises(ValueError, match="top_p"):
        GenerationConfig(top_p=0)
    with pytest.raises(ValueError, match="temperature"):
        GenerationConfig(temperature=-1)


def test_empty_and_over_long_prompts(tiny):
    with pytest.raises(ValueError, match="empty"):
        generation.generate(tiny, "   ")
    with pytest.raises(generation.ContextTooLong, match="reads at most"):
        generation.generate(tiny, "word " * 9000)


def test_same_seed_same_text_and_greedy_matches_hf(tiny):
    cfg = GenerationConfig(max_new_tokens=12, temperature=0.9, seed=3, repetition_penalty=1.0)
    assert generation.generate(tiny, "Hello", cfg) == generation.generate(tiny, "Hello", cfg)
    greedy = GenerationConfig(max_new_tokens=10, temperature=0, repetition_penalty=1.0)
    ours = generation.generate(tiny, "Hello", greedy)
    ids = tiny.tokenizer(generation.render_prompt(tiny, "Hello"), return_tensors="pt", add_special_tokens=False)
    ref = tiny.model.generate(**ids, max_new_tokens=10, do_sample=False, eos_token_id=list(generation.eos_ids(tiny)))
    text = tiny.tokenizer.decode(ref[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert ours == text


def test_top_k_one_is_greedy():
    logits = torch.tensor([0.1, 3.0, 2.9, -1.0])
    cfg = GenerationConfig(top_k=1, temperature=1.0, repetition_penalty=1.0)
    g = torch.Generator().manual_seed(0)
    assert all(sampling.sample_next(logits.clone(), cfg, g) == 1 for _ in range(20))
    nucleus = GenerationConfig(top_k=0, top_p=0.01, temperature=1.0, repetition_penalty=1.0)
    assert all(sampling.sample_next(logits.clone(), nucleus, g) == 1 for _ in range(20))


def test_stop_event_ends_the_stream(tiny):
    stop = threading.Event()
    pieces = []
    for piece in generation.stream(tiny, "Hello", GenerationConfig(max_new_tokens=200, seed=1), stop=stop):
        pieces.append(piece)
        stop.set()
    assert len(pieces) == 1


def test_concurrent_streams_are_safe_and_match_sequential(tiny):
    cfg = GenerationConfig(max_new_tokens=16, seed=5)
    expected = generation.generate(tiny, "Tell me a story", cfg)
    results = [None] * 4

    def work(i):
        results[i] = generation.generate(tiny, "Tell me a story", cfg)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert results == [expected] * 4


@pytest.mark.slow
def test_real_smollm2_answers_a_chat_prompt_coherently(smol):
    answer = generation.generate(smol, [{"role": "user", "content": "What is the capital of France?"}],
                                 GenerationConfig(max_new_tokens=24, temperature=0))
    assert "Paris" in answer


def test_base_model_gets_plain_prompt(tiny_gemma):
    assert generation.render_prompt(tiny_gemma, "Once upon a time") == "Once upon a time"
    text = generation.render_prompt(tiny_gemma, [{"role": "user", "content": "Hi"}])
    assert text.endswith("User: Hi\nAssistant:")


@pytest.mark.slow
def test_quality_gate_picks_only_a_variant_within_two_percent(smol, tmp_path, monkeypatch):
    """The gate measures each candidate next to float32 and refuses one whose perplexity rises over +2 %."""
    from labs.models import quality
    from labs.serving import decode_gate

    monkeypatch.setattr(decode_gate, "gate_file", lambda lm: tmp_path / "gate.json")
    refused = decode_gate.choose_default(smol, ("int8_dynamic",), max_tokens=512)
    assert refused["variant"] == "float32"
    assert [r["passes"] for r in refused["rows"]] == [True, False]
    kept = decode_gate.choose_default(smol, ("bfloat16",), max_tokens=512)
    assert kept["variant"] == "bfloat16" and kept["ppl_ratio"] <= quality.GATE
    assert smol.decode == decode_gate.default_decode_variant("cpu", smol)
    prompt = [{"role": "user", "content": "What is the capital of France?"}]
    assert "Paris" in generation.generate(smol, prompt, GenerationConfig(max_new_tokens=16, temperature=0))


def test_sampling_draws_only_inside_top_k_and_the_nucleus():
    """top-k draws among the k best (sorted once by topk, not the whole vocabulary); top-p keeps the top token."""
    import torch

    from labs.serving.generation import GenerationConfig
    from labs.serving.sampling import sample_next

    logits = torch.randn(262_144, generator=torch.Generator().manual_seed(0))
    best = set(torch.topk(logits, 3).indices.tolist())
    gen = torch.Generator().manual_seed(1)
    drawn = {sample_next(logits.clone(), GenerationConfig(temperature=1.0, top_k=3, top_p=1.0), gen) for _ in range(200)}
    assert drawn <= best and len(drawn) > 1
    top = int(torch.argmax(logits))
    assert sample_next(logits.clone(), GenerationConfig(temperature=1.0, top_k=50, top_p=1e-6), gen) == top
    assert sample_next(logits.clone(), GenerationConfig(temperature=1.0, top_k=0, top_p=1e-6), gen) == top
    again = [sample_next(logits.clone(), GenerationConfig(temperature=1.0, top_k=0, top_p=0.9),
                         torch.Generator().manual_seed(7)) for _ in range(2)]
    assert again[0] == again[1]  # seeded: reproducible
