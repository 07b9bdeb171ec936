"""Endpoints from the models file against the project's own server (`python -m labs.serving.serve` on a free 127.0.0.1 port,
started here): streaming, the same answer as the local model, server down (a clear message, and the arena battle is
not recorded), timeouts, a wrong model name, an endpoint judge and generative evaluation. Loopback only."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from labs import arena
from labs.serving import endpoints as backends
from labs.evaluation import judging
from labs.serving import generation
from labs import models
from labs.arena import votes
from tests import byo


@pytest.fixture
def models_file(tmp_path, monkeypatch):
    path = tmp_path / "models.toml"
    monkeypatch.setenv("LLMLAB_MODELS_FILE", str(path))
    return path


@pytest.fixture
def silent_server():
    """A loopback socket that accepts connections and never answers: the timeout path."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held, done = [], threading.Event()

    def accept():
        sock.settimeout(0.2)
        while not done.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                pass

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    done.set()
    for c in held:
        c.close()
    sock.close()


def test_endpoint_streams_the_same_answer_as_the_local_model(server, models_file, tiny):
    byo.write_models_file(models_file, [byo.endpoint_entry(server)])
    target = backends.target_for(byo.ENDPOINT_KEY)
    assert backends.is_endpoint(target) and backends.name_of(target) == byo.ENDPOINT_NAME
    cfg = generation.GenerationConfig(max_new_tokens=12, temperature=0.8, seed=3)
    pieces = list(backends.stream(target, "Hello there", cfg))
    assert len(pieces) > 1  # streamed piece by piece, not one block
    assert "".join(pieces) == backends.generate(tiny, "Hello there", cfg)  # same tiny weights, same sampler seed
    assert backends.probe(models.spec(byo.ENDPOINT_KEY)) == ["smollm2-135m-instruct", "gemma3-270m"]


def test_stop_flag_ends_an_endpoint_stream(server, models_file):
    byo.write_models_file(models_file, [byo.endpoint_entry(server)])
    stop = threading.Event()
    got = []
    for piece in backends.stream(backends.target_for(byo.ENDPOINT_KEY), "Count",
                                 generation.GenerationConfig(max_new_tokens=60, temperature=0.0), stop=stop):
        got.append(piece)
        stop.set()
    assert len(got) == 1


def test_wrong_model_name_and_server_down_give_clear_messages(server, models_file):
    wrong = dict(byo.endpoint_entry(server, "Wrong name"), model="no-such-model")
    down = byo.endpoint_entry(f"http://127.0.0.1:{byo.free_port()}/v1", "Down")
    byo.write_models_file(models_file, [wrong, down])
    cfg = generation.GenerationConfig(max_new_tokens=4)
    with pytest.raises(models.ModelError, match="answered 400.*Unknown model 'no-such-model'"):
        backends.generate(backends.target_for("user-wrong-name"), "hi", cfg)
    with pytest.raises(models.ModelError, match="field 'model': the server serves smollm2-135m-instruct"):
        backends.probe(models.spec("user-wrong-name"))
    with pytest.raises(models.ModelError, match=r"Down: could not reach the server .*entry 2 \('Down'\), field "
                                                r"'base_url'.*Is it running"):
        backends.generate(backends.target_for("user-down"), "hi", cfg)


def test_a_silent_server_times_out_with_the_field_named(silent_server, models_file):
    byo.write_models_file(models_file, [byo.endpoint_entry(silent_server, "Silent", timeout=1)])
    t0 = time.perf_counter()
    with pytest.raises(models.ModelError, match=r"did not answer within 1 s .*field 'timeout'"):
        backends.generate(backends.target_for("user-silent"), "hi", generation.GenerationConfig(max_new_tokens=4))
    assert time.perf_counter() - t0 < 10


def test_missing_api_key_variable_is_named(server, models_file, monkeypatch):
    monkeypatch.delenv("LLMLAB_TEST_NO_SUCH_KEY", raising=False)
    byo.write_models_file(models_file, [dict(byo.endpoint_entry(server), api_key_env="LLMLAB_TEST_NO_SUCH_KEY")])
    with pytest.raises(models.ModelError, match="field 'api_key_env' names LLMLAB_TEST_NO_SUCH_KEY, which is not set"):
        backends.generate(backends.target_for(byo.ENDPOINT_KEY), "hi", generation.GenerationConfig(max_new_tokens=4))


