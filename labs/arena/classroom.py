"""The classroom around the arena: the instructor password (constant-time compare, a growing wait after wrong
tries), one student one voice (a burst limit per client address), and the address students type or scan."""
from __future__ import annotations

import hmac
import io
import math
import socket
import threading
import time
from collections import deque
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from labs.arena import votes
from labs.core import db, settings


# With LLMLAB_DB_URL the limits are counted in the database, so every replica sees the same counts (a student who
# reconnects to another replica gains nothing); without it, in this process's memory.
limits_metadata = MetaData()
hits_table = Table("limit_hits", limits_metadata, Column("id", Integer, primary_key=True, autoincrement=True),
                   Column("key", String(200), nullable=False, index=True), Column("at", Float, nullable=False))
backoff_table = Table("limit_backoff", limits_metadata, Column("key", String(200), primary_key=True),
                      Column("fails", Integer, nullable=False, default=0),
                      Column("locked_until", Float, nullable=False, default=0.0))
_created: set[str] = set()


def limits_engine(url: str | None):
    """The engine the limits count in: `url`, else LLMLAB_DB_URL when set; None = this process's memory."""
    url = url or (settings.db_url() if settings.db_configured() else None)
    if not url:
        return None
    engine = db.engine_for(url)
    if url not in _created:
        limits_metadata.create_all(engine)
        _created.add(url)
    return engine


# ---------------------------------------------------------------------------------------------------------
# Instructor password: constant-time compare and a growing wait after repeated wrong tries
# ---------------------------------------------------------------------------------------------------------
class PasswordGate:
    """Checks the instructor password; after `free_tries` wrong ones in a row each try waits twice as long."""

    def __init__(self, free_tries: int = 3, first_wait_s: float = 2.0, max_wait_s: float = 60.0,
                 url: str | None = None):
        self.free_tries, self.first_wait_s, self.max_wait_s, self.url = free_tries, first_wait_s, max_wait_s, url
        self._failures: dict[str, int] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def _state(self, who: str) -> tuple[int, float]:
        engine = limits_engine(self.url)
        if engine is None:
            return self._failures.get(who, 0), self._locked_until.get(who, 0.0)
        with engine.connect() as conn:
            row = conn.execute(select(backoff_table.c.fails, backoff_table.c.locked_until).where(
                backoff_table.c.key == f"password:{who}")).first()
        return (row.fails, row.locked_until) if row else (0, 0.0)

    def _set(self, who: str, fails: int, locked_until: float) -> None:
        engine = limits_engine(self.url)
        if engine is None:
            self._failures[who], self._locked_until[who] = fails, locked_until
            return
        key = f"password:{who}"
        with engine.begin() as conn:
            if not conn.execute(update(backoff_table).where(backoff_table.c.key == key).values(
                    fails=fails, locked_until=locked_until)).rowcount:
                conn.execute(insert(backoff_table).values(key=key, fails=fails, locked_until=locked_until))

    def check(self, who: str, attempt: str, secret: str | None, now: float | None = None) -> tuple[bool, str]:
        """(ok, message) for an instructor password attempt by `who`; wrong attempts lock that caller out for a
        while. No secret configured: never ok."""
        now = time.time() if now is None else now
        if not secret:
            return False, "No instructor password is set: add arena_password to .streamlit/secrets.toml."
        try:
            return self._check(who, attempt, secret, now)
        except SQLAlchemyError:  # the shared counts live in LLMLAB_DB_URL's database, which is away
            return False, ("The password cannot be checked now: the database named by LLMLAB_DB_URL cannot be "
                           "reached. Try again in a moment.")

    def _check(self, who: str, attempt: str, secret: str, now: float) -> tuple[bool, str]:
        with self._lock:
            fails, locked_until = self._state(who)
            wait = locked_until - now
            if wait > 0:
                return False, f"Too many wrong passwords: try again in {math.ceil(wait)} s."
            if hmac.compare_digest((attempt or "").encode(), secret.encode()):
                self._set(who, 0, 0.0)
                return True, "Unlocked."
            fails += 1
            delay = min(self.first_wait_s * 2 ** (fails - self.free_tries), self.max_wait_s) \
                if fails >= self.free_tries else 0.0
            self._set(who, fails, now + delay if delay else locked_until)
            if delay:
                return False, f"Wrong password ({fails} in a row): wait {math.ceil(delay)} s before the next try."
            return False, "Wrong password."


instructor_gate = PasswordGate()


