"""One run queue for every replica and worker: runs live in the database named by LLMLAB_DB_URL.

With `LLMLAB_RUN_QUEUE=db` (the default when LLMLAB_DB_URL is PostgreSQL) `jobs.manager()` is a `SharedJobManager`:
the same calls as the in-process queue (submit, get, stop, list_runs, ...), but a run is a row that any replica can
read and any worker can claim (`SELECT ... FOR UPDATE SKIP LOCKED`: two workers never take the same row), its
metrics are rows too, and its files go to LLMLAB_ARTIFACTS/runs/<id>/, a directory every machine mounts. The
queue is plain PostgreSQL rather than a broker (Celery, RQ) on purpose: the database is already there for the votes,
a run's state and its place in the queue are one row under one transaction, and nothing else needs running.

A run travels as its config and its step function, pickled; a loaded model inside it travels as its registry key
and is loaded where the run executes (a GPU worker loads it on CUDA). A step function that cannot travel (a
lambda, an object that holds a live connection) runs in this process's own queue instead, visible here only.
Workers (labs.runs.worker; `python -m labs.worker`) beat every LLMLAB_HEARTBEAT_S; a run whose worker stopped beating
(killed, its machine gone) is failed with that reason by whoever looks next, and the queue moves on.
"""
from __future__ import annotations

import io
import json
import pickle
import shutil
import threading
import time
from typing import Any, Callable

from sqlalchemy import (Boolean, Column, Float, Integer, LargeBinary, MetaData, String, Table, Text, delete, func,
                        insert, select, update)

from labs import models
from labs.core import db, settings
from labs.core.errors import ConfigError
from labs.runs import jobs
from labs.runs.jobs import ACTIVE, DONE, FAILED, QUEUED, RUNNING, STOPPED, Run

MAX_PAYLOAD_BYTES = 32 * 2**20  # a run whose inputs pickle larger than this runs in this process (an upload, say)
metadata = MetaData()
runs_table = Table(
    "run_queue", metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(64), nullable=False, index=True),
    Column("config", Text, nullable=False),  # JSON, as run.json stores it
    Column("seed", Integer),
    Column("owner", String(64), index=True),
    Column("label", String(200), nullable=False, default=""),
    Column("grp", String(64)),  # runs submitted together (a sweep) count as one toward the per-session limit
    Column("status", String(16), nullable=False, index=True),
    Column("created", Float, nullable=False),
    Column("started", Float),
    Column("ended", Float),
    Column("step", Integer, nullable=False, default=0),
    Column("total_steps", Integer),
    Column("notes", Text, nullable=False, default="[]"),
    Column("summary", Text, nullable=False, default="{}"),
    Column("reason", Text, nullable=False, default=""),
    Column("made_with", Text, nullable=False, default="{}"),
    Column("files", Text),
    Column("payload", LargeBinary),  # the pickled (config, step function); models as their keys
    Column("worker", String(200), nullable=False, default=""),  # host:pid of the worker that claimed it
    Column("heartbeat", Float),  # the worker's last beat while running
    Column("stop_requested", Boolean, nullable=False, default=False),
    Column("reaped", Boolean, nullable=False, default=False),  # failed because its worker stopped beating
)
metrics_table = Table(
    "run_metrics", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("step", Integer, nullable=False),
    Column("data", Text, nullable=False),
)


# -- a run as bytes: models travel as their keys ----------------------------------------------------------------
class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, models.LoadedModel):
            return ("model", obj.key)
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, load_model: Callable[[str], Any]):
        super().__init__(io.BytesIO(data))
        self._load_model = load_model

    def persistent_load(self, pid):
        kind, key = pid
        if kind != "model":
            raise pickle.UnpicklingError(f"unknown reference {kind!r}")
        return self._load_model(key)


def dumps(config: Any, fn: Callable) -> bytes | None:
    """(config, fn) as bytes, or None when it cannot travel (then it runs where it was submitted): it does not
    pickle, it is too large, or it is defined in a script run as __main__ (another process cannot import it)."""
    if "__main__" in (type(config).__module__, getattr(getattr(fn, "func", fn), "__module__", "")):
        return None
    buf = io.BytesIO()
    try:
        _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump((config, fn))
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
        return None
    data = buf.getvalue()
    return data if len(data) <= MAX_PAYLOAD_BYTES else None


_MODELS: dict[str, models.LoadedModel] = {}
_models_lock = threading.Lock()


def load_model_once(key: str) -> models.LoadedModel:
    """A worker's models: each loaded on first use (on this machine's device) and kept."""
    with _models_lock:
        if key not in _MODELS:
            _MODELS[key] = models.load_model(key)
        return _MODELS[key]


def loads(data: bytes, load_model: Callable[[str], Any] = load_model_once) -> tuple[Any, Callable]:
    """The (config, fn) that `dumps` wrote, with each model loaded here."""
    return _Unpickler(data, load_model).load()


