"""Background runs: a bounded queue, live metrics, Stop, persistence, replay and comparison.

A run is (config, seed, step function). `submit` returns a run id at once; the function runs on a worker
thread and reports each step through `ctx.log(...)`, which also raises `Stopped` when Stop was pressed,
so Stop takes effect within one step. A NaN/inf loss ends the run with a readable reason.

    def train(ctx: RunContext) -> dict:           # ctx.config is the frozen dataclass you submitted
        for step in range(1, ctx.config.steps + 1):
            loss = ...
            ctx.log(step=step, loss=loss, tokens_per_s=...)   # appended to ctx.metrics, streamed to the page
        ctx.save_json("result.json", {...})          # artifacts live in ctx.artifacts (LLMLAB_HOME/runs/<id>/)
        return {"final_loss": loss}                  # the run's summary

    run_id = jobs.submit(MyConfig(...), train, owner=session_id)
    run = jobs.get(run_id)   # a snapshot: status, metrics, progress, position in queue, summary, reason

Finished runs persist under LLMLAB_HOME/runs/<id>/ (run.json, metrics.jsonl, artifacts) and survive a
restart. The run id is a hash of (kind, config, seed): the same config and seed replays the stored run, but only
while it is current and whole: a run records what it was made with (the labs code, the model files its config
names) and the sizes of its artifacts; one made with other code or another model file, or whose files were cut
short, is stale and runs again (`stale_reason`).
"""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from labs.core import compute, settings
from labs.core.errors import ConfigError
from labs.runs import provenance
from labs.runs.provenance import config_dict, kind_of, run_id_for  # noqa: F401  (the run's identity)


QUEUED, RUNNING, DONE, STOPPED, FAILED = "queued", "running", "done", "stopped", "failed"
ACTIVE = (QUEUED, RUNNING)


class Stopped(Exception):
    """Raised inside a step function when the user pressed Stop."""


class Diverged(Exception):
    """Raised when a logged loss is NaN or infinite."""


class SessionBusy(ConfigError):
    """A browser session asked for another run while its own run is still queued or running (a class server
    shares one queue: one student must not fill it). The message names that run and its place in the queue."""

    def __init__(self, message: str, run_id: str, position: int):
        super().__init__(message)
        self.run_id, self.position = run_id, position


def stale_reason(run: "Run", config: dict | None = None) -> str:
    """Why a finished run must not be replayed as current ("" when it may): it did not finish, or (see
    `provenance.stale_reason`) it was made with other code or another model file, or its files changed since."""
    if run.status != DONE:
        return f"it did not finish ({run.status})"
    return provenance.stale_reason(run.made_with, run.files, run.artifacts, run.config if config is None else config)


@dataclass
class Run:
    """One run's state: what was asked (kind, config, seed), where it is (status, step), what it logged
    (metrics, notes) and how it ended (summary, reason). Times are seconds since the epoch."""
    id: str
    kind: str
    config: dict
    seed: int | None
    owner: str | None = None
    label: str = ""
    status: str = QUEUED
    created: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    step: int = 0
    total_steps: int | None = None
    metrics: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    reason: str = ""  # why it stopped or failed, in words
    replayed: bool = False  # True when this snapshot came from disk instead of a fresh run
    position: int = 0  # place in the queue (1 = next), 0 when not queued
    group: str | None = None  # runs submitted together (a sweep) count as one toward the per-session limit
    made_with: dict = field(default_factory=dict)  # code, tiny or real, model fingerprints (provenance)
    files: dict | None = None  # artifact sizes when it finished: a replay checks them (None: recorded before)
    worker: str = ""  # where it ran: "host:pid" of the worker (the shared queue; "" in this process)

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.status in ACTIVE

    @property
    def elapsed(self) -> float:
        """Seconds since the run started (to its end once it ended); 0 while queued."""
        if not self.started:
            return 0.0
        return (self.ended or time.time()) - self.started

    @property
    def remaining(self) -> float | None:
        """Estimated seconds left from the pace so far; None unless running with a known total."""
        if not self.total_steps or not self.step or self.status != RUNNING:
            return None
        return self.elapsed / self.step * (self.total_steps - self.step)

    @property
    def artifacts(self) -> Path:
        """The run's folder, LLMLAB_HOME/runs/<id>/."""
        return runs_dir() / self.id

    def to_json(self) -> dict:
        """What run.json stores (metrics live in metrics.jsonl; queue position and replay flag are transient)."""
        d = dataclasses.asdict(self)
        for transient in ("metrics", "position", "replayed"):
            d.pop(transient)
        return d


