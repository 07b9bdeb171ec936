"""Model benchmarks, side by side in one run; prints JSON (and writes bench/results/models.json).

    .venv/bin/python -m bench.bench_models [--quick] [--tokens 64] [--repeats 3]

1. load: first GGUF load (dequantising in transformers) vs the cached safetensors load (skipped by --quick).
2. decode: one stream — plain `model.generate` in float32 (the baseline) next to the torch engine with each decode
   variant and the OpenVINO runtime with each candidate (weights / precision), each with its quality: perplexity
   on standard-library docstrings and greedy agreement with float32 torch (labs.models.quality). A path may be the
   default only within +2 % perplexity.
3. concurrency: aggregate tokens/s of 1, 4, 16 and 32 concurrent streams through the torch engine (float32) and
   the runtime, and whether every stream's greedy answer in the batch equals its answer alone.
4. transformers' own continuous batching (`model.generate_batch`, paged KV cache) on the same 16 prompts (full run).
Measure with nothing else heavy running: two cores are shared by everything.
"""
from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

import torch

from bench import save
from labs.serving import engine
from labs.serving import generation
from labs.core import hardware
from labs import models
from labs.models import quality
from labs.serving.generation import GenerationConfig
from labs.serving.runtimes import export
from labs.serving.runtimes import gate as runtime_gate

PROMPT = [{"role": "user", "content": "Write a short paragraph about why the ocean is salty."}]
PROMPTS = ["Write a short paragraph about why the ocean is salty.", "What is the capital of France?",
           "Give me three tips for studying.", "Explain photosynthesis simply.", "What is a prime number?",
           "Describe a cat in two sentences.", "Why do we sleep?", "How does a bicycle stay upright?"]
KEY = models.DEFAULT_CHAT_MODEL


def _median(xs):
    return round(statistics.median(xs), 4)


def bench_load(repeats: int) -> dict:
    from transformers import AutoModelForCausalLM

    gguf = models.source_path(KEY)
    t0 = time.perf_counter()
    AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    first = time.perf_counter() - t0
    models.ensure_cached(KEY)
    cached = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        models.load_model(KEY, device="cpu", dtype=torch.float32)
        cached.append(time.perf_counter() - t0)
    return {"gguf_first_load_s": round(first, 2), "cached_load_s": _median(cached),
            "speedup": round(first / statistics.median(cached), 1), "goal_cached_s": 2.0}


