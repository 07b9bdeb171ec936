"""LoRA training step cost vs rank and adapted layers, and decode latency merged vs unmerged. Prints JSON.

    .venv/bin/python -m bench.bench_lora [--ranks 1,8,64] [--repeats 3] [--threads 2] [--tiny]

Expectations (Hu et al. 2021, Section 4): the rank barely changes a step's cost (the adapter's r(d + k)
numbers are tiny next to W0's d·k, and the frozen model's forward + backward dominates); adapting only the
top N layers shortens the backward pass; a merged adapter decodes at the base model's speed while an
unmerged one adds two small matmuls per adapted matrix. CPU (process) seconds are reported next to wall
seconds because wall time on a shared machine mostly measures the neighbours.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench import save
from labs.finetune import lora
from labs import models
from labs.training import loop as training


def _timed(fn) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def step_cost(lm, cfg: lora.LoraRunConfig, batch: dict, repeats: int) -> dict:
    model = lora.lora_model(lm, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)

    def step():
        loss, _ = training.causal_lm_loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    times = [_timed(step) for _ in range(repeats + 1)][1:]  # the first step warms up
    tokens = int(batch["attention_mask"].sum())
    wall = statistics.median(t[0] for t in times)
    return {"r": cfg.r, "last_layers": cfg.last_layers, "trainable": sum(p.numel() for p in params),
            "wall_s": round(wall, 4), "cpu_s": round(statistics.median(t[1] for t in times), 4),
            "tokens_per_s": round(tokens / wall, 1)}


@torch.no_grad()
def decode_latency(lm, model, repeats: int) -> float:
    """Median seconds of one decode step (1 new token over a cache of 64+ tokens)."""
    device = next(model.parameters()).device
    prompt = torch.randint(100, 1000, (1, 64), device=device)
    cache = model(input_ids=prompt, use_cache=True).cache
    token = torch.tensor([[5]], device=device)
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        model(input_ids=token, cache=cache, use_cache=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ranks", default="1,8,64")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="tiny random model (seconds, for a smoke run)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lm = models.tiny_model() if args.tiny else models.load_model(models.DEFAULT_CHAT_MODEL)
    train, _ = lora.task_pairs("tldr", 4, 1)
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else lm.tokenizer.eos_token_id
    batch = training.to_device(training.collate(lora.encode_pairs(lm, train, 96), pad), next(lm.model.parameters()).device)
    ranks = [int(r) for r in args.ranks.split(",")]
    rows = [step_cost(lm, lora.LoraRunConfig(r=r, last_layers=8), batch, args.repeats) for r in ranks]
    rows.append(step_cost(lm, lora.LoraRunConfig(r=ranks[0], last_layers=0), batch, args.repeats))
    adapted = lora.random_adapter(lm, r=8, targets=lora.ALL_TARGETS)
    unmerged = decode_latency(lm, adapted, args.repeats * 5)
    adapted.merge_adapter()
    merged = decode_latency(lm, adapted, args.repeats * 5)
    base = decode_latency(lm, lm.model, args.repeats * 5)
    result = {"model": lm.key + (" (tiny)" if args.tiny else ""), "batch_tokens": int(batch["attention_mask"].sum()),
              "train_step": rows,
              "decode_step_ms": {"base": round(1000 * base, 2), "lora_unmerged_all7_r8": round(1000 * unmerged, 2),
                                 "lora_merged": round(1000 * merged, 2)}}
    save("lora", result)
    return result


if __name__ == "__main__":
    main()
