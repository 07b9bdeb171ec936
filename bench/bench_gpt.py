"""Tiny-GPT training step (the data-mixtures lab): tokens/s vs the matmul bound. Prints JSON.

    .venv/bin/python -m bench.bench_gpt [--threads 1] [--steps 20] [--device cpu]

For each model size of the lab: ms per AdamW step at the lab's batch (16 x 64 bytes), tokens/s, the FLOPs
that implies (6N + 6 n_layer T C per token, Kaplan et al. 2020), and that as a fraction of a 1024 x 1024
matmul's GFLOP/s on the same device ("matmul bound"). Tiny models sit far below the bound: their matrices
are 64-128 wide, so per-op overhead (Python, kernel launch, threads) dominates, not arithmetic. The default
1000-step run's time is the step time x 1000 plus evaluation. CPU seconds are reported next to wall seconds
because wall time on a shared machine mostly measures the neighbours.
"""
from __future__ import annotations

import argparse
import time

import torch

from bench import save
from labs.core import hardware
from labs.mixtures import pretrain
from labs.core import settings
from labs.mixtures.gpt import GPT, flops_per_token


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def step_time(size: str, device: str, steps: int, batch: int = 16, block: int = 64) -> tuple[float, float]:
    cfg = pretrain.MixtureRunConfig(size=size, batch_size=batch, block_size=block).gpt_config()
    torch.manual_seed(0)
    model = GPT(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 256, (batch, block), device=device)

    def one():
        _, loss = model(x, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up (allocator, kernels)
        one()
    _sync(device)
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        one()
    _sync(device)
    return (time.perf_counter() - w0) / steps, (time.process_time() - c0) / steps


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (the lab trains with 1)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default=None, help="cpu / cuda (default: LLMLAB_DEVICE or auto)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = args.device or settings.device_info().device
    bound = hardware.matmul_gflops(device=device, dtype=torch.float32)
    rows = []
    for size in pretrain.SIZES:
        wall, cpu = step_time(size, device, args.steps)
        cfg = pretrain.MixtureRunConfig(size=size).gpt_config()
        tokens = 16 * 64
        achieved = flops_per_token(cfg, 64) * tokens / wall / 1e9
        rows.append({"size": size, "params": GPT(cfg).num_parameters(), "ms_per_step": round(1000 * wall, 1),
                     "cpu_ms_per_step": round(1000 * cpu, 1), "tokens_per_s": round(tokens / wall),
                     "gflops": round(achieved, 2), "fraction_of_matmul_bound": round(achieved / bound, 3),
                     "default_run_s": round(1000 * wall, 1)})
    out = {"device": device, "threads": args.threads, "matmul_gflops_fp32": round(bound, 1), "sizes": rows}
    save("gpt", out)
    return out


if __name__ == "__main__":
    main()
