"""One run queue for every replica and worker (labs.runs.shared, labs.runs.worker): in one process on SQLite, then
on a real PostgreSQL server with two replica processes and two worker processes, all on loopback."""
from __future__ import annotations

import functools
import ipaddress
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update

from labs.arena import classroom, votes
from labs.core import db
from labs.models import adapters
from labs.runs import jobs, shared
from labs.runs import worker as runs_worker
from tests.labs.queue_steps import CountConfig, count_steps

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def queue_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_ARTIFACTS", str(tmp_path / "shared"))
    monkeypatch.setenv("LLMLAB_HEARTBEAT_S", "0.2")
    return f"sqlite:///{tmp_path / 'queue.sqlite'}"


def _steps(tag: str, n: int = 3, delay: float = 0.01):
    return CountConfig(n=n, delay=delay, tag=tag), functools.partial(count_steps, lm=None)


def test_a_queued_run_is_claimed_run_recorded_and_replayed(queue_env):
    app = shared.SharedJobManager(queue_env, start_worker=False)
    run_id = app.submit(*_steps("a"), owner="s1")
    assert app.get(run_id).status == jobs.QUEUED and app.get(run_id).position == 1
    assert app.submit(*_steps("a"), owner="s1") == run_id  # queued already: not queued twice
    worker = runs_worker.Worker(queue_env, name="w1")
    worker.run_forever(max_runs=1)
    run = shared.SharedJobManager(queue_env, start_worker=False).get(run_id)  # another replica reads the same row
    assert run.status == jobs.DONE and run.worker == "w1" and [m["step"] for m in run.metrics] == [1, 2, 3]
    assert run.summary["tag"] == "a" and (jobs.runs_dir() / run_id / "result.json").exists()
    assert str(jobs.runs_dir()).startswith(os.environ["LLMLAB_ARTIFACTS"])
    other = shared.SharedJobManager(queue_env, start_worker=False)
    assert other.submit(*_steps("a")) == run_id and other.get(run_id).replayed  # done and current: replayed
    assert [r.id for r in other.list_runs(CountConfig)] == [run_id]


def test_stop_a_queued_run_and_a_step_function_that_cannot_travel_runs_here(queue_env):
    app = shared.SharedJobManager(queue_env, start_worker=False)
    run_id = app.submit(*_steps("stop-me"))
    assert "before it started" in app.stop(run_id)
    assert app.get(run_id).status == jobs.STOPPED
    here = app.submit(CountConfig(tag="lambda"), lambda ctx: {"ok": True})  # a lambda does not pickle
    assert jobs.JobManager.wait(app, here, timeout=30).status == jobs.DONE
    assert {run_id, here} <= {r.id for r in app.list_runs()}


def test_two_workers_never_run_the_same_run(queue_env):
    app = shared.SharedJobManager(queue_env, start_worker=False)
    ids = {app.submit(*_steps(f"r{i}", n=2)) for i in range(10)}
    workers = [runs_worker.Worker(queue_env, name=f"w{i}", poll_s=0.05) for i in range(2)]
    threads = [w.start_thread() for w in workers]
    deadline = time.time() + 60
    while time.time() < deadline and any(app.get(i).active for i in ids):
        time.sleep(0.05)
    for w in workers:
        w.halt()
    for t in threads:
        t.join(10)
    a, b = (set(w.finished) for w in workers)
    assert a | b == ids and not a & b
    assert all([m["step"] for m in app.get(i).metrics] == [1, 2] for i in ids)  # each step recorded once


def test_a_silent_worker_fails_its_run_and_an_end_waits_for_the_database(queue_env, monkeypatch):
    app = shared.SharedJobManager(queue_env, start_worker=False)
    run_id = app.submit(*_steps("killed"))
    worker = runs_worker.Worker(queue_env, name="gone")
    run, _ = worker.claim()
    assert app.get(run_id).status == jobs.RUNNING and app.get(run_id).worker == "gone"
    with app.engine.begin() as conn:  # the worker was killed: no beat since
        conn.execute(update(shared.runs_table).values(heartbeat=time.time() - 60))
    assert shared.reap(app.engine) == [run_id]
    failed = app.get(run_id)
    assert failed.status == jobs.FAILED and "gone stopped answering" in failed.reason
    # the database goes away as a run ends: the end is kept on this machine, then recorded once
    second = app.submit(*_steps("spooled"))
    real = worker._record
    monkeypatch.setattr(worker, "_record", lambda record: (_ for _ in ()).throw(OSError("database away")))
    worker.run_forever(max_runs=1)
    assert app.get(second).status == jobs.RUNNING and list(runs_worker.spool_dir().glob(f"{second}.json"))
    monkeypatch.setattr(worker, "_record", real)
    assert worker.flush_spool() == 1 and worker.flush_spool() == 0
    assert app.get(second).status == jobs.DONE and [m["step"] for m in app.get(second).metrics] == [1, 2, 3]