def runs_dir() -> Path:
    """LLMLAB_ARTIFACTS/runs (a directory every replica and worker reads) or LLMLAB_HOME/runs, created on demand."""
    path = settings.artifacts_root() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def execute(fn: Callable, ctx: "RunContext") -> tuple[str, str, dict | None]:
    """Call a step function the way every queue does: (status, reason, summary). Stop, a NaN loss and a crash end
    the run with a reason (the traceback saved beside its artifacts), never the app or the worker."""
    try:
        compute.reset_threads()  # a pooled worker thread starts each run with the whole budget
        with compute.busy("training"):
            summary = fn(ctx)
        return DONE, "", json.loads(json.dumps(summary, default=str)) if isinstance(summary, dict) else None
    except Stopped:
        return STOPPED, f"Stopped by the user at step {ctx._run.step}.", None
    except Diverged as exc:
        return FAILED, str(exc), None
    except BaseException as exc:  # a crash ends this run, never the app (or the worker thread)
        try:
            ctx.artifacts.mkdir(parents=True, exist_ok=True)
            (ctx.artifacts / "traceback.txt").write_text(traceback.format_exc())
        except OSError:
            pass
        return FAILED, f"The run crashed: {type(exc).__name__}: {exc}", None


class RunContext:
    """What a step function sees: its config, seed, artifact folder, and log/stop."""

    def __init__(self, manager: "JobManager", run: Run, config: Any):
        self._manager, self._run, self.config = manager, run, config
        self.seed = run.seed
        self.artifacts = run.artifacts
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self._preferred_threads: int | None = None

    @property
    def run_id(self) -> str:
        """This run's id."""
        return self._run.id

    def set_total(self, total_steps: int) -> None:
        """The number of steps the run will take (for progress and time remaining)."""
        self._run.total_steps = int(total_steps)

    def note(self, text: str) -> None:
        """A line of text for the page (e.g. a sample generated at step N)."""
        with self._manager._lock:
            self._run.notes.append(text)

    def should_stop(self) -> bool:
        """True once Stop was pressed (for work between logged steps)."""
        return self._manager._stop_flags[self._run.id].is_set()

    def check_stop(self) -> None:
        """Raise Stopped if Stop was pressed."""
        if self.should_stop():
            raise Stopped()

    def log(self, **metrics: Any) -> None:
        """Append one step's metrics (numbers); raises Stopped / Diverged to end the run cleanly."""
        clean = {k: (float(v) if hasattr(v, "item") or isinstance(v, (int, float)) and not isinstance(v, bool) else v)
                 for k, v in metrics.items()}
        if "step" not in clean:
            clean["step"] = len(self._run.metrics) + 1
        clean["step"] = int(clean["step"])
        clean.setdefault("time", round(time.time() - (self._run.started or time.time()), 3))
        with self._manager._lock:
            self._run.metrics.append(clean)
            self._run.step = clean["step"]
        try:
            with open(self.artifacts / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(clean) + "\n")
        except OSError:  # persistence is best effort; the live metrics above are what the page draws
            pass
        for key in ("loss", "train_loss"):
            value = clean.get(key)
            if isinstance(value, float) and not math.isfinite(value):
                raise Diverged(f"The loss became {value} at step {clean['step']}: training diverged. "
                               "Lower the learning rate (or raise warm-up / gradient clipping) and start again.")
        self._share_cores()
        self.check_stop()

    def _share_cores(self) -> None:
        """One CPU budget (labs.core.compute): between steps, take only the training share of the cores while the
        generation engine is serving streams, and the lab's own thread count again when it is not."""
        if self._preferred_threads is None:
            self._preferred_threads = torch.get_num_threads()  # what the lab chose for itself
        want = min(self._preferred_threads, compute.threads_for("training"))
        if torch.get_num_threads() != want:
            torch.set_num_threads(want)

    def save_json(self, name: str, obj: Any) -> Path:
        """Write `obj` as JSON to the run's folder; returns the path."""
        path = self.artifacts / name
        path.write_text(json.dumps(obj, indent=2, default=str))
        return path


