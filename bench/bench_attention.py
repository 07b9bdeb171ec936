"""Benchmark: prefill and decode scaling of every attention variant; prints JSON (and writes it with --out).

    python -m bench.bench_attention                      # 256 → 4096 tokens, 60 s budget per variant
    python -m bench.bench_attention --max-len 16384 --out attn.json
    python -m bench.bench_attention --variants softmax kda --max-len 2048

Output: {"device", "config", "rows": [{variant, T, prefill_ms, decode_ms, peak_MiB, skipped}],
         "prefill_slope", "decode_slope", "crossover"} — slopes are log-log fits over the 3 longest lengths,
crossover the length (tokens) from which a variant's prefill is faster than softmax on this machine.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import save  # noqa: E402
from labs.core import settings  # noqa: E402
from labs.attention import cost  # noqa: E402
from labs.attention.mixers import VARIANTS  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(cost.CostConfig().variants), choices=list(VARIANTS))
    parser.add_argument("--max-len", type=int, default=cost.CostConfig().max_len, help="longest sequence (≤ 16384)")
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per variant")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    config = cost.CostConfig(variants=tuple(args.variants), max_len=args.max_len, heads=args.heads,
                             head_dim=args.head_dim, budget_s=args.budget)
    device = settings.device_info().device
    start = time.perf_counter()
    rows = cost.measure(config, device)
    result = {"device": settings.device_info().name, "config": dataclasses.asdict(config), "rows": rows,
              "prefill_slope": {v: cost.fit_slope(rows, v) for v in config.variants},
              "decode_slope": {v: cost.fit_slope(rows, v, "decode_ms") for v in config.variants},
              "crossover": {v: cost.crossover(rows, v) for v in config.variants if v != "softmax"},
              "seconds": time.perf_counter() - start}
    save("attention", result)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
