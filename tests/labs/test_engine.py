"""The batched engine: a stream in a batch answers as it would alone; each stream keeps its own settings, seed,
Stop and errors; late arrivals join at the next step; over capacity they wait with a queue position."""
import threading
import time

import pytest
import torch

from labs.serving import engine
from labs.serving import generation
from labs.serving.generation import GenerationConfig

PROMPTS = ["Hello there", "Tell me a long story about a cat who lived in Paris and liked cheese very much",
           "2+2?", "Why is the sky blue? Answer in one sentence please."]


def _alone(lm, prompt, cfg):
    return list(generation.stream_tokens(lm, generation.encode_prompt(lm, prompt, cfg.max_new_tokens), cfg,
                                         ignore_eos=True))


def _together(lm, prompts, cfgs, stagger=0.0):
    results = [None] * len(prompts)

    def work(i):
        time.sleep(stagger * i)
        results[i] = _alone(lm, prompts[i], cfgs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(prompts))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return results


def _engine(lm):
    return engine.engine_for(lm.inference_model, lm.lock)


def test_greedy_in_a_batch_equals_alone(tiny):
    cfg = GenerationConfig(max_new_tokens=24, temperature=0, repetition_penalty=1.0)
    alone = [_alone(tiny, p, cfg) for p in PROMPTS]
    steps_before = _engine(tiny).steps
    together = _together(tiny, PROMPTS, [cfg] * 4, stagger=0.02)  # arrivals at different steps: left-padded merge
    assert together == alone
    eng = _engine(tiny)
    assert eng.max_batch_seen >= 2  # they really shared forwards
    assert eng.steps - steps_before < 4 * 23  # fewer forwards than one stream at a time


def test_seeded_sampling_is_reproducible_per_stream(tiny):
    cfgs = [GenerationConfig(max_new_tokens=20, temperature=1.0, top_p=0.95, seed=s) for s in (1, 2, 3, 4)]
    alone = [_alone(tiny, "Tell me a story", c) for c in cfgs]
    together = _together(tiny, ["Tell me a story"] * 4, cfgs)
    assert together == alone
    assert len({tuple(a) for a in alone}) > 1  # different seeds, different answers


def test_one_stop_ends_only_that_stream(tiny):
    stop = threading.Event()
    cfg = GenerationConfig(max_new_tokens=40, temperature=0, repetition_penalty=1.0)
    other = []

    def work():
        other.extend(_alone(tiny, PROMPTS[1], cfg))

    t = threading.Thread(target=work)
    t.start()
    pieces = []
    for token in generation.stream_tokens(tiny, generation.encode_prompt(tiny, PROMPTS[0], 40), cfg, stop=stop,
                                          ignore_eos=True):
        pieces.append(token)
        if len(pieces) == 3:
            stop.set()
    t.join()
    assert len(pieces) <= 4
    assert other == _alone(tiny, PROMPTS[1], cfg)


def test_a_reader_that_goes_away_is_dropped(tiny):
    cfg = GenerationConfig(max_new_tokens=200, temperature=0, repetition_penalty=1.0)
    gen = generation.stream_tokens(tiny, generation.encode_prompt(tiny, "Hello", 200), cfg, ignore_eos=True)
    next(gen)
    gen.close()  # the tab was closed: Streamlit closes the generator
    eng = _engine(tiny)
    deadline = time.time() + 10
    while eng.active and time.time() < deadline:
        time.sleep(0.01)
    assert eng.active == 0


def test_over_capacity_a_stream_waits_with_its_place(tiny):
    eng = engine.Engine(tiny.model, threading.Lock(), max_streams=1)
    cfg = GenerationConfig(max_new_tokens=30, temperature=0, repetition_penalty=1.0)
    ids = generation.encode_prompt(tiny, "Hello", 30)
    first = eng.submit(engine.Request(ids, cfg, frozenset()))
    second = eng.submit(engine.Request(ids, cfg, frozenset()))
    seen = []
    for _ in first.tokens():
        seen.append(second.position)
    assert max(seen) == 1  # waited behind the first stream
    assert len(list(second.tokens())) == 30 and second.position == 0


def test_a_failing_request_fails_alone(tiny):
    eng = engine.Engine(tiny.model, threading.Lock())
    cfg = GenerationConfig(max_new_tokens=10, temperature=0, repetition_penalty=1.0)
    good = eng.submit(engine.Request(generation.encode_prompt(tiny, "Hello", 10), cfg, frozenset()))
    bad = eng.submit(engine.Request([10 ** 9], cfg, frozenset()))  # a token id outside the vocabulary
    with pytest.raises(engine.EngineError, match="failed"):
        list(bad.tokens())
    assert len(list(good.tokens())) == 10