# -- rows <-> runs -----------------------------------------------------------------------------------------------
def _run_from_row(row, metrics: list[dict] | None = None) -> Run:
    return Run(id=row.id, kind=row.kind, config=json.loads(row.config), seed=row.seed, owner=row.owner,
               label=row.label, status=row.status, created=row.created, started=row.started, ended=row.ended,
               step=row.step or 0, total_steps=row.total_steps, metrics=metrics or [], notes=json.loads(row.notes),
               summary=json.loads(row.summary), reason=row.reason, group=row.grp,
               made_with=json.loads(row.made_with), files=json.loads(row.files) if row.files else None,
               worker=row.worker)


def lapse_s() -> float:
    """How long a running run's worker may stay silent before its run is failed: five heartbeats, at least 2 s."""
    return max(2.0, 5 * settings.heartbeat_s())


def reap(engine, now: float | None = None) -> list[str]:
    """Fail every running run whose worker stopped beating (killed, its machine gone); returns their ids."""
    now = time.time() if now is None else now
    cutoff = now - lapse_s()
    with engine.begin() as conn:
        dead = conn.execute(select(runs_table.c.id, runs_table.c.worker, runs_table.c.heartbeat).where(
            runs_table.c.status == RUNNING, runs_table.c.heartbeat < cutoff)).all()
        for run_id, worker, beat in dead:
            conn.execute(update(runs_table).where(runs_table.c.id == run_id, runs_table.c.status == RUNNING,
                                                  runs_table.c.heartbeat < cutoff).values(
                status=FAILED, ended=now, reaped=True,
                reason=f"Its worker {worker} stopped answering (no heartbeat for {now - beat:.0f} s): the machine "
                       "or process running it was stopped. Start the run again."))
    return [d[0] for d in dead]


