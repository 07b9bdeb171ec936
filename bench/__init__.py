"""Benchmarks: each prints its JSON and keeps it in bench/results/<name>.json (`save`)."""
from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def save(name: str, result: dict) -> Path:
    """Print the result as JSON and write it to bench/results/<name>.json; returns the path."""
    text = json.dumps(result, indent=2, default=str)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(text + "\n")
    return path