def test_prompt_too_long_is_refused_before_the_batch(tiny):
    with pytest.raises(generation.ContextTooLong, match="reads at most"):
        generation.open_stream(tiny, "word " * 9000)
    assert _engine(tiny).active == 0


def test_sliding_window_model_batches_and_matches_alone(tiny_gemma):
    cfg = GenerationConfig(max_new_tokens=12, temperature=0, repetition_penalty=1.0)
    alone = [_alone(tiny_gemma, p, cfg) for p in PROMPTS[:3]]
    assert _together(tiny_gemma, PROMPTS[:3], [cfg] * 3, stagger=0.01) == alone


def test_open_stream_exposes_its_queue_position(tiny):
    s = generation.open_stream(tiny, "Hello", GenerationConfig(max_new_tokens=5, temperature=0))
    assert s.position in (0, 1)
    assert isinstance("".join(s), str)
    assert s.position == 0


def test_cpu_budget_splits_cores_only_while_both_are_busy(monkeypatch):
    from labs.core import compute

    monkeypatch.setattr(compute, "CORES", 2)
    monkeypatch.setattr(compute, "_busy", {"generation": 0, "training": 0})  # engines of other tests may still run
    assert compute.threads_for("generation") == 2 and compute.threads_for("training") == 2
    assert compute.threads_for("embedding") == 1
    with compute.busy("training"):
        assert compute.threads_for("generation") == 1  # the engine leaves the training run its share
        with compute.busy("generation"):
            assert compute.threads_for("training") == 1
    assert compute.threads_for("generation") == 2