class JobManager:
    """The queue: a bounded worker pool that runs step functions, keeps their state in memory and on disk,
    and answers snapshots to every browser session."""

    def __init__(self, max_workers: int | None = None, runs_per_session: int | None = None):
        self.runs_per_session = runs_per_session  # None: settings.runs_per_session() (LLMLAB_RUNS_PER_SESSION)
        self._lock = threading.RLock()
        self._runs: dict[str, Run] = {}
        self._stop_flags: dict[str, threading.Event] = {}
        self._live: dict[str, tuple[Any, Callable]] = {}  # a replayed run's (config, fn): run it live on request
        self._queue: list[str] = []
        self._pool = ThreadPoolExecutor(max_workers=max_workers or settings.max_heavy_jobs(),
                                        thread_name_prefix="llmlab-run")

    # -- submit and run -------------------------------------------------------------------------
    def submit(self, config: Any, fn: Callable[[RunContext], dict | None], *, seed: int | None = None,
               owner: str | None = None, label: str = "", replay: bool = True, group: str | None = None) -> str:
        """Queue a run and return its id at once. An identical config+seed that already finished is replayed
        from disk (no work); one that is queued or running is not started twice (its id is returned).

        An owner (a browser session) may have at most `runs_per_session` queued-or-running runs; runs that share
        a `group` (one click that starts a sweep) count as one. Over the limit: SessionBusy, nothing queued.
        """
        seed = getattr(config, "seed", seed) if seed is None else seed
        kind, cfg, run_id = kind_of(config), config_dict(config), run_id_of(config, seed)
        with self._lock:
            existing = self._runs.get(run_id) or self._load(run_id)
            if existing is not None:
                if existing.active:
                    return run_id
                if replay and existing.status == DONE and not stale_reason(existing, cfg):
                    existing.replayed = True
                    self._runs[run_id] = existing
                    self._live[run_id] = (config, fn)
                    return run_id
            self._check_session_limit(owner, group)
            shutil.rmtree(runs_dir() / run_id, ignore_errors=True)
            run = Run(id=run_id, kind=kind, config=cfg, seed=seed, owner=owner, label=label or kind, group=group,
                      made_with=provenance.made_with(cfg))
            self._runs[run_id] = run
            self._stop_flags[run_id] = threading.Event()
            self._queue.append(run_id)
            run.artifacts.mkdir(parents=True, exist_ok=True)
            self._persist(run)
        self._pool.submit(self._execute, run_id, config, fn)
        return run_id

    def can_run_live(self, run_id: str) -> bool:
        """A replayed run whose page handed in its step function: `run_live` can run it again."""
        return run_id in self._live

    def run_live(self, run_id: str, owner: str | None = None) -> str:
        """Run a replayed experiment again instead of showing the stored result (the same run id: the new result
        replaces the stored one when it finishes)."""
        with self._lock:
            live = self._live.pop(run_id, None)
            label = (self._runs.get(run_id) or Run(run_id, "", {}, None)).label
        if live is None:
            raise ConfigError("This stored result cannot be run again from here: press the page's button.")
        config, fn = live
        return self.submit(config, fn, owner=owner, label=label, replay=False)

    def _check_session_limit(self, owner: str | None, group: str | None) -> None:
        limit = settings.runs_per_session() if self.runs_per_session is None else self.runs_per_session
        if owner is None or not limit:
            return
        mine = sorted((r for r in self._runs.values() if r.owner == owner and r.active
                       and not (group is not None and r.group == group)), key=lambda r: r.created)
        if len({r.group or r.id for r in mine}) < limit:
            return
        first = mine[0]
        position = self._queue.index(first.id) + 1 if first.id in self._queue else 0
        where = (f"waiting in the queue at position {position}" if position
                 else f"running (step {first.step}/{first.total_steps or '?'})")
        raise SessionBusy(f"You already have a run {where}: {first.label}. One run per person at a time keeps the "
                          "shared queue fair: wait for it to finish, or press Stop on it (sidebar), then start "
                          "this one.", first.id, position)

    def _execute(self, run_id: str, config: Any, fn: Callable) -> None:
        with self._lock:
            run = self._runs[run_id]
            self._queue.remove(run_id)
            if self._stop_flags[run_id].is_set():
                run.status, run.reason, run.ended = STOPPED, "Stopped before it started.", time.time()
                self._persist(run)
                return
            run.status, run.started = RUNNING, time.time()
        status, reason, summary = FAILED, "The run ended without a result.", None
        try:
            status, reason, summary = execute(fn, RunContext(self, run, config))
            if summary is not None:
                run.summary = summary
        finally:
            with self._lock:
                run.status, run.reason, run.ended = status, reason, time.time()
                try:
                    if status == DONE:
                        run.files = provenance.artifact_sizes(run.artifacts)
                    self._persist(run)
                except OSError:  # the runs folder vanished (deleted by hand): the in-memory state still ends
                    pass

    # -- control --------------------------------------------------------------------------------
    def stop(self, run_id: str, owner: str | None = None) -> str:
        """Ask a run to stop; returns a message for the user (nothing raises for a finished run)."""
        with self._lock:
            run = self._runs.get(run_id) or self._load(run_id)
            if run is None:
                return f"There is no run {run_id}."
            if owner is not None and run.owner not in (None, owner):
                return "That run belongs to someone else; only its owner can stop it."
            if not run.active:
                return f"Run {run_id} has already {run.status}; nothing to stop."
            self._stop_flags[run_id].set()
            return f"Stopping {run_id} (within one step)."

    def wait(self, run_id: str, timeout: float = 600) -> Run:
        """Block until the run ends (seconds); returns its snapshot, TimeoutError after `timeout`."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            run = self.get(run_id)
            if run is not None and not run.active:
                return run
            time.sleep(0.05)
        raise TimeoutError(f"Run {run_id} did not finish within {timeout} s.")

    # -- read -----------------------------------------------------------------------------------
    def get(self, run_id: str) -> Run | None:
        """A snapshot copy (safe to read while the run goes on)."""
        with self._lock:
            run = self._runs.get(run_id) or self._load(run_id)
            if run is None:
                return None
            snap = dataclasses.replace(run, metrics=list(run.metrics), notes=list(run.notes))
            snap.position = self._queue.index(run_id) + 1 if run_id in self._queue else 0
            return snap

    def active(self) -> list[Run]:
        """Queued and running runs: running first, then in queue order."""
        with self._lock:
            ids = [r.id for r in self._runs.values() if r.active]
        return sorted((self.get(i) for i in ids), key=lambda r: (r.status != RUNNING, r.position, r.created))

    def list_runs(self, kind: str | type | None = None) -> list[Run]:
        """Every run this process knows plus every finished run on disk, newest first; only those of one kind
        when `kind` is given (a config class, or its name as stored)."""
        if isinstance(kind, type):
            kind = kind_of(kind)
        ids = set(self._runs)
        for path in runs_dir().glob("*/run.json"):
            ids.add(path.parent.name)
        runs = [self.get(i) for i in ids]
        runs = [r for r in runs if r is not None and (kind is None or r.kind == kind)]
        return sorted(runs, key=lambda r: r.created, reverse=True)

    def delete(self, run_id: str) -> None:
        """Forget a finished run and remove its folder (ValueError while it is active)."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None and run.active:
                raise ConfigError("Stop the run before deleting it.")
            self._runs.pop(run_id, None)
            shutil.rmtree(runs_dir() / run_id, ignore_errors=True)

    # -- persistence ----------------------------------------------------------------------------
    def _persist(self, run: Run) -> None:
        path = run.artifacts / "run.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(run.to_json(), indent=2, default=str))
        tmp.replace(path)

    def _load(self, run_id: str) -> Run | None:
        path = runs_dir() / run_id / "run.json"
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            run = Run(**{k: v for k, v in data.items() if k in Run.__dataclass_fields__})
        except (ValueError, TypeError):
            return None
        if run.status in ACTIVE:  # the process that ran it is gone
            run.status, run.reason = FAILED, "The app restarted while this run was in progress."
        metrics_path = path.parent / "metrics.jsonl"
        if metrics_path.exists():
            run.metrics = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
        self._runs[run_id] = run
        return run


