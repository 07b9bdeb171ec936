"""scripts/gpu-check: without CUDA it says so and exits 0; its three steps run (here on the CPU, tiny models) and
report numbers that were measured."""
import importlib.util
import os
import subprocess
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_cuda_it_says_so_and_exits_0():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    out = subprocess.run([str(ROOT / "scripts" / "gpu-check")], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr  # CUDA_VISIBLE_DEVICES="" hides any GPU from the child
    assert "no CUDA GPU" in out.stdout


def test_each_step_measures_something(monkeypatch):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    gpu = _module()
    gen = gpu.generation_check("cpu", torch.float32, tokens=8, streams=3)
    assert gen["tokens_per_s_1_stream"] > 0 and gen["tokens_per_s_3_streams"] > 0
    assert gen["batch_answer_equals_alone"] is True  # a stream in a batch answers as alone (greedy)
    tune = gpu.finetune_check("cpu", steps=3)
    assert tune["steps"] == 3 and tune["tokens_per_s"] > 0 and tune["loss_first"] == tune["loss_first"]
    attn = gpu.attention_check("cpu", 128)
    assert attn["T"] == 128 and attn["ms"] > 0 and attn["max_abs_error_vs_fp32"] < 0.1
