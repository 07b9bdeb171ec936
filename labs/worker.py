"""`python -m labs.worker`: run queued background runs on this machine (the shared queue in LLMLAB_DB_URL).

Start one per machine that should train (a GPU box runs CUDA, the laptop its CPU); each takes one run at a time and
needs the same LLMLAB_DB_URL and LLMLAB_ARTIFACTS (a shared directory) as the app replicas. Ctrl-C or SIGTERM: the
current run is stopped at its next step with the reason, and the worker exits.
"""
from __future__ import annotations

import argparse
import signal
import sys

from labs.core import db, settings
from labs.runs import worker as runs_worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", help="this worker's name in the queue (default host:pid)")
    parser.add_argument("--max-runs", type=int, help="exit after this many runs (default: run until stopped)")
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between looks at an empty queue")
    args = parser.parse_args(argv)
    if not settings.db_configured():
        print("labs.worker needs LLMLAB_DB_URL: the database the app replicas queue runs in (PostgreSQL), e.g. "
              "postgresql://llmlab:secret@classroom-server/llmlab", file=sys.stderr)
        return 2
    try:
        db.check_reachable(settings.db_url(), "the run queue")
    except db.DatabaseUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return 2
    worker = runs_worker.Worker(name=args.name, poll_s=args.poll)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.halt())
    print(f"worker {worker.name}: taking runs from {db.safe_url(worker.url)}; files in "
          f"{settings.artifacts_root() / 'runs'}", flush=True)
    worker.run_forever(max_runs=args.max_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