def test_limits_count_in_the_database_for_every_replica(queue_env, monkeypatch):
    monkeypatch.setenv("LLMLAB_RUNS_PER_SESSION", "1")
    one, two = (shared.SharedJobManager(queue_env, start_worker=False) for _ in range(2))
    one.submit(*_steps("mine"), owner="student")
    with pytest.raises(jobs.SessionBusy, match="waiting in the queue at position 1"):
        two.submit(*_steps("another"), owner="student")
    a, b = classroom.BurstLimit(2, 60, url=queue_env), classroom.BurstLimit(2, 60, url=queue_env)
    a.check("10.0.0.7")
    b.check("10.0.0.7")
    with pytest.raises(votes.VoteRejected, match="at most 2 every 60 s"):
        a.check("10.0.0.7")
    b.check("10.0.0.8")  # another address has its own window
    g1, g2 = classroom.PasswordGate(free_tries=2, url=queue_env), classroom.PasswordGate(free_tries=2, url=queue_env)
    assert g1.check("x", "wrong", "secret", now=1000.0) == (False, "Wrong password.")
    ok, msg = g2.check("x", "wrong", "secret", now=1000.0)
    assert not ok and "wait 2 s" in msg
    assert "try again in" in g1.check("x", "secret", "secret", now=1001.0)[1]  # the other replica's lock holds
    assert g1.check("x", "secret", "secret", now=1003.0)[0]