class SharedJobManager(jobs.JobManager):
    """jobs.JobManager's calls on the database queue. Runs that cannot travel use the in-process queue it
    inherits (`_runs`), so one object answers for both."""

    def __init__(self, url: str | None = None, start_worker: bool | None = None):
        super().__init__()
        self.url = url or settings.db_url()
        db.check_reachable(self.url, "the run queue")
        self.engine = db.engine_for(self.url)
        metadata.create_all(self.engine)
        self._local_fns: dict[str, tuple[Any, Callable]] = {}  # runs submitted here: a worker here uses these
        self.worker = None
        if (settings.app_worker() if start_worker is None else start_worker) and _worker_factory is not None:
            self.worker = _worker_factory(self)  # this app process takes runs too (one laptop, one classroom server)

    # -- submit ---------------------------------------------------------------------------------------------
    def submit(self, config: Any, fn: Callable, *, seed: int | None = None, owner: str | None = None,
               label: str = "", replay: bool = True, group: str | None = None) -> str:
        payload = dumps(config, fn)
        if payload is None:  # a lambda, a live connection, a huge upload: this process runs it
            return super().submit(config, fn, seed=seed, owner=owner, label=label, replay=replay, group=group)
        seed = getattr(config, "seed", seed) if seed is None else seed
        kind, cfg, run_id = jobs.kind_of(config), jobs.config_dict(config), jobs.run_id_of(config, seed)
        with self.engine.begin() as conn:
            row = conn.execute(select(runs_table).where(runs_table.c.id == run_id).with_for_update()).first()
            if row is not None:
                if row.status in ACTIVE:
                    return run_id
                if replay and row.status == DONE and not jobs.stale_reason(_run_from_row(row), cfg):
                    self._live[run_id] = (config, fn)
                    return run_id
            self._check_shared_limit(conn, owner, group)
            conn.execute(delete(metrics_table).where(metrics_table.c.run_id == run_id))
            conn.execute(delete(runs_table).where(runs_table.c.id == run_id))
            shutil.rmtree(jobs.runs_dir() / run_id, ignore_errors=True)
            run = Run(id=run_id, kind=kind, config=cfg, seed=seed, owner=owner, label=label or kind, group=group,
                      made_with=jobs.provenance.made_with(cfg))
            conn.execute(insert(runs_table).values(
                id=run_id, kind=kind, config=json.dumps(cfg), seed=seed, owner=owner, label=run.label, grp=group,
                status=QUEUED, created=run.created, made_with=json.dumps(run.made_with), payload=payload,
                notes="[]", summary="{}", reason="", step=0, stop_requested=False, reaped=False, worker=""))
        self._live.pop(run_id, None)  # a fresh run: no longer the replayed one
        self._local_fns[run_id] = (config, fn)
        if self.worker is not None:
            self.worker.wake()
        return run_id

    def _check_shared_limit(self, conn, owner: str | None, group: str | None) -> None:
        limit = settings.runs_per_session() if self.runs_per_session is None else self.runs_per_session
        if owner is None or not limit:
            return
        mine = conn.execute(select(runs_table.c.id, runs_table.c.grp, runs_table.c.label, runs_table.c.status,
                                   runs_table.c.step, runs_table.c.total_steps, runs_table.c.created).where(
            runs_table.c.owner == owner, runs_table.c.status.in_(ACTIVE)).order_by(runs_table.c.created)).all()
        mine = [r for r in mine if not (group is not None and r.grp == group)]
        if len({r.grp or r.id for r in mine}) < limit:
            return
        first = mine[0]
        position = self._position(conn, first.created) if first.status == QUEUED else 0
        where = (f"waiting in the queue at position {position}" if position
                 else f"running (step {first.step}/{first.total_steps or '?'})")
        raise jobs.SessionBusy(f"You already have a run {where}: {first.label}. One run per person at a time keeps "
                               "the shared queue fair: wait for it to finish, or press Stop on it (sidebar), then "
                               "start this one.", first.id, position)

    # -- read -----------------------------------------------------------------------------------------------
    @staticmethod
    def _position(conn, created: float) -> int:
        return int(conn.execute(select(func.count()).select_from(runs_table).where(
            runs_table.c.status == QUEUED, runs_table.c.created < created)).scalar()) + 1

    def get(self, run_id: str) -> Run | None:
        if run_id in self._runs:  # a run of this process's own queue
            return super().get(run_id)
        with self.engine.connect() as conn:
            row = conn.execute(select(runs_table).where(runs_table.c.id == run_id)).first()
            if row is None:
                return super().get(run_id)  # a run stored as files only (made before the queue moved here)
            metrics = [json.loads(m) for m in conn.execute(select(metrics_table.c.data).where(
                metrics_table.c.run_id == run_id).order_by(metrics_table.c.id)).scalars()]
            run = _run_from_row(row, metrics)
            run.position = self._position(conn, row.created) if row.status == QUEUED else 0
        run.replayed = run_id in self._live  # replayed here, and not yet asked to run live
        return run

    def active(self) -> list[Run]:
        reap(self.engine)
        with self.engine.connect() as conn:
            ids = list(conn.execute(select(runs_table.c.id).where(runs_table.c.status.in_(ACTIVE))).scalars())
        here = [r for r in super().active()]
        shared = [r for r in (self.get(i) for i in ids) if r is not None]
        return sorted(here + shared, key=lambda r: (r.status != RUNNING, r.position, r.created))

    def list_runs(self, kind: str | type | None = None) -> list[Run]:
        if isinstance(kind, type):
            kind = jobs.kind_of(kind)
        with self.engine.connect() as conn:
            query = select(runs_table.c.id)
            ids = set(conn.execute(query if kind is None else query.where(runs_table.c.kind == kind)).scalars())
        runs = [r for r in (self.get(i) for i in ids) if r is not None]
        seen = {r.id for r in runs}
        runs += [r for r in super().list_runs(kind) if r.id not in seen]
        return sorted(runs, key=lambda r: r.created, reverse=True)

    # -- control --------------------------------------------------------------------------------------------
    def stop(self, run_id: str, owner: str | None = None) -> str:
        """Stop a run wherever it executes: a queued one at once, a running one at its worker's next beat."""
        if run_id in self._runs:
            return super().stop(run_id, owner)
        with self.engine.begin() as conn:
            row = conn.execute(select(runs_table.c.status, runs_table.c.owner).where(
                runs_table.c.id == run_id).with_for_update()).first()
            if row is None:
                return f"There is no run {run_id}."
            if owner is not None and row.owner not in (None, owner):
                return "That run belongs to someone else; only its owner can stop it."
            if row.status not in ACTIVE:
                return f"Run {run_id} has already {row.status}; nothing to stop."
            if row.status == QUEUED:
                conn.execute(update(runs_table).where(runs_table.c.id == run_id).values(
                    status=STOPPED, reason="Stopped before it started.", ended=time.time()))
                return f"Stopped {run_id} before it started."
            conn.execute(update(runs_table).where(runs_table.c.id == run_id).values(stop_requested=True))
        return f"Stopping {run_id} (within one step, wherever it runs)."

    def delete(self, run_id: str) -> None:
        with self.engine.begin() as conn:
            status = conn.execute(select(runs_table.c.status).where(runs_table.c.id == run_id)).scalar()
            if status in ACTIVE:
                raise ConfigError("Stop the run before deleting it.")
            conn.execute(delete(metrics_table).where(metrics_table.c.run_id == run_id))
            conn.execute(delete(runs_table).where(runs_table.c.id == run_id))
        super().delete(run_id)

    def local_step_function(self, run_id: str) -> tuple[Any, Callable] | None:
        """The (config, fn) this process submitted for `run_id`, handed over once (its own worker uses them: the
        models it already holds, no reload)."""
        return self._local_fns.pop(run_id, None)


_worker_factory: Callable[["SharedJobManager"], Any] | None = None  # labs.runs.worker registers itself here


def use_worker_factory(factory: Callable[["SharedJobManager"], Any]) -> None:
    """How an app process starts its own worker thread (labs.runs.worker.start_in_app)."""
    global _worker_factory
    _worker_factory = factory


def make_manager() -> jobs.JobManager:
    """The queue `jobs.manager()` builds: the database's when LLMLAB_RUN_QUEUE says db, else this process's."""
    return SharedJobManager() if settings.run_queue() == "db" else jobs.JobManager()


jobs.use_factory(make_manager)