def test_arena_battle_with_an_endpoint_and_a_down_server(server, models_file, tmp_path, tiny):
    down = byo.endpoint_entry(f"http://127.0.0.1:{byo.free_port()}/v1", "Down")
    byo.write_models_file(models_file, [byo.endpoint_entry(server), down])
    by_name = {c.name: c for c in arena.contenders(include_adapters=False)}
    assert {byo.ENDPOINT_NAME, "Down"} <= set(by_name)
    load = lambda key: backends.target_for(key, lambda k: tiny)  # noqa: E731
    store = votes.VoteStore(f"sqlite:///{tmp_path / 'votes.sqlite'}")
    smol = by_name["SmolLM2-135M · greedy"]

    ok = arena.start_battle("Say hi", smol, by_name[byo.ENDPOINT_NAME], load, max_new_tokens=16, seed=1)
    assert ok.wait(60) and not ok.failed and ok.b.text.strip()
    ok.vote(store, "ada", "a")
    assert len(store.votes()) == 1

    bad = arena.start_battle("Say hi", smol, by_name["Down"], load, max_new_tokens=16, seed=1)
    assert bad.wait(60) and bad.failed
    assert "could not reach the server" in bad.b.error
    with pytest.raises(votes.VoteRejected, match="failed"):
        bad.vote(store, "ada", "a")
    assert len(store.votes()) == 1  # the failed battle is not recorded


def test_endpoint_judge_and_generative_eval(server, models_file):
    byo.write_models_file(models_file, [byo.endpoint_entry(server)])
    judge = backends.target_for(byo.ENDPOINT_KEY)
    verdict = judging.judge_pair(judge, "What is 2+2?", "4", "5")
    assert verdict["pick_ab"] in (0, 1, 2) and verdict["pick_ba"] in (0, 1, 2)
    assert verdict["verdict"] == judging.combine_orders(verdict["pick_ab"], verdict["pick_ba"])
    assert judging.combine_orders(0, 1) == "tie"
    cfg = generation.GenerationConfig(max_new_tokens=6, temperature=0.0)
    answers = list(backends.generate_many(judge, ["Hi", "Bye"], cfg))
    assert answers == [backends.generate(judge, "Hi", cfg), backends.generate(judge, "Bye", cfg)]
    with pytest.raises(models.ModelError, match="cannot be scored by log-likelihood|cannot be given an adapter"):
        backends.stream(judge, "hi", cfg, model=object()).__next__()


def test_log_likelihood_work_refuses_an_endpoint(models_file):
    byo.write_models_file(models_file, [byo.endpoint_entry("http://127.0.0.1:9/v1")])
    target = backends.target_for(byo.ENDPOINT_KEY)
    from labs.rag import generate

    with pytest.raises(models.ModelError, match="cannot be used to re-rank.*need the weights on this machine"):
        generate.llm_relevance(target, "q", "passage")


def test_plain_endpoint_gets_text_on_completions_like_a_local_base_model(server, models_file, tiny_gemma):
    """A base model behind an endpoint ("prompt_format": "plain") is sent the text a local base model reads, on
    /v1/completions (a chat template it does not have is never asked for): the same answer as the local model."""
    entry = dict(byo.endpoint_entry(server, name="Gemma base over HTTP"), model="gemma3-270m", prompt_format="plain")
    byo.write_models_file(models_file, [entry])
    key = next(s.key for s in models.causal_models(endpoints=True) if s.display_name == "Gemma base over HTTP")
    target = backends.target_for(key)
    cfg = generation.GenerationConfig(max_new_tokens=10, temperature=0.8, seed=5)
    text = "The capital of France is"
    pieces = list(backends.stream(target, text, cfg))
    assert pieces and "".join(pieces) == backends.generate(tiny_gemma, text, cfg)  # continued as written
    messages = [{"role": "user", "content": "Name a colour."}]
    assert generation.plain_text(messages) == "User: Name a colour.\nAssistant:"
    assert backends.generate(target, messages, cfg) == backends.generate(tiny_gemma, messages, cfg)


def test_completions_route_refuses_bad_prompts(server):
    import httpx

    url = server.rstrip("/") + "/completions"
    assert server.startswith("http://127.0.0.1:")  # loopback only
    for body in ({"model": "gemma3-270m"}, {"model": "gemma3-270m", "prompt": "  "},
                 {"model": "gemma3-270m", "prompt": ["a", "b"]}):
        r = httpx.post(url, json=body, timeout=30)
        assert r.status_code == 400 and "prompt" in r.json()["error"]["message"]
    r = httpx.post(url, json={"model": "gemma3-270m", "prompt": "Once upon a time", "max_tokens": 5, "seed": 1},
                   timeout=60)
    assert r.status_code == 200 and r.json()["object"] == "text_completion" and r.json()["usage"]["prompt_tokens"] > 0
