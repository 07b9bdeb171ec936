"""Measure this machine: matmul GFLOP/s and memory bandwidth, the two numbers that bound training and decoding."""
from __future__ import annotations

import time

import torch

from labs.core import settings


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def matmul_gflops(n: int = 1024, repeats: int = 5, device: str | None = None, dtype: torch.dtype | None = None) -> float:
    """Best-of-`repeats` GFLOP/s of an n x n matmul (2 n^3 flops)."""
    info = settings.device_info()
    device, dtype = device or info.device, dtype or info.dtype
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def memory_bandwidth_gbs(megabytes: int = 256, repeats: int = 5, device: str | None = None) -> float:
    """Best-of GB/s of a large tensor copy (bytes read + bytes written) — what decoding a model is bound by."""
    device = device or settings.device_info().device
    n = megabytes * 1024 * 1024 // 4
    src = torch.empty(n, dtype=torch.float32, device=device).fill_(1.0)
    dst = torch.empty_like(src)
    dst.copy_(src)
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.numel() * 4 / best / 1e9


def describe() -> dict:
    """This machine for the sidebar and benchmarks: device, name, dtype, threads, measured matmul GFLOP/s,
    memory bandwidth GB/s and the torch version."""
    info = settings.device_info()
    return {"device": info.device, "name": info.name, "dtype": info.dtype_name, "threads": info.threads,
            "matmul_gflops": round(matmul_gflops(), 1), "bandwidth_gbs": round(memory_bandwidth_gbs(), 1),
            "torch": torch.__version__}