def test_database_down_at_start_names_the_setting(tmp_path):
    url = "postgresql://llmlab:pw@127.0.0.1:1/nowhere"  # loopback, a port nothing listens on
    with pytest.raises(db.DatabaseUnavailable, match="LLMLAB_DB_URL=postgresql\\+psycopg://llmlab:\\*\\*\\*@127.0.0.1:1"):
        shared.SharedJobManager(url, start_worker=False)
    env = dict(os.environ, LLMLAB_DB_URL=url)
    out = subprocess.run([sys.executable, "-m", "labs.worker"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "LLMLAB_DB_URL" in out.stderr and "pw" not in out.stderr
    env.pop("LLMLAB_DB_URL")
    out = subprocess.run([sys.executable, "-m", "labs.worker"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "needs LLMLAB_DB_URL" in out.stderr


# ---- the real thing: PostgreSQL, two replicas, two workers, on loopback ------------------------------------
class Replica:
    def __init__(self, env: dict):
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.labs.queue_steps"], cwd=ROOT, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.lock = threading.Lock()

    def __call__(self, **cmd) -> dict:
        with self.lock:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
            answer = json.loads(self.proc.stdout.readline())
        assert "error" not in answer, answer
        return answer

    def wait(self, run_id: str, until, timeout: float = 120) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            run = self(op="get", id=run_id)["run"]
            if run and until(run):
                return run
            time.sleep(0.1)
        raise AssertionError(f"{run_id} never got there: {run}")


def test_two_replicas_and_two_workers_share_one_queue_on_postgresql(postgres_server, tmp_path, monkeypatch):
    postgres_url = postgres_server.url
    assert ipaddress.ip_address(urlsplit(postgres_url).hostname).is_loopback  # nothing leaves this machine
    engine = db.engine_for(postgres_url)
    shared.metadata.create_all(engine)
    with engine.begin() as conn:
        for table in (shared.metrics_table, shared.runs_table):
            conn.execute(table.delete())
        classroom.limits_metadata.drop_all(conn)
    base = dict(os.environ, LLMLAB_DB_URL=postgres_url, LLMLAB_RUN_QUEUE="db", LLMLAB_APP_WORKER="0",
                LLMLAB_ARTIFACTS=str(tmp_path / "shared"), LLMLAB_TINY_MODELS="1", LLMLAB_HEARTBEAT_S="0.3",
                LLMLAB_RUNS_PER_SESSION="0", LLMLAB_VOTE_BURST="3/60", LLMLAB_CPU_THREADS="1")
    procs = []
    try:
        replicas = [Replica(dict(base, LLMLAB_HOME=str(tmp_path / f"replica{i}"))) for i in range(2)]
        procs += [r.proc for r in replicas]
        workers = [subprocess.Popen([sys.executable, "-m", "labs.worker", "--poll", "0.1", "--name", f"w{i}"],
                                    cwd=ROOT, env=dict(base, LLMLAB_HOME=str(tmp_path / f"worker{i}")),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(2)]
        procs += workers
        assert all(r(op="manager")["class"] == "SharedJobManager" for r in replicas)
        # 8 runs from both replicas: 4 LoRA fine-tunes on the tiny model, 4 counting runs
        ids = [replicas[i % 2](op="submit", kind="lora" if i < 4 else "count", seed=i, owner=f"s{i}")["id"]
               for i in range(8)]
        assert len(set(ids)) == 8
        done = [replicas[(i + 1) % 2].wait(run_id, lambda r: r["status"] not in jobs.ACTIVE)
                for i, run_id in enumerate(ids)]
        assert [r["status"] for r in done] == [jobs.DONE] * 8, done
        assert {r["worker"] for r in done} <= {"w0", "w1"}
        for replica in replicas:
            assert set(ids) <= set(replica(op="list")["ids"])
        with engine.connect() as conn:  # exactly once: one row per run, each step's metrics written once
            rows = conn.execute(select(shared.metrics_table.c.run_id, shared.metrics_table.c.step)).all()
        for run_id in ids:
            steps = [s for r, s in rows if r == run_id]
            assert steps and len(steps) == len(set(steps)), (run_id, steps)
        assert all((tmp_path / "shared" / "runs" / i / "adapter").is_dir() for i in ids[:4])  # in the shared store
        monkeypatch.setenv("LLMLAB_ARTIFACTS", str(tmp_path / "shared"))  # what every replica's pickers list
        assert {a.meta.get("run_id") for a in adapters.list_adapters()} >= set(ids[:4])

        # Stop, pressed on the other replica, stops the run on whichever worker has it
        long_id = replicas[0](op="submit", kind="count", seed=100, n=2000, delay=0.02)["id"]
        replicas[1].wait(long_id, lambda r: r["status"] == jobs.RUNNING and r["step"] > 0)
        assert "wherever it runs" in replicas[1](op="stop", id=long_id)["message"]
        stopped = replicas[0].wait(long_id, lambda r: r["status"] not in jobs.ACTIVE, timeout=30)
        assert stopped["status"] == jobs.STOPPED and "Stopped by the user" in stopped["reason"]

        # kill -9 the worker of a running run: the run fails with the reason, the other worker takes the queue
        doomed = replicas[0](op="submit", kind="count", seed=200, n=2000, delay=0.02)["id"]
        running = replicas[1].wait(doomed, lambda r: r["status"] == jobs.RUNNING and r["step"] > 0)
        victim = workers[int(running["worker"][1:])]
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        after = replicas[1](op="submit", kind="count", seed=201)["id"]
        failed = replicas[0].wait(doomed, lambda r: r["status"] not in jobs.ACTIVE, timeout=30)
        assert failed["status"] == jobs.FAILED and f"{running['worker']} stopped answering" in failed["reason"]
        took = replicas[0].wait(after, lambda r: r["status"] not in jobs.ACTIVE, timeout=60)
        assert took["status"] == jobs.DONE and took["worker"] != running["worker"]

        # the database goes away while a run ends: its end waits on the worker's disk, then is recorded once
        away = replicas[0](op="submit", kind="count", seed=300, n=150, delay=0.02)["id"]
        replicas[1].wait(away, lambda r: r["status"] == jobs.RUNNING and r["step"] > 0)
        postgres_server.stop()
        time.sleep(5)  # the run (3 s) ends while the database is down
        postgres_server.start()
        # (its worker was silent meanwhile, so another worker may have failed it for a moment: the end overrides that)
        back = replicas[1].wait(away, lambda r: r["status"] == jobs.DONE, timeout=60)
        assert back["metrics"] == 150 and back["reason"] == "", back
        with engine.connect() as conn:
            steps = [s for (s,) in conn.execute(select(shared.metrics_table.c.step).where(
                shared.metrics_table.c.run_id == away))]
        assert sorted(steps) == list(range(1, 151))  # every step once: nothing lost, nothing twice

        # the vote burst holds across both replicas (3 a minute from one address)
        assert [replicas[i](op="vote", client="10.1.2.3")["ok"] for i in (0, 1, 0)] == [True, True, True]
        assert not replicas[1](op="vote", client="10.1.2.3")["ok"]
        assert not replicas[0](op="vote", client="10.1.2.3")["ok"]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)
        engine.dispose()


def test_limits_with_the_database_away_refuse_with_a_message():
    url = "postgresql://llmlab:pw@127.0.0.1:1/nowhere"  # loopback, nothing listens
    with pytest.raises(votes.VoteRejected, match="cannot be counted now"):
        classroom.BurstLimit(3, 60, url=url).check("10.0.0.9")
    ok, message = classroom.PasswordGate(url=url).check("x", "secret", "secret")
    assert not ok and "LLMLAB_DB_URL cannot be reached" in message
