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

from labs.arena import votes
from labs.core import settings


# ---------------------------------------------------------------------------------------------------------
# Instructor password: constant-time compare and a growing wait after repeated wrong tries
# ---------------------------------------------------------------------------------------------------------
class PasswordGate:
    """Checks the instructor password; after `free_tries` wrong ones in a row each try waits twice as long."""

    def __init__(self, free_tries: int = 3, first_wait_s: float = 2.0, max_wait_s: float = 60.0):
        self.free_tries, self.first_wait_s, self.max_wait_s = free_tries, first_wait_s, max_wait_s
        self._failures: dict[str, int] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, who: str, attempt: str, secret: str | None, now: float | None = None) -> tuple[bool, str]:
        """(ok, message) for an instructor password attempt by `who`; wrong attempts lock that caller out for a
        while. No secret configured: never ok."""
        now = time.time() if now is None else now
        if not secret:
            return False, "No instructor password is set: add arena_password to .streamlit/secrets.toml."
        with self._lock:
            wait = self._locked_until.get(who, 0.0) - now
            if wait > 0:
                return False, f"Too many wrong passwords: try again in {math.ceil(wait)} s."
            if hmac.compare_digest((attempt or "").encode(), secret.encode()):
                self._failures.pop(who, None)
                return True, "Unlocked."
            fails = self._failures.get(who, 0) + 1
            self._failures[who] = fails
            if fails >= self.free_tries:
                delay = min(self.first_wait_s * 2 ** (fails - self.free_tries), self.max_wait_s)
                self._locked_until[who] = now + delay
                return False, f"Wrong password ({fails} in a row): wait {math.ceil(delay)} s before the next try."
            return False, "Wrong password."


instructor_gate = PasswordGate()


# ---------------------------------------------------------------------------------------------------------
# One student, one voice: a burst limit per client address (scripted stuffing), and the client's address
# ---------------------------------------------------------------------------------------------------------
class BurstLimit:
    """At most `n` votes per client address in any `seconds`-long window (a sliding window; in memory, per
    server process). A person reads two answers before each vote; a script does not. None = settings.vote_burst()."""

    def __init__(self, n: int | None = None, seconds: float | None = None):
        self.n, self.seconds = n, seconds
        self._hits: dict[str, deque] = {}
        self._lock = threading.Lock()

    def check(self, client: str, now: float | None = None) -> None:
        """Count one vote from `client`, or raise VoteRejected (saying how long to wait) when over the limit."""
        now = time.time() if now is None else now
        n, seconds = (self.n, self.seconds) if self.n else settings.vote_burst()
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