def _ids(lm, prompt, tokens):
    return generation.encode_prompt(lm, [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt,
                                    tokens)


def _torch_submit(lm, model):
    return lambda ids, cfg: generation.submit_ids(lm, ids, cfg, model=model, ignore_eos=True)


def _runtime_submit(eng):
    return lambda ids, cfg: eng.submit(engine.Request(list(ids), cfg, frozenset()))


def _label(c) -> str:
    return "_".join(c).replace("_float", "").replace("_int8", "_int8act").join(("openvino_", ""))


def time_stream(lm, submit, tokens: int) -> tuple[float, float]:
    """(time to first token, decode tokens/s after it) of one greedy stream."""
    cfg = GenerationConfig(max_new_tokens=tokens, temperature=0, repetition_penalty=1.0)
    t0, first, n = time.perf_counter(), None, 0
    for n, _ in enumerate(submit(_ids(lm, PROMPT, tokens), cfg).tokens(), start=1):
        if first is None:
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    return first, (n - 1) / max(total - first, 1e-9)


def _speed_and_quality(lm, submit, tokens, repeats, ppl, base_ppl, agreement) -> dict:
    time_stream(lm, submit, 4)  # warm-up
    ttfts, tps = zip(*(time_stream(lm, submit, tokens) for _ in range(repeats)))
    return {"ttft_s": _median(ttfts), "tokens_per_s": _median(tps), "perplexity": round(ppl, 3),
            "ppl_ratio": round(ppl / base_ppl, 4), "greedy_agreement_vs_float32": agreement,
            "passes_gate": ppl / base_ppl <= quality.GATE}


def bench_decode(lm, tokens: int, repeats: int, variants: tuple[str, ...], candidates, ppl_tokens: int) -> dict:
    """One stream: plain generate (baseline), the torch engine per decode variant, the runtime per candidate;
    each with its perplexity ratio and greedy agreement next to float32 torch."""
    ids = torch.tensor([_ids(lm, PROMPT, tokens)])
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens,
                                min_new_tokens=tokens, do_sample=False)
        runs.append((out.shape[1] - ids.shape[1]) / (time.perf_counter() - t0))
    results = {"hf_generate_float32": {"tokens_per_s": _median(runs)}}
    text = quality.reference_text()
    base_ppl = quality.perplexity(lm.tokenizer, lm.model, text, ppl_tokens)
    prompts = [generation.encode_prompt(lm, p, 16) for p in quality.AGREEMENT_PROMPTS]
    reference = runtime_gate.greedy(engine.engine_for(lm.model, lm.lock), prompts)
    for name in variants:
        model = models.decode_variant(lm, name)
        ppl = quality.perplexity(lm.tokenizer, model, text, ppl_tokens)
        agree = sum(a == b for a, b in zip(runtime_gate.greedy(engine.engine_for(model, lm.lock), prompts),
                                           reference)) / len(prompts)
        results[f"engine_{name}"] = _speed_and_quality(lm, _torch_submit(lm, model), tokens, repeats, ppl, base_ppl,
                                                       agree)
    for c, eng in candidates:
        ppl = runtime_gate.perplexity(export.export_dir(lm.key, c.weights), c.precision, lm.tokenizer, text,
                                      ppl_tokens, activations=c.activations)
        agree = sum(a == b for a, b in zip(runtime_gate.greedy(eng, prompts), reference)) / len(prompts)
        results[_label(c)] = _speed_and_quality(lm, _runtime_submit(eng), tokens, repeats, ppl, base_ppl, agree)
    base = results["hf_generate_float32"]["tokens_per_s"]
    for row in results.values():
        row["speedup_vs_hf_float32"] = round(row["tokens_per_s"] / base, 2)
    return results


