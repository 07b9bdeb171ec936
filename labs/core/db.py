"""SQL engines for every shared table (votes, the run queue, the shared limits): one URL, one way to connect.

`LLMLAB_DB_URL` names the database (labs.core.settings.db_url; SQLite under LLMLAB_HOME without it). postgresql://
means psycopg 3, the driver we install. SQLite gets WAL and a busy timeout so several threads and processes wait for
each other instead of failing.
"""
from __future__ import annotations

import threading

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url

from labs.core.errors import ConfigError


def normalise_url(url: str) -> str:
    """postgresql:// means psycopg 3 here (the driver we install), not SQLAlchemy's default psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def safe_url(url: str) -> str:
    """The URL with its password masked, for messages."""
    try:
        return make_url(normalise_url(url)).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL
        return "(unparsable URL)"


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine for `url`; SQLite gets WAL and a 30 s busy timeout so concurrent voters wait."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        # timeout: a writer waits up to 30 s for another writer instead of failing with "database is locked".
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer: a room can vote while the board refreshes
            cur.execute("PRAGMA synchronous=FULL")  # an acknowledged vote survives a crash, not just a killed process
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


_ENGINES: dict[str, Engine] = {}
_lock = threading.Lock()


def engine_for(url: str) -> Engine:
    """One engine (and its connection pool) per URL per process."""
    key = normalise_url(url)
    with _lock:
        if key not in _ENGINES:
            _ENGINES[key] = make_engine(key)
        return _ENGINES[key]


class DatabaseUnavailable(ConfigError):
    """The database named by LLMLAB_DB_URL cannot be reached; the message names the variable and the URL (its
    password masked)."""


def check_reachable(url: str, what: str = "the run queue") -> None:
    """Connect once and run SELECT 1, or raise DatabaseUnavailable with a message a person can act on."""
    try:
        with engine_for(url).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any driver error: refused, wrong password, unknown database
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(
            f"The database for {what} cannot be reached at LLMLAB_DB_URL={safe_url(url)} ({type(exc).__name__}: "
            f"{first[:200]}). Start it, fix LLMLAB_DB_URL, or unset it to keep everything on this machine.") from None