# ---------------------------------------------------------------------------------------------------------
# One student, one voice: a burst limit per client address (scripted stuffing), and the client's address
# ---------------------------------------------------------------------------------------------------------
class BurstLimit:
    """At most `n` votes per client address in any `seconds`-long window (a sliding window; in the database with
    LLMLAB_DB_URL, shared by every replica, else in this process). A person reads two answers before each vote; a
    script does not. None = settings.vote_burst()."""

    def __init__(self, n: int | None = None, seconds: float | None = None, url: str | None = None):
        self.n, self.seconds, self.url = n, seconds, url
        self._hits: dict[str, deque] = {}
        self._lock = threading.Lock()

    def check(self, client: str, now: float | None = None) -> None:
        """Count one vote from `client`, or raise VoteRejected (saying how long to wait) when over the limit."""
        now = time.time() if now is None else now
        n, seconds = (self.n, self.seconds) if self.n else settings.vote_burst()
        if self.url or settings.db_configured():
            try:
                return self._check_db(limits_engine(self.url), f"vote:{client}", n, seconds, now)
            except SQLAlchemyError:
                raise votes.VoteRejected("The vote cannot be counted now: the database named by LLMLAB_DB_URL "
                                         "cannot be reached. Try again in a moment.") from None
        with self._lock:
            hits = self._hits.setdefault(client, deque())
            while hits and hits[0] <= now - seconds:
                hits.popleft()
            if len(hits) >= n:
                wait = math.ceil(hits[0] + seconds - now)
                raise votes.VoteRejected(f"Too many votes from your address: at most {n} every {seconds:.0f} s. "
                                         f"Wait {wait} s, read both answers, then vote.")
            hits.append(now)
            if len(self._hits) > 10_000:  # forget idle addresses
                self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > now - seconds}

    @staticmethod
    def _check_db(engine, key: str, n: int, seconds: float, now: float) -> None:
        with engine.begin() as conn:
            conn.execute(delete(hits_table).where(hits_table.c.at <= now - seconds))  # every key's old hits
            count, first = conn.execute(select(func.count(), func.min(hits_table.c.at)).where(
                hits_table.c.key == key)).one()
            if count >= n:
                wait = math.ceil(first + seconds - now)
                raise votes.VoteRejected(f"Too many votes from your address: at most {n} every {seconds:.0f} s. "
                                         f"Wait {wait} s, read both answers, then vote.")
            conn.execute(insert(hits_table).values(key=key, at=now))


vote_limiter = BurstLimit()


def client_address(ip: str | None, headers: dict | None = None, trust_proxy: bool | None = None) -> str:
    """Who is on the other end, for the burst limit and the instructor's log.

    `ip` is Streamlit's st.context.ip_address (None when the browser is on this machine, or when every browser
    comes through a reverse proxy here). Behind a trusted proxy (LLMLAB_TRUST_PROXY=1) the client is the last
    X-Forwarded-For entry, the one the proxy added; without that setting the header is ignored (anyone can send it).
    """
    trust = settings.trust_proxy() if trust_proxy is None else trust_proxy
    if trust and isinstance(headers, dict):
        forwarded = next((v for k, v in headers.items() if str(k).lower() == "x-forwarded-for"), "")
        hops = [h.strip() for h in str(forwarded).split(",") if h.strip()]
        if hops:
            return hops[-1][:64]
    return ip[:64] if isinstance(ip, str) and ip else "this machine"


# ---------------------------------------------------------------------------------------------------------
# Classroom: the address students type (or scan)
# ---------------------------------------------------------------------------------------------------------
def lan_address() -> str:
    """This machine's address on the local network (no packet is sent: a UDP connect only picks a route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def join_url(current_url: str | None, port: int, path: str = "arena", code: str | None = None) -> str:
    """The address students open: the page's own URL, with localhost replaced by this machine's LAN address,
    carrying the room's join code (`?code=...`) when one is given."""
    query = urlencode({"code": code}) if code else ""
    if not current_url:
        return f"http://{lan_address()}:{port}/{path}" + (f"?{query}" if query else "")
    parts = urlsplit(current_url)
    if parts.hostname in ("localhost", "127.0.0.1", "::1", "0.0.0.0"):
        parts = parts._replace(netloc=f"{lan_address()}:{parts.port or port}")
    return urlunsplit(parts._replace(query=query, fragment=""))


def qr_png(text: str, scale: int = 6) -> bytes:
    """A QR code of `text` as PNG bytes (segno: pure Python, no image library needed)."""
    import segno  # optional dependency: only the classroom QR code uses it

    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=scale, border=2)
    return buf.getvalue()
