"""The fast runtime (labs.serving.runtimes): the export carries our float32 weights exactly, and the OpenVINO engine keeps
the torch engine's contract: per-stream settings and seeds, Stop, queue place, finish reasons, a failure ends only
its own stream, and a runtime that dies hands its waiting streams to torch."""
import os
from pathlib import Path
import signal
import threading
import time

import gguf
import numpy as np
import pytest

from labs.serving import engine
from labs.serving import generation
from labs import models
from labs.serving.generation import GenerationConfig
from labs.serving.runtimes import export, gate
from labs.serving.runtimes.engine import RuntimeEngine

pytest.importorskip("openvino_genai")
GREEDY = GenerationConfig(max_new_tokens=12, temperature=0, repetition_penalty=1.0)


@pytest.fixture(scope="module")
def folder(tiny):
    """The tiny model exported with F16 weights (float32 arithmetic)."""
    return export.export(tiny.key, tiny.model, "f16", f"tiny-{export.fingerprint(tiny.model)}")


@pytest.fixture()
def runtime(tiny, folder):
    eng = RuntimeEngine(folder, gate.properties("f32"), lambda: engine.engine_for(tiny.model, tiny.lock), "test")
    yield eng
    eng.close()


def _request(tiny, prompt, config=GREEDY, stop=None, eos=False):
    ids = generation.encode_prompt(tiny, prompt, config.max_new_tokens)
    return engine.Request(ids, config, frozenset(generation.eos_ids(tiny)) if eos else frozenset(), stop)


@pytest.mark.slow
def test_gguf_tensors_are_the_source_files_values(smol):
    """Our HF -> GGUF names and q/k row order give back exactly the packaged file's (dequantised) tensors."""
    mine = export.gguf_tensors(smol.model)
    reader = gguf.GGUFReader(models.source_path(smol.key))
    source = {t.name: gguf.quants.dequantize(t.data, t.tensor_type) for t in reader.tensors}
    assert set(mine) == set(source)
    for name in ("blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.3.ffn_down.weight", "token_embd.weight"):
        assert np.array_equal(mine[name], source[name].reshape(mine[name].shape)), name


