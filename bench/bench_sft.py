"""SFT step on SmolLM2 + LoRA: this lab's step vs the same step through a plain Hugging Face `Trainer`. Prints JSON.

    .venv/bin/python -m bench.bench_sft [--steps 4] [--batch 4] [--threads 2]

Same model, LoRA settings, examples, batch size and dynamic padding in every variant:
- hf_trainer: `Trainer.training_step` (forward with labels -> logits for every position, backward), fp32;
- lab_fp32: labs.finetune.sft.supervised_loss (the LM head only on supervised positions), fp32;
- lab_auto: the same plus bf16 autocast where the CPU has native bf16 (the lab's default, precision="auto").
Forward + backward is timed (the optimizer step is the same tiny AdamW update on LoRA weights everywhere).
Achieved GFLOP/s uses labs.finetune.sft.step_flops against the measured matmul peak (labs.core.hardware). CPU seconds are
reported next to wall seconds because on a shared machine wall time mostly measures the neighbours.
"""
from __future__ import annotations

import argparse
import time

import torch

from bench import save
from labs.core import hardware
from labs import models
from labs.finetune import sft
from labs.training import loop as training


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lm = models.load_model(models.DEFAULT_CHAT_MODEL)
    cfg = sft.SFTConfig(batch_size=args.batch)
    train, _ = sft.load_bundled()
    data = sft.tokenize(train[: args.batch * (args.steps + 1)], lm.tokenizer, cfg.template, False, cfg.max_len)
    pad = sft.pad_id(lm.tokenizer)
    batches = [training.collate(data.rows[i:i + args.batch], pad) for i in range(0, len(data.rows), args.batch)]
    device = lm.device
    results = {}

    def run(name, step):
        times = []
        for i, batch in enumerate(batches):
            batch = training.to_device(batch, device)
            w0, c0 = time.perf_counter(), time.process_time()
            step(batch)
            if i:  # the first step warms up and is dropped
                times.append((time.perf_counter() - w0, time.process_time() - c0, int(batch["attention_mask"].sum()),
                              int((batch["labels"][:, 1:] != training.IGNORE).sum())))
        wall, cpu = sum(t[0] for t in times), sum(t[1] for t in times)
        tokens, supervised = sum(t[2] for t in times), sum(t[3] for t in times)
        results[name] = {"tokens_per_s": tokens / wall, "cpu_s_per_1k_tokens": 1000 * cpu / tokens,
                         "achieved_gflops": sft.step_flops(lm, cfg, tokens, supervised) / wall / 1e9,
                         "steps": len(times), "tokens": tokens}

    # 1. plain Hugging Face Trainer, same LoRA copy
    from transformers import Trainer, TrainingArguments

    model, _, _ = training.trainable_model(lm, "lora", lora=cfg.lora())
    trainer = Trainer(model=model, args=TrainingArguments(output_dir="/tmp/llmlab-bench-sft", per_device_train_batch_size=args.batch,
                                                          report_to="none", use_cpu=device == "cpu", save_strategy="no",
                                                          logging_strategy="no"))
    trainer.create_optimizer_and_scheduler(num_training_steps=len(batches))
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(); we call training_step directly
    model.train()
    run("hf_trainer", lambda b: trainer.training_step(model, dict(b)))

    # 2. and 3. this lab's step
    for name, precision in (("lab_fp32", "fp32"), ("lab_auto", "auto")):
        model, _, _ = training.trainable_model(lm, "lora", lora=cfg.lora())
        model.train()

        def step(b, model=model, precision=precision):
            with sft.autocast(device, precision):
                loss, _ = sft.supervised_loss(model, b)
            loss.backward()
            model.zero_grad(set_to_none=True)

        run(name, step)
    peak32 = hardware.matmul_gflops()
    out = {"device": str(device), "threads": args.threads, "batch": args.batch, "cpu_bf16": sft.cpu_has_bf16(),
           "matmul_peak_gflops": {"fp32": round(peak32, 1)}, "results": results,
           "speedup_vs_trainer": {k: round(v["tokens_per_s"] / results["hf_trainer"]["tokens_per_s"], 2)
                                  for k, v in results.items()}}
    if sft.cpu_has_bf16() or str(device).startswith("cuda"):
        out["matmul_peak_gflops"]["bf16"] = round(hardware.matmul_gflops(dtype=torch.bfloat16), 1)
    save("sft", out)
    return out


if __name__ == "__main__":
    main()