_manager: JobManager | None = None
_manager_lock = threading.Lock()
_factory: Callable[[], JobManager] = JobManager  # labs.runs.shared puts the database queue here when configured


def use_factory(factory: Callable[[], JobManager]) -> None:
    """What `manager()` builds on first use (labs.runs.shared registers itself: the queue in LLMLAB_DB_URL)."""
    global _factory
    _factory = factory


def manager() -> JobManager:
    """The process-wide manager (one queue for every browser session; with LLMLAB_RUN_QUEUE=db, one queue for
    every replica and worker, labs.runs.shared)."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = _factory()
        return _manager


def reset_manager() -> None:
    """Forget the process-wide manager (tests that switch queues); its runs keep going where they run."""
    global _manager
    with _manager_lock:
        _manager = None


def submit(config, fn, **kw) -> str:
    """JobManager.submit on the process-wide manager."""
    return manager().submit(config, fn, **kw)


def run_live(run_id: str, owner: str | None = None) -> str:
    """JobManager.run_live on the process-wide manager."""
    return manager().run_live(run_id, owner)


def get(run_id: str) -> Run | None:
    """JobManager.get on the process-wide manager."""
    return manager().get(run_id)


def stop(run_id: str, owner: str | None = None) -> str:
    """JobManager.stop on the process-wide manager."""
    return manager().stop(run_id, owner)


def wait(run_id: str, timeout: float = 600) -> Run:
    """JobManager.wait on the process-wide manager."""
    return manager().wait(run_id, timeout)


def active() -> list[Run]:
    """JobManager.active on the process-wide manager."""
    return manager().active()


def run_id_of(config, seed: int | None = None) -> str:
    """The id `submit(config, ...)` gives this experiment (the config's own seed wins, as in submit): where its
    stored run is, if there is one."""
    seed = getattr(config, "seed", seed) if seed is None else seed
    return run_id_for(kind_of(config), config_dict(config), seed)


def list_runs(kind: str | type | None = None) -> list[Run]:
    """JobManager.list_runs on the process-wide manager: `jobs.list_runs(SFTConfig)`."""
    return manager().list_runs(kind)
