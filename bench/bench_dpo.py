"""DPO step vs SFT step on SmolLM2 + LoRA: tokens/s, and why DPO is slower per token. Prints JSON, writes
bench/results/dpo.json.

    .venv/bin/python -m bench.bench_dpo [--pairs 2] [--repeats 3] [--threads 2]

Both steps see the same bundled preference pairs. The SFT step trains on the chosen answers (B sequences,
forward + backward). The DPO step runs chosen and rejected (2B sequences) forward + backward through the
policy AND forward through the reference (the same weights with the LoRA adapter disabled). Counting the
tokens in the batch, a DPO token costs one extra no-grad forward pass on top of the SFT work, so DPO's
tokens/s should be about (fwd + bwd) / (fwd + bwd + fwd) of SFT's, ~2/3 to 3/4; per *pair*, DPO does
twice the sequences, so a step is ~2.7-3x an SFT step on the same B. CPU seconds (process time) are reported
next to wall seconds because wall time on a shared machine mostly measures the neighbours.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench import save
from labs.finetune import dpo
from labs import models
from labs.training import loop as training
from labs.data import preferences


def _timed(fn) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lm = models.load_model(models.DEFAULT_CHAT_MODEL)
    model, _, _ = training.trainable_model(lm, mode="lora", lora=training.LoraSettings())
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else lm.tokenizer.eos_token_id
    train, _ = preferences.bundled()
    encoded, _ = dpo.encode_pairs(lm, train.pairs[: args.pairs * (args.repeats + 1)], 192)
    device = next(model.parameters()).device
    rows = {"sft": [], "dpo": []}
    for r in range(args.repeats + 1):  # the first round warms up and is dropped
        items = encoded[r * args.pairs:(r + 1) * args.pairs]
        sft_batch = training.to_device(training.collate([p.chosen for p in items], pad), device)
        dpo_batch = dpo.pair_batch(items, pad, device)

        def sft_step():
            loss, _ = training.causal_lm_loss(model, sft_batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        def dpo_step():
            B = len(items)
            policy, ref, _ = dpo.policy_and_reference_logps(model, dpo_batch)
            out = dpo.preference_loss(policy[:B], policy[B:], ref[:B], ref[B:], 0.1)
            optimizer.zero_grad()
            out.losses.mean().backward()
            optimizer.step()

        for name, fn, batch in (("sft", sft_step, sft_batch), ("dpo", dpo_step, dpo_batch)):
            wall, cpu = _timed(fn)
            if r:
                rows[name].append((wall, cpu, int(batch["attention_mask"].sum())))
    result = {"model": lm.key, "device": lm.device, "threads": args.threads, "pairs_per_step": args.pairs}
    for name, xs in rows.items():
        wall = statistics.median(x[0] for x in xs)
        cpu = statistics.median(x[1] for x in xs)
        tokens = statistics.median(x[2] for x in xs)
        result[name] = {"tokens_per_step": tokens, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                        "tokens_per_s_wall": round(tokens / wall, 1), "tokens_per_cpu_s": round(tokens / cpu, 1)}
    result["dpo_over_sft_step_cpu"] = round(result["dpo"]["cpu_s"] / result["sft"]["cpu_s"], 2)
    result["dpo_over_sft_tokens_per_cpu_s"] = round(result["dpo"]["tokens_per_cpu_s"] / result["sft"]["tokens_per_cpu_s"], 2)
    save("dpo", result)
    return result


if __name__ == "__main__":
    main()