def bench_concurrency(lm, submit, tokens: int, counts=(1, 4, 16, 32)) -> dict:
    """Aggregate tokens/s of 1..32 concurrent greedy streams, and how many answer in the batch as alone."""
    cfg = GenerationConfig(max_new_tokens=tokens, temperature=0, repetition_penalty=1.0)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(max(counts))]
    alone = {p: list(submit(_ids(lm, p, tokens), cfg).tokens()) for p in dict.fromkeys(prompts)}
    out = {}
    for n in counts:
        results, firsts = [None] * n, [None] * n

        def one(i, t0):
            tokens_i = []
            for tok in submit(_ids(lm, prompts[i], tokens), cfg).tokens():
                if not tokens_i:
                    firsts[i] = time.perf_counter() - t0
                tokens_i.append(tok)
            results[i] = tokens_i

        t0 = time.perf_counter()
        threads = [threading.Thread(target=one, args=(i, t0)) for i in range(n)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        elapsed = time.perf_counter() - t0
        same = sum(results[i] == alone[prompts[i]] for i in range(n))
        out[f"{n}_streams"] = {"aggregate_tokens_per_s": round(sum(map(len, results)) / elapsed, 2),
                               "wall_s": round(elapsed, 2), "ttft_max_s": round(max(firsts), 3),
                               "greedy_same_as_alone": f"{same}/{n}"}
    one_rate = out["1_streams"]["aggregate_tokens_per_s"]
    for n in counts[1:]:
        out[f"ratio_{n}_vs_1"] = round(out[f"{n}_streams"]["aggregate_tokens_per_s"] / one_rate, 2)
    return out


def bench_hf_continuous_batching(lm, tokens: int, n: int = 16) -> dict:
    """transformers' continuous batching (paged KV cache) on the same prompts, float32, greedy."""
    from transformers import GenerationConfig as HFConfig

    inputs = [_ids(lm, PROMPTS[i % len(PROMPTS)], tokens) for i in range(n)]
    config = HFConfig(max_new_tokens=tokens, do_sample=False, eos_token_id=-1, pad_token_id=0)
    try:
        t0 = time.perf_counter()
        outputs = lm.model.generate_batch(inputs, config, warmup=False)
        elapsed = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    produced = sum(len(getattr(o, "generated_tokens", []) or []) for o in outputs.values())
    return {"streams": n, "aggregate_tokens_per_s": round(produced / elapsed, 2), "wall_s": round(elapsed, 2),
            "tokens": produced}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="under 3 minutes: no load timing, fewer tokens, "
                        "the torch float32 engine and the runtime's default only")
    parser.add_argument("--tokens", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    tokens = args.tokens or (32 if args.quick else 64)
    repeats = args.repeats or (1 if args.quick else 3)
    variants = ("float32",) if args.quick else models.DECODE_VARIANTS
    report = {"machine": {"threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                          "bandwidth_gbs": round(hardware.memory_bandwidth_gbs(), 2)},
              "new_tokens": tokens, "quick": args.quick}
    if not args.quick:
        report["load"] = bench_load(repeats)
    lm = models.load_model(KEY, device="cpu", dtype=torch.float32)
    t0 = time.perf_counter()
    runtime_gate.serve(lm)  # the default: what the app serves with (the gate's verdict, measured once)
    report["runtime_start_s"] = round(time.perf_counter() - t0, 2)
    report["default_runtime"] = lm.runtime_note
    verdict = json.loads(runtime_gate.gate_path(lm).read_text()) if runtime_gate.gate_path(lm).exists() else {}
    chosen = runtime_gate.Candidate(*verdict["chosen"]) if verdict.get("chosen") else None
    candidates = []
    for c in runtime_gate.CANDIDATES:
        if args.quick and c != chosen:
            continue
        if c == chosen and lm.runtime is not None:
            eng = lm.runtime
        else:
            eng = runtime_gate.start(export.export(lm.key, lm.model, c.weights), c, lambda: None)
        candidates.append((c, eng))
    report["decode"] = bench_decode(lm, tokens, repeats, variants, candidates, 512 if args.quick else 2048)
    report["concurrency"] = {"torch_float32": bench_concurrency(lm, _torch_submit(lm, lm.model), tokens)}
    for c, eng in candidates:
        report["concurrency"][_label(c)] = bench_concurrency(lm, _runtime_submit(eng), tokens)
    if not args.quick:
        report["hf_continuous_batching_16"] = bench_hf_continuous_batching(lm, tokens)
    default = _label(chosen) if chosen and lm.runtime is not None else "torch_float32"
    decode_row = report["decode"].get(default if default != "torch_float32" else "engine_float32", {})
    report["default"] = default
    report["default_ppl_ratio"] = decode_row.get("ppl_ratio", 1.0)
    report["default_greedy_agreement_vs_float32"] = decode_row.get("greedy_agreement_vs_float32")
    report["ratio_16_vs_1"] = report["concurrency"][default]["ratio_16_vs_1"]
    report["default_single_stream_speedup_vs_hf_float32"] = decode_row.get("speedup_vs_hf_float32")
    base = report["decode"]["hf_generate_float32"]["tokens_per_s"]
    report["aggregate_16_vs_hf_float32"] = round(
        report["concurrency"][default]["16_streams"]["aggregate_tokens_per_s"] / base, 2)
    for _, eng in candidates:
        if eng is not lm.runtime:
            eng.close()
    save("models_quick" if args.quick else "models", report)
    return report


if __name__ == "__main__":
    main()
