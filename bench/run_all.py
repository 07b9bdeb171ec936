"""Run every benchmark in bench/ one after another (`make bench`); each prints JSON and writes bench/results/."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main() -> int:
    failed = []
    for path in sorted(HERE.glob("bench_*.py")):
        module = f"bench.{path.stem}"
        print(f"== {module}", flush=True)
        if subprocess.call([sys.executable, "-m", module], cwd=HERE.parent) != 0:
            failed.append(module)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
