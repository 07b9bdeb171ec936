"""Class load: N simulated students chat, battle in the arena and vote, while one fine-tuning run trains.

    .venv/bin/python -m bench.bench_classroom [--students 30] [--rounds 2] [--tokens 48] [--tiny]

Each student has a session id and a client address of its own and drives the same labs functions the pages call:
a Home chat is `generation.open_stream`, a battle is `arena.start_battle` (both answers decode in the model's one
batch) followed by `Battle.vote` into the SQLAlchemy vote store. Students arrive spread over the first two seconds.
A LoRA fine-tuning run (the Fine-tuning page's defaults, shortened) is timed alone first, then again during the
class. Prints JSON and writes bench/results/classroom.json. Run it with nothing else heavy on the machine.

Goals (issue 21): time to first token p95 <= 1 s, answer p95 <= 6 s at 48 tokens, votes recorded = votes cast
(only this run's voters are counted), 0 errors, training step time <= 2x its time alone. The 10-browser run is
bench.bench_browser_class.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

PROMPTS = ["Explain why the sky is blue in two sentences.", "Give me three tips for studying.",
           "What is a prime number?", "Write a haiku about autumn.", "Why do we sleep?",
           "How does a bicycle stay upright?", "Name three uses of a hash table.", "What is photosynthesis?"]


def _pct(values, q):
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))], 3)


def _step_times(run, window: tuple[float, float] | None = None) -> list[float]:
    """Seconds between consecutive training steps (from the run's logged times), optionally only for steps that
    ended inside a wall-clock window."""
    times = [run.started + m["time"] for m in run.metrics if "train_loss" in m or "loss" in m]
    pairs = [(a, b) for a, b in zip(times, times[1:]) if b > a]
    if window is not None:
        pairs = [(a, b) for a, b in pairs if window[0] <= a and b <= window[1]]
    return [b - a for a, b in pairs]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2, help="chats or battles per student (alternating)")
    parser.add_argument("--tokens", type=int, default=48, help="new tokens per answer")
    parser.add_argument("--train-examples", type=int, default=32)
    parser.add_argument("--tiny", action="store_true", help="tiny random models (a smoke run, not a measurement)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "classroom.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("LLMLAB_HOME", tempfile.mkdtemp(prefix="llmlab-classroom-"))
    if args.tiny:
        os.environ["LLMLAB_TINY_MODELS"] = "1"
    os.environ.setdefault("LLMLAB_RUNS_PER_SESSION", "0")

    import uuid

    from labs import arena
    from labs.serving import engine
    from labs.serving import generation
    from labs.runs import jobs
    from labs import models
    from labs.finetune import sft
    from labs.arena import votes
    from labs.serving.generation import GenerationConfig
    from labs.serving.runtimes import gate

    key = models.DEFAULT_CHAT_MODEL
    lm = gate.serve(models.load_model(key))  # the runtime the app serves with (the fast one where it passes)
    store = votes.open_store()
    run_tag = uuid.uuid4().hex[:8]  # this run's voters: a store may already hold other votes (LLMLAB_HOME)
    # the two SmolLM2 contenders: the same model, so both answers of a battle share one batch
    pair = [c for c in arena.BUILT_IN if c.model_key == key][:2]

    def training_run(seed: int) -> str:
        cfg = sft.SFTConfig(n_examples=args.train_examples, epochs=1, score_examples=0, eval_every=1000,
                            val_examples=4, seed=seed)
        return jobs.submit(cfg, lambda ctx: sft.train(ctx, lm=lm), owner=f"instructor-{seed}", label="SFT (bench)")

    t0 = time.perf_counter()
    alone = jobs.wait(training_run(1), timeout=1800)
    alone_steps = _step_times(alone)
    alone_s = time.perf_counter() - t0

    ttft, answer_s, tokens, errors = [], [], [0], []
    cast, lock = [0], threading.Lock()

    def student(i: int) -> None:
        rng = random.Random(i)
        time.sleep(rng.uniform(0, 2))  # students do not all click in the same millisecond
        for r in range(args.rounds):
            prompt = PROMPTS[(i + r) % len(PROMPTS)]
            started = time.perf_counter()
            try:
                if (i + r) % 2 == 0:  # a Home chat
                    stream = generation.open_stream(lm, [{"role": "user", "content": prompt}],
                                                    GenerationConfig(max_new_tokens=args.tokens, seed=i * 100 + r))
                    first = None
                    for _ in stream:
                        first = first or time.perf_counter() - started
                    with lock:
                        ttft.append(first or time.perf_counter() - started)
                        answer_s.append(time.perf_counter() - started)
                        tokens[0] += len(stream.request.generated)
                else:  # an arena battle, then a vote
                    battle = arena.start_battle(prompt, pair[0], pair[1], lambda k: lm, max_new_tokens=args.tokens,
                                                seed=i * 100 + r)
                    if not battle.wait(timeout=900):
                        raise TimeoutError("the battle did not finish in 15 minutes")
                    if battle.failed:
                        raise RuntimeError(battle.a.error or battle.b.error)
                    firsts = [a.first_token_s for a in (battle.a, battle.b) if a.first_token_s is not None]
                    with lock:
                        ttft.append(min(firsts) if firsts else time.perf_counter() - started)
                        answer_s.append(time.perf_counter() - started)
                        tokens[0] += sum(len(lm.tokenizer(a.text, add_special_tokens=False)["input_ids"])
                                         for a in (battle.a, battle.b))
                        cast[0] += 1
                    battle.vote(store, f"bench-{run_tag}-student-{i}", rng.choice(["a", "b", "tie"]), client=f"client-{i}")
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(f"student {i} round {r}: {type(exc).__name__}: {exc}")

    during_id = training_run(2)
    while jobs.get(during_id).status == jobs.QUEUED:
        time.sleep(0.05)
    threads = [threading.Thread(target=student, args=(i,)) for i in range(args.students)]
    class_start, wall_start = time.perf_counter(), time.time()
    [t.start() for t in threads]
    [t.join() for t in threads]
    class_s = time.perf_counter() - class_start
    during = jobs.get(during_id)
    during_steps = _step_times(during, (wall_start, time.time()))
    jobs.stop(during_id)
    jobs.wait(during_id, timeout=600)
    eng = lm.runtime or engine.engine_for(lm.inference_model, lm.lock)
    recorded = sum(store.count(voter_id=f"bench-{run_tag}-student-{i}") for i in range(args.students))
    step_alone = statistics.median(alone_steps) if alone_steps else None
    step_during = statistics.median(during_steps) if during_steps else None
    report = {
        "students": args.students, "rounds": args.rounds, "new_tokens": args.tokens, "tiny_models": args.tiny,
        "runtime": lm.runtime_note, "decode_variant": lm.decode, "class_wall_s": round(class_s, 2),
        "aggregate_tokens_per_s": round(tokens[0] / class_s, 2),
        "ttft_p50_s": _pct(ttft, 50), "ttft_p95_s": _pct(ttft, 95), "answer_p95_s": _pct(answer_s, 95),
        "votes_cast": cast[0], "votes_recorded": recorded, "errors": len(errors), "error_examples": errors[:5],
        "largest_batch": eng.max_batch_seen,
        "training": {"step_s_alone": round(step_alone, 3) if step_alone else None,
                     "step_s_during_class": round(step_during, 3) if step_during else None,
                     "slowdown": round(step_during / step_alone, 2) if step_alone and step_during else None,
                     "steps_during_class": len(during_steps), "alone_run_s": round(alone_s, 1)},
    }
    report["goals"] = {
        "ttft_p95_le_1s": report["ttft_p95_s"] is not None and report["ttft_p95_s"] <= 1.0,
        "answer_p95_le_6s": report["answer_p95_s"] is not None and report["answer_p95_s"] <= 6.0,
        "votes_recorded_eq_cast": recorded == cast[0], "zero_errors": not errors,
        "training_slowdown_le_2x": bool(report["training"]["slowdown"] and report["training"]["slowdown"] <= 2.0)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