def test_a_training_run_takes_its_share_while_streams_decode(tiny):
    from labs.core import compute
    from labs.runs import jobs
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Cfg:
        steps: int = 3

    seen = []

    def train(ctx):
        for step in range(1, ctx.config.steps + 1):
            ctx.log(step=step, loss=1.0)
            seen.append(torch.get_num_threads())
        return {}

    with compute.busy("generation"):
        run_id = jobs.submit(Cfg(), train, seed=123)
        run = jobs.wait(run_id, timeout=60)
    assert run.status == jobs.DONE
    assert max(seen) <= max(1, compute.CORES - compute.CORES // 2)


def test_generate_many_keeps_order_and_equals_one_at_a_time(tiny):
    cfgs = [GenerationConfig(max_new_tokens=10, temperature=0.8, seed=s) for s in range(5)]
    prompts = ["Hello", "Tell me a story", "2+2?", "Why?", "Name a colour"]
    expected = [generation.generate(tiny, p, c) for p, c in zip(prompts, cfgs)]
    assert list(generation.generate_many(tiny, prompts, cfgs, window=2)) == expected


def test_both_sides_of_a_battle_share_one_batch(tiny):
    from labs import arena

    pair = [c for c in arena.BUILT_IN if c.model_key == tiny.key][:2]
    eng = _engine(tiny)
    eng.max_batch_seen = 0
    battle = arena.start_battle("Say hello", pair[0], pair[1], lambda key: tiny, max_new_tokens=24, seed=1)
    assert battle.wait(timeout=120) and not battle.failed
    assert eng.max_batch_seen >= 2


def test_newcomers_are_prefilled_together_and_answer_as_alone(tiny):
    cfg = GenerationConfig(max_new_tokens=16, temperature=0, repetition_penalty=1.0)
    prompts = PROMPTS + ["Name a colour", "What is two plus two, written as a word?"]
    alone = [_alone(tiny, p, cfg) for p in prompts]
    eng = engine.Engine(tiny.model, threading.Lock())
    reqs = [eng.submit(engine.Request(generation.encode_prompt(tiny, p, 16), cfg, frozenset())) for p in prompts]
    assert [list(r.tokens()) for r in reqs] == alone
    assert eng.prefills < len(prompts)  # left-padded prompts shared prefill forwards


def test_an_arena_answer_shows_its_place_while_the_batch_is_full(tiny, monkeypatch):
    from labs import arena
    from labs.core import settings

    monkeypatch.setattr(settings, "max_streams", lambda: 1)
    module = tiny.model.__class__(tiny.model.config).eval()  # a fresh module: a fresh engine with one place
    module.load_state_dict(tiny.model.state_dict())
    occupy = engine.engine_for(module, tiny.lock).submit(
        engine.Request(generation.encode_prompt(tiny, "Hello", 200), GenerationConfig(max_new_tokens=200,
                       temperature=0), frozenset()))
    monkeypatch.setattr(type(tiny), "inference_model", property(lambda self: module))
    pair = [c for c in arena.BUILT_IN if c.model_key == tiny.key][:2]
    battle = arena.start_battle("Say hello", pair[0], pair[1], lambda key: tiny, max_new_tokens=8, seed=1)
    seen = set()
    deadline = time.time() + 30
    while not battle.finished and time.time() < deadline:
        seen |= {battle.snapshot()[side]["queue_position"] for side in "ab"}
        if max(seen) > 0:
            occupy.cancel()
        time.sleep(0.005)
    assert battle.wait(60) and not battle.failed
    assert max(seen) >= 1  # a place in the queue was shown while the one slot was taken


def test_a_fresh_engine_prefills_requests_queued_together_in_one_forward(tiny):
    cfg = GenerationConfig(max_new_tokens=12, temperature=0, repetition_penalty=1.0)
    alone = [_alone(tiny, p, cfg) for p in PROMPTS]
    eng = engine.Engine(tiny.model, threading.Lock())  # a new fine-tuned copy gets a fresh engine like this one
    assert eng.batchable is True  # known from the model's config, before any forward
    reqs = eng.submit_all([engine.Request(generation.encode_prompt(tiny, p, 12), cfg, frozenset()) for p in PROMPTS])
    assert [list(r.tokens()) for r in reqs] == alone
    assert eng.prefills == 1 and eng.max_batch_seen == len(PROMPTS)


class _Opaque:
    """A cache the engine cannot re-pad (not a list of key/value layers)."""

    def __init__(self, cache):
        self.cache = cache


class _OpaqueCacheModel(torch.nn.Module):
    """The tiny model behind a cache type the engine does not know, with a config that looks batchable."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.config = inner, inner.config

    def forward(self, cache=None, **kwargs):
        out = self.inner(cache=cache.cache if cache is not None else None, **kwargs)
        return type("Out", (), {"logits": out.logits, "cache": _Opaque(out.cache)})()


def test_a_wrong_guess_of_batchable_falls_back_to_one_stream_at_a_time(tiny):
    cfg = GenerationConfig(max_new_tokens=8, temperature=0, repetition_penalty=1.0)
    alone = [_alone(tiny, p, cfg) for p in PROMPTS[:3]]
    eng = engine.Engine(_OpaqueCacheModel(tiny.model), threading.Lock())
    assert eng.batchable is True  # the config's guess
    reqs = eng.submit_all([engine.Request(generation.encode_prompt(tiny, p, 8), cfg, frozenset())
                           for p in PROMPTS[:3]])
    assert [list(r.tokens()) for r in reqs] == alone  # every answer whole, in order, as alone
    assert eng.batchable is False and eng.max_batch_seen == 1


def test_the_skinny_decode_kernel_computes_the_same_linear():
    torch.manual_seed(0)
    layer = torch.nn.Linear(48, 96)
    engine.skinny_linears(layer)
    assert "forward" in vars(layer)
    for rows in (1, 2, 3, 4, 5, 16):
        x = torch.randn(rows, 1, 48)
        with torch.inference_mode():
            got = layer(x)
        want = torch.nn.functional.linear(x, layer.weight, layer.bias)
        assert got.shape == want.shape == (rows, 1, 96)
        assert torch.allclose(got, want, atol=1e-5)
    x = torch.randn(3, 48, requires_grad=True)  # training: the usual kernel, gradients flow
    layer(x).sum().backward()
    assert x.grad is not None and torch.equal(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias))


def test_a_copy_of_a_decoded_model_computes_with_its_own_weights(tiny):
    import copy

    engine.engine_for(tiny.model, tiny.lock)  # the shared model's linears take the decode kernel
    clone = copy.deepcopy(tiny.model)
    head = clone.lm_head if hasattr(clone, "lm_head") else clone.get_output_embeddings()
    assert "forward" in vars(head) and head.forward.__self__ is head  # bound to the copy, not the original
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    with torch.inference_mode():
        before = clone(input_ids=ids).logits
        for p in clone.parameters():
            p.mul_(0.5)
        after = clone(input_ids=ids).logits
        shared = tiny.model(input_ids=ids).logits
    assert not torch.allclose(before, after) and torch.allclose(before, shared)


def test_prompts_of_very_different_lengths_are_prefilled_in_groups_and_answer_as_alone(tiny):
    cfg = GenerationConfig(max_new_tokens=8, temperature=0, repetition_penalty=1.0)
    prompts = ["Name a colour", "Why is the sky blue? " * 12, "2+2?", "Tell me about cats. " * 12, "Hi"]
    alone = [_alone(tiny, p, cfg) for p in prompts]
    eng = engine.Engine(tiny.model, threading.Lock())
    ids = [generation.encode_prompt(tiny, p, 8) for p in prompts]
    reqs = eng.submit_all([engine.Request(i, cfg, frozenset()) for i in ids])
    assert [list(r.tokens()) for r in reqs] == alone
    groups = eng.scheduler.prefill_groups([len(i) for i in ids])
    assert len(groups) == 2 and eng.prefills == 2 and eng.max_batch_seen == len(prompts)  # short and long apart