def test_export_is_complete_and_rebuilt_when_cut_short(tiny, folder):
    assert export.is_complete(folder)
    before = (folder / "openvino_model.bin").stat().st_size
    with open(folder / "openvino_model.bin", "r+b") as f:
        f.truncate(before // 2)  # an export cut short
    assert not export.is_complete(folder)
    again = export.export(tiny.key, tiny.model, "f16", folder.name.split("f16-", 1)[1])
    assert again == folder and export.is_complete(folder)
    assert (folder / "openvino_model.bin").stat().st_size == before


def test_export_of_an_unsupported_architecture_is_refused(tiny_gemma):
    with pytest.raises(export.ExportUnsupported, match="gemma3"):
        export.export(tiny_gemma.key, tiny_gemma.model, "f16", "tiny-refused")


def test_runtime_perplexity_matches_torch(tiny, folder):
    from labs.models import quality

    text = quality.reference_text(6000)
    ours = quality.perplexity(tiny.tokenizer, tiny.model, text, 512)
    theirs = gate.perplexity(folder, "f32", tiny.tokenizer, text, 512)
    assert abs(theirs / ours - 1) < 0.01  # F16 weights, float32 arithmetic


def test_streams_keep_their_own_settings_and_finish_reasons(tiny, runtime):
    short = runtime.submit(_request(tiny, "Hello there", GenerationConfig(max_new_tokens=3, temperature=0)))
    longer = runtime.submit(_request(tiny, "Why is the sky blue?", GenerationConfig(max_new_tokens=9, temperature=0)))
    assert len(list(short.tokens())) == 3 and short.finish_reason == "length"
    assert len(list(longer.tokens())) == 9 and longer.finish_reason == "length"
    assert short.first_token_s is not None


def test_end_of_sequence_ends_the_stream(tiny, runtime):
    first = list(runtime.submit(_request(tiny, "Hello there")).tokens())[0]
    request = engine.Request(_request(tiny, "Hello there").ids, GREEDY, frozenset({first}))
    assert list(runtime.submit(request).tokens()) == [] and request.finish_reason == "stop"


def test_seeded_sampling_is_reproducible_alone_and_in_a_batch(tiny, runtime):
    configs = [GenerationConfig(max_new_tokens=10, temperature=1.0, top_p=0.95, seed=s) for s in (1, 2, 3)]
    alone = [list(runtime.submit(_request(tiny, "Tell me a story", c)).tokens()) for c in configs]
    requests = [runtime.submit(_request(tiny, "Tell me a story", c)) for c in configs]
    assert [list(r.tokens()) for r in requests] == alone
    assert len({tuple(a) for a in alone}) > 1


def test_stop_ends_only_that_stream(tiny, runtime):
    stop = threading.Event()
    long = GenerationConfig(max_new_tokens=400, temperature=0, repetition_penalty=1.0)
    stopped = runtime.submit(_request(tiny, "Tell me a story", long, stop=stop))
    other = runtime.submit(_request(tiny, "Hello there", GenerationConfig(max_new_tokens=20, temperature=0)))
    tokens = stopped.tokens()
    next(tokens)
    stop.set()
    assert len(list(tokens)) < 400
    assert len(list(other.tokens())) == 20
    deadline = time.monotonic() + 5
    while runtime.active and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runtime.active == 0 and stopped.finish_reason == "cancelled"


def test_over_capacity_requests_wait_with_their_place(tiny, folder):
    eng = RuntimeEngine(folder, gate.properties("f32"), lambda: None, "one at a time", max_streams=1)
    try:
        first = eng.submit(_request(tiny, "Hello there", GenerationConfig(max_new_tokens=3000, temperature=0)))
        second = eng.submit(_request(tiny, "Hello again", GenerationConfig(max_new_tokens=60, temperature=0)))
        assert eng.queue_position(second) == 1
        places = []
        assert len(list(second.tokens(on_wait=places.append))) == 60
        assert places and places[0] == 1
        assert first.finish_reason == "length" and second.position == 0
    finally:
        eng.close()


def test_a_bad_request_fails_alone(tiny, runtime):
    good = runtime.submit(_request(tiny, "Hello there"))
    bad = runtime.submit(engine.Request([], GREEDY, frozenset()))  # an empty prompt
    with pytest.raises(engine.EngineError):
        list(bad.tokens())
    assert len(list(good.tokens())) == GREEDY.max_new_tokens
    assert runtime.alive


def test_a_killed_runtime_fails_its_streams_and_hands_the_rest_to_torch(tiny, folder):
    eng = RuntimeEngine(folder, gate.properties("f32"), lambda: engine.engine_for(tiny.model, tiny.lock), "killed",
                        max_streams=1)
    long = GenerationConfig(max_new_tokens=2000, temperature=0, repetition_penalty=1.0)
    writing = eng.submit(_request(tiny, "Tell me a story", long))
    waiting = eng.submit(_request(tiny, "Hello there"))
    tokens = writing.tokens()
    next(tokens)
    os.kill(eng._proc.pid, signal.SIGKILL)
    with pytest.raises(engine.EngineError, match="Retry"):
        list(tokens)
    assert len(list(waiting.tokens())) == GREEDY.max_new_tokens  # finished by the torch engine
    assert not eng.alive and "ended" in eng.failure
    later = eng.submit(_request(tiny, "Hi"))
    assert later.engine is not eng and len(list(later.tokens())) == GREEDY.max_new_tokens


def test_serve_keeps_torch_where_asked_or_where_the_model_cannot_run(tiny, tiny_gemma, monkeypatch):
    monkeypatch.setenv("LLMLAB_RUNTIME", "torch")
    assert gate.serve(tiny).runtime is None and "LLMLAB_RUNTIME=torch" in tiny.runtime_note
    monkeypatch.setenv("LLMLAB_RUNTIME", "auto")
    assert gate.serve(tiny).runtime is None and "tiny" in tiny.runtime_note
    monkeypatch.setenv("LLMLAB_RUNTIME", "openvino")
    assert gate.serve(tiny_gemma).runtime is None and "gemma3" in tiny_gemma.runtime_note
    text = generation.generate(tiny_gemma, "Hello", GenerationConfig(max_new_tokens=4, temperature=0))
    assert isinstance(text, str)  # still answered, by torch


def test_serve_puts_the_runtime_under_generation(tiny, monkeypatch):
    monkeypatch.setenv("LLMLAB_RUNTIME", "openvino")
    lm = models.tiny_model(tiny.key, seed=3)
    gate.serve(lm)
    try:
        assert lm.runtime is not None and lm.runtime.alive, lm.runtime_note
        verdict = __import__("json").loads(gate.gate_path(lm).read_text())
        assert verdict["chosen"] and verdict["rows"][-1]["ppl_ratio"] <= 1.02
        stream = generation.open_stream(lm, "Hello there", GenerationConfig(max_new_tokens=5, temperature=0))
        assert stream.request.engine is lm.runtime
        assert len(list(stream.request.tokens())) == 5
    finally:
        if lm.runtime is not None:
            lm.runtime.close()


def test_an_adapter_is_merged_exported_once_and_served_by_the_runtime(tiny, tmp_path, monkeypatch):
    """A class adapter: the first request is answered by torch while the merged copy is exported in the background;
    then the runtime serves it, with the adapter's effect (its perplexity is the PEFT model's, not the base's)."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    from labs.models import adapters
    from labs.models import quality

    monkeypatch.setenv("LLMLAB_RUNTIME", "openvino")
    lm = models.tiny_model(tiny.key, seed=5)
    gate.serve(lm)
    peft = get_peft_model(copy.deepcopy(lm.model), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(0)
    for name, p in peft.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.5)  # a trained adapter is not the identity
    path = adapters.save_adapter(peft, tmp_path / "adapter", {"label": "test", "base_model": lm.key})
    fallback = lambda: engine.engine_for(adapters.load_adapter(lm, path), lm.lock)  # noqa: E731
    try:
        fast, why = gate.adapter_engine(lm, path, adapters.load_adapter, fallback)
        assert fast is None and "being prepared" in why
        deadline = time.monotonic() + 120
        while fast is None and time.monotonic() < deadline:
            time.sleep(0.5)
            fast, why = gate.adapter_engine(lm, path, adapters.load_adapter, fallback)
        assert fast is not None and fast is not lm.runtime, why
        text = quality.reference_text(6000)
        with_adapter = quality.perplexity(lm.tokenizer, adapters.load_adapter(lm, path), text, 512)
        base = quality.perplexity(lm.tokenizer, lm.model, text, 512)
        served = gate.perplexity(Path(fast.folder), fast.choice.precision, lm.tokenizer, text, 512,
                                 activations=fast.choice.activations)
        assert abs(served / with_adapter - 1) < 0.02 < abs(base / with_adapter - 1)
        assert len(list(fast.submit(_request(lm, "Hello there")).tokens())) == GREEDY.max_new_tokens
    finally:
        for eng in [e for e in gate._adapters.values() if isinstance(e, RuntimeEngine)] + [lm.runtime]:
            if eng is not None:
                eng.close()
        gate._adapters.clear()
