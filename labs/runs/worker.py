"""A worker of the shared run queue (labs.runs.shared): claims the oldest queued run, runs it on this machine, beats.

    python -m labs.worker            # on any machine that reaches LLMLAB_DB_URL and mounts LLMLAB_ARTIFACTS

Claiming is one transaction: `SELECT ... FOR UPDATE SKIP LOCKED` on the oldest queued row, then an UPDATE that only
succeeds while the row is still queued, so two workers never run the same run. While a run executes, a beat thread
writes its new metrics, notes and step, renews the heartbeat and reads Stop (pressed on any replica). When the
database goes away mid-run the run goes on; the beats retry, and the final state is kept in LLMLAB_HOME/spool/ until
the database takes it, written once, by this worker only.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import insert, select, update

from labs.core import db, settings
from labs.runs import jobs, provenance, shared
from labs.runs.jobs import DONE, FAILED, QUEUED, RUNNING, STOPPED, Run
from labs.runs.shared import metrics_table, runs_table


class _Local:
    """What jobs.RunContext reads from its manager: a lock and the run's Stop flag."""

    def __init__(self, run_id: str):
        self._lock = threading.RLock()
        self._stop_flags = {run_id: threading.Event()}


def default_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    """Takes runs from the shared queue one at a time. `manager`: the app's SharedJobManager when the worker runs
    inside an app process (a run submitted there uses its own step function, no reload)."""

    def __init__(self, url: str | None = None, name: str | None = None, manager: shared.SharedJobManager | None = None,
                 poll_s: float = 0.5, load_model: Callable[[str], Any] = shared.load_model_once):
        self.url = url or settings.db_url()
        self.engine = db.engine_for(self.url)
        shared.metadata.create_all(self.engine)
        self.name, self.manager, self.poll_s, self.load_model = name or default_name(), manager, poll_s, load_model
        self.beat_s = settings.heartbeat_s()
        self._wake, self._halt = threading.Event(), threading.Event()
        self.current: str | None = None
        self.finished: list[str] = []  # ids this worker ran to an end (tests and logs)

    # -- the loop ---------------------------------------------------------------------------------------------
    def wake(self) -> None:
        """A run was queued here: look now instead of at the next poll."""
        self._wake.set()

    def halt(self) -> None:
        """Take no more runs; the current one is stopped at its next step."""
        self._halt.set()
        self._wake.set()

    def run_forever(self, max_runs: int | None = None) -> None:
        done = 0
        while not self._halt.is_set() and (max_runs is None or done < max_runs):
            try:
                self.flush_spool()
                shared.reap(self.engine)
                claimed = self.claim()
            except Exception:  # noqa: BLE001 - the database is down: wait and look again
                claimed = None
            if claimed is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            self.run_one(*claimed)
            done += 1

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name=f"llmlab-worker-{self.name}", daemon=True)
        thread.start()
        return thread

    def claim(self) -> tuple[Run, bytes] | None:
        """The oldest queued run, now RUNNING on this worker; None when the queue is empty."""
        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(select(runs_table).where(runs_table.c.status == QUEUED).order_by(
                runs_table.c.created).limit(1).with_for_update(skip_locked=True)).first()
            if row is None:
                return None
            took = conn.execute(update(runs_table).where(runs_table.c.id == row.id, runs_table.c.status == QUEUED)
                                .values(status=RUNNING, worker=self.name, started=now, heartbeat=now)).rowcount
        if took != 1:  # another worker (SQLite has no row locks) was first
            return None
        run = shared._run_from_row(row)
        run.status, run.started, run.worker = RUNNING, now, self.name
        return run, row.payload

    # -- one run ----------------------------------------------------------------------------------------------
    def run_one(self, run: Run, payload: bytes) -> str:
        self.current = run.id
        local = _Local(run.id)
        status, reason, summary = FAILED, "The run ended without a result.", None
        beat = threading.Thread(target=self._beat, args=(run, local), daemon=True)
        beat.start()  # before the model loads: converting one on a fresh machine takes longer than the lapse
        try:
            mine = self.manager.local_step_function(run.id) if self.manager is not None else None
            config, fn = mine if mine is not None else shared.loads(payload, self.load_model)
            status, reason, summary = jobs.execute(fn, jobs.RunContext(local, run, config))
        except Exception as exc:  # noqa: BLE001 - its inputs did not unpickle, its model did not load
            status, reason = FAILED, f"The worker {self.name} could not start it: {type(exc).__name__}: {exc}"
        finally:
            if self._halt.is_set() and status == STOPPED:
                reason = f"Its worker {self.name} was shut down at step {run.step}."
            run.status, run.reason, run.ended = status, reason, time.time()
            run.summary = summary or {}
            if status == DONE:
                run.files = provenance.artifact_sizes(run.artifacts)
            self.current = None
            beat.join(timeout=5)
            self.finish(run)
        return status

    def _beat(self, run: Run, local: _Local) -> None:
        """Every beat: new metrics and notes to the database, the heartbeat, and Stop from any replica."""
        written = 0
        while self.current == run.id:
            written = self._sync(run, local, written)
            time.sleep(self.beat_s)

    def _sync(self, run: Run, local: _Local, written: int) -> int:
        with local._lock:
            rows, notes = list(run.metrics[written:]), list(run.notes)
        try:
            with self.engine.begin() as conn:
                if rows:
                    conn.execute(insert(metrics_table), [{"run_id": run.id, "step": int(m.get("step", 0)),
                                                          "data": json.dumps(m, default=str)} for m in rows])
                conn.execute(update(runs_table).where(runs_table.c.id == run.id, runs_table.c.worker == self.name)
                             .values(heartbeat=time.time(), step=run.step, total_steps=run.total_steps,
                                     notes=json.dumps(notes, default=str)))
                stop = conn.execute(select(runs_table.c.stop_requested).where(runs_table.c.id == run.id)).scalar()
        except Exception:  # noqa: BLE001 - the database is away: the run goes on, the next beat retries
            return written
        if stop or self._halt.is_set():
            local._stop_flags[run.id].set()
        return written + len(rows)

    # -- the end, exactly once --------------------------------------------------------------------------------
    def finish(self, run: Run) -> bool:
        """Record the run's end (its last metrics too); when the database is away, keep it in the spool and
        return False (`flush_spool` retries). Only this worker's claim is written, and only once."""
        record = {"run": run.to_json(), "metrics": run.metrics}
        try:
            self._record(record)
        except Exception:  # noqa: BLE001
            path = spool_dir() / f"{run.id}.json"
            path.write_text(json.dumps(record, default=str))
            return False
        self.finished.append(run.id)
        return True

    def _record(self, record: dict) -> None:
        run = record["run"]
        with self.engine.begin() as conn:
            have = conn.execute(select(metrics_table.c.id).where(metrics_table.c.run_id == run["id"])).all()
            rest = record["metrics"][len(have):]
            if rest:
                conn.execute(insert(metrics_table), [{"run_id": run["id"], "step": int(m.get("step", 0)),
                                                      "data": json.dumps(m, default=str)} for m in rest])
            conn.execute(update(runs_table).where(  # the claiming worker's end only (a spooled one after a restart)
                runs_table.c.id == run["id"], runs_table.c.worker == run["worker"],
                (runs_table.c.status == RUNNING) | runs_table.c.reaped).values(
                status=run["status"], reason=run["reason"], ended=run["ended"], step=run["step"],
                total_steps=run["total_steps"], notes=json.dumps(run["notes"], default=str),
                summary=json.dumps(run["summary"], default=str), reaped=False,
                files=json.dumps(run["files"]) if run["files"] is not None else None, heartbeat=time.time()))

    def flush_spool(self) -> int:
        """Record every end kept while the database was away (oldest first); returns how many went in."""
        done = 0
        for path in sorted(spool_dir().glob("*.json"), key=lambda p: p.stat().st_mtime):
            self._record(json.loads(path.read_text()))
            path.unlink()
            done += 1
        return done


def spool_dir() -> Path:
    """LLMLAB_HOME/spool: run ends waiting for the database (this machine's disk, not the shared store)."""
    return settings.subdir("spool")


def start_in_app(manager: shared.SharedJobManager) -> Worker:
    """The app process as a worker (LLMLAB_APP_WORKER, on by default): one thread beside the pages."""
    worker = Worker(url=manager.url, name=f"{default_name()}:app", manager=manager)
    worker.start_thread()
    return worker


shared.use_worker_factory(start_in_app)
