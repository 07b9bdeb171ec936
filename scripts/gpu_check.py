"""One command for a GPU machine: the generation engine's speed, one short fine-tuning run and one attention run in
bf16, with the device, its memory and the speed of each. Exits non-zero if a step fails; on a machine without CUDA
it says so and exits 0. On Apple MPS a step MPS cannot do falls back to the CPU, with a message.

    scripts/gpu-check            (or: .venv/bin/python scripts/gpu_check.py [--tokens 64] [--streams 16])
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _device() -> str | None:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return None


def describe(device: str) -> dict:
    import torch

    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        free, total = torch.cuda.mem_get_info(0)
        return {"device": torch.cuda.get_device_name(0), "capability": f"{props.major}.{props.minor}",
                "memory_total_GiB": round(total / 2**30, 1), "memory_free_GiB": round(free / 2**30, 1),
                "bf16": torch.cuda.is_bf16_supported(), "torch": torch.__version__, "cuda": torch.version.cuda}
    return {"device": "Apple GPU (MPS)", "torch": torch.__version__}


def _peak_mib(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if device == "cuda" else None


def generation_check(device: str, dtype, tokens: int, streams: int) -> dict:
    """tokens/s of one stream and of `streams` concurrent streams through the batched engine, and whether every
    greedy answer in the batch equals the same prompt's answer alone."""
    from labs.serving import generation
    from labs import models

    lm = models.load_model(models.DEFAULT_CHAT_MODEL, device=device, dtype=dtype)
    cfg = generation.GenerationConfig(max_new_tokens=tokens, temperature=0.0, repetition_penalty=1.0)
    prompts = [f"Write a sentence about the number {i}." for i in range(streams)]
    generation.generate(lm, "Warm up.", generation.GenerationConfig(max_new_tokens=4))
    t0 = time.perf_counter()
    alone = generation.generate(lm, prompts[0], cfg)
    one_s = time.perf_counter() - t0
    n_one = len(lm.tokenizer(alone, add_special_tokens=False)["input_ids"])
    t0 = time.perf_counter()
    batch = list(generation.generate_many(lm, prompts, cfg))
    many_s = time.perf_counter() - t0
    n_many = sum(len(lm.tokenizer(a, add_special_tokens=False)["input_ids"]) for a in batch)
    return {"model": lm.spec.display_name, "dtype": str(lm.dtype).removeprefix("torch."),
            "tokens_per_s_1_stream": round(n_one / one_s, 1),
            f"tokens_per_s_{streams}_streams": round(n_many / many_s, 1),
            "batch_answer_equals_alone": batch[0] == alone, "peak_MiB": _peak_mib(device)}


def finetune_check(device: str, steps: int) -> dict:
    """A few LoRA steps of the Fine-tuning page's loss on the bundled TL;DR set, bf16 autocast: step time and
    whether the loss went down and stayed finite."""
    import torch

    from labs import models
    from labs.finetune import sft
    from labs.training import loop as training

    lm = models.load_model(models.DEFAULT_CHAT_MODEL, device=device, dtype=torch.float32)
    attention, _mlp = models.lora_targets(lm.model)
    model, _trainable, _total = training.trainable_model(lm, "lora", training.LoraSettings(r=8, targets=attention))
    model.to(device).train()
    train, _ = sft.load_bundled()
    rows = sft.tokenize(train[:8], lm.tokenizer, "chat", max_len=128).rows
    batch = training.to_device(training.collate(rows, sft.pad_id(lm.tokenizer)), device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    losses, times = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        with sft.autocast(device, "bf16"):
            loss, _n = sft.supervised_loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        losses.append(float(loss.detach()))
    if not all(x == x and abs(x) < 1e4 for x in losses):
        raise RuntimeError(f"the fine-tuning loss is not finite: {losses}")
    tokens = int(batch["input_ids"].numel())
    step = sorted(times[1:] or times)[len(times[1:] or times) // 2]
    return {"steps": steps, "loss_first": round(losses[0], 3), "loss_last": round(losses[-1], 3),
            "step_s_median": round(step, 3), "tokens_per_s": round(tokens / step, 1), "peak_MiB": _peak_mib(device)}


def attention_check(device: str, length: int) -> dict:
    """Causal softmax attention in bf16 (torch's fused kernel) against float32 math on the same inputs."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    B, H, T, D = 1, 8, length, 64  # (B, H, T, D)
    q, k, v = (torch.randn(B, H, T, D, device=device) for _ in range(3))
    reference = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # float32
    qb, kb, vb = (x.to(torch.bfloat16) for x in (q, k, v))
    F.scaled_dot_product_attention(qb, kb, vb, is_causal=True)  # warm-up (kernel selection)
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(10):
        out = F.scaled_dot_product_attention(qb, kb, vb, is_causal=True)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / 10
    error = float((out.float() - reference).abs().max())
    if not error < 0.1:
        raise RuntimeError(f"bf16 attention differs from float32 by {error:.3g} (expected < 0.1)")
    flops = 4 * B * H * T * T * D / 2  # QK^T and PV, causal half
    return {"T": T, "ms": round(seconds * 1000, 3), "TFLOP_s": round(flops / seconds / 1e12, 2),
            "max_abs_error_vs_fp32": round(error, 5), "peak_MiB": _peak_mib(device)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per stream in the generation check")
    parser.add_argument("--streams", type=int, default=16, help="concurrent streams in the generation check")
    parser.add_argument("--steps", type=int, default=6, help="fine-tuning steps")
    parser.add_argument("--attention-length", type=int, default=4096, help="sequence length of the attention run")
    args = parser.parse_args(argv)

    device = _device()
    if device is None:
        print("gpu-check: no CUDA GPU (and no Apple MPS) on this machine: nothing to check. LLM Lab runs on the CPU.")
        return 0
    import torch

    os.environ.setdefault("LLMLAB_DEVICE", device)
    report: dict = {"machine": describe(device), "steps": {}}
    print(json.dumps(report["machine"]))
    dtype = torch.bfloat16 if device == "cuda" else torch.float16
    steps = {
        "generation": lambda d: generation_check(d, dtype if d != "cpu" else torch.float32, args.tokens, args.streams),
        "fine_tuning": lambda d: finetune_check(d, args.steps),
        "attention": lambda d: attention_check(d, args.attention_length if d != "cpu" else 1024),
    }
    failed = []
    for name, step in steps.items():
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        try:
            result = step(device)
        except Exception as exc:  # noqa: BLE001 - one line per failed step, and a non-zero exit
            if device == "mps":
                print(f"gpu-check: {name} is not supported on MPS ({type(exc).__name__}: {exc}); running it on the CPU.")
                try:
                    result = dict(step("cpu"), fell_back_to="cpu")
                except Exception as cpu_exc:  # noqa: BLE001
                    result = {"error": f"{type(cpu_exc).__name__}: {cpu_exc}"}
            else:
                traceback.print_exc()
                result = {"error": f"{type(exc).__name__}: {exc}"}
        result["seconds"] = round(time.perf_counter() - t0, 1)
        report["steps"][name] = result
        print(json.dumps({name: result}))
        if "error" in result:
            failed.append(name)
    print(json.dumps(report, indent=2))
    if failed:
        print(f"gpu-check: FAILED: {', '.join(failed)}")
        return 1
    print("gpu-check: all steps passed.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
