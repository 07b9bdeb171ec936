"""A class server students cannot misuse: each attack is tried and must be refused with a clear message, and
nothing that was there before (votes, runs) may be lost.

Network rule for these tests: traffic only ever goes to loopback test servers. Private and metadata addresses
are produced by a patched DNS (socket.getaddrinfo) and must be refused *before* any connection; a guard on
socket.create_connection fails the test if anything tries to connect elsewhere.
"""
from __future__ import annotations

import dataclasses
import http.server
import socket
import threading
import time

import pytest

from labs import arena
from labs.runs import jobs
from labs.core import settings
from labs.arena import votes
from labs.rag import load

LOOPBACK = {"127.0.0.1", "::1"}


# ------------------------------------------------------------------------------------------ a loopback web server
class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}
    hits: list = []

    def do_GET(self):  # noqa: N802 - http.server's name
        self.hits.append(self.path)
        status, headers, body, delay = self.routes.get(self.path, (404, {}, b"not here", 0))
        time.sleep(delay)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def web():
    """An HTTP server on 127.0.0.1 with a 'secret' page, like an internal service or the app's own endpoint."""
    handler = type("Handler", (_Handler,), {"routes": {}, "hits": []})
    handler.routes["/secret.txt"] = (200, {"Content-Type": "text/plain"}, b"internal secret: do not show", 0)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def connections(monkeypatch):
    """Every address a fetch connects to; any non-loopback connection fails the test before it happens."""
    seen: list[str] = []
    real = socket.create_connection

    def guarded(address, *args, **kwargs):
        host = address[0]
        seen.append(host)
        assert host in LOOPBACK, f"the test tried to connect to {host}: only loopback is allowed"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    return seen


def fake_dns(monkeypatch, names: dict[str, list[str]]) -> list[str]:
    """Resolve the given fake host names to the given addresses; everything else as usual. Returns the lookups."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        lookups.append(host)
        if host in names:
            out = []
            for addr in names[host]:
                family = socket.AF_INET6 if ":" in addr else socket.AF_INET
                sockaddr = (addr, port, 0, 0) if family == socket.AF_INET6 else (addr, port)
                out.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
            return out
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


def allow_loopback_as_public(monkeypatch) -> None:
    """Pretend 127.0.0.1 is a public address, so a loopback test server can play 'a site on the internet'.
    Every other address is checked for real."""
    real = load.address_problem
    monkeypatch.setattr(load, "address_problem", lambda a: None if a == "127.0.0.1" else real(a))


# ------------------------------------------------------------------------------------------ 1. URL loading
def test_local_server_is_refused_and_never_asked(web, connections):
    server, handler = web
    port = server.server_address[1]
    for url in (f"http://127.0.0.1:{port}/secret.txt", f"http://localhost:{port}/secret.txt",
                f"http://[::ffff:127.0.0.1]:{port}/secret.txt", f"http://2130706433:{port}/secret.txt",
                f"http://0.0.0.0:{port}/secret.txt", f"http://[::1]:{port}/secret.txt"):
        with pytest.raises(load.LoadError, match="Refused") as info:
            load.fetch_url(url, timeout=3)
        message = str(info.value)
        assert "public web pages" in message and "upload" in message, message
        assert "secret" not in message.split("Refused")[0]
    assert handler.hits == [] and connections == []  # refused before any connection


@pytest.mark.parametrize("address,words", [
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.10", "private"),
    ("169.254.169.254", "link-local"), ("100.64.0.7", "not a public"), ("224.0.0.251", "multicast"),
    ("0.0.0.0", "unspecified"), ("240.0.0.1", ""), ("fd00::1", "private"), ("fe80::1", "link-local"),
    ("ff02::1", "multicast"), ("::", "unspecified"), ("::ffff:10.1.2.3", "10.1.2.3"), ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
])
def test_inside_addresses_from_dns_are_refused_before_connecting(monkeypatch, connections, address, words):
    fake_dns(monkeypatch, {"intranet.example": [address]})
    with pytest.raises(load.LoadError, match="Refused: intranet.example leads to") as info:
        load.fetch_url("http://intranet.example/admin", timeout=3)
    assert words in str(info.value)
    assert connections == []


def test_one_inside_address_among_public_ones_is_enough_to_refuse(monkeypatch, connections):
    fake_dns(monkeypatch, {"mixed.example": ["93.184.216.34", "10.0.0.1"]})  # DNS could rotate to the inside one
    with pytest.raises(load.LoadError, match="10.0.0.1 is a private-network address"):
        load.fetch_url("https://mixed.example/", timeout=3)
    assert connections == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://127.0.0.1:70/",
                                 "javascript:alert(1)", "  ", "http://user:pw@example.com/"])
def test_only_plain_http_and_https(url, connections):
    with pytest.raises(load.LoadError, match="http|user name"):
        load.fetch_url(url, timeout=2)
    assert connections == []


def test_redirect_from_an_allowed_site_to_inside_addresses_is_refused(web, monkeypatch, connections):
    server, handler = web
    port = server.server_address[1]
    lookups = fake_dns(monkeypatch, {"public.example": ["127.0.0.1"], "metadata.example": ["169.254.169.254"]})
    allow_loopback_as_public(monkeypatch)  # the loopback server plays an allowed public site
    handler.routes["/page"] = (200, {"Content-Type": "text/html"}, b"<p>Hello from the public site</p>", 0)
    handler.routes["/moved"] = (301, {"Location": "/page"}, b"", 0)
    handler.routes["/to-private"] = (302, {"Location": "http://10.0.0.1/secret"}, b"", 0)
    handler.routes["/to-metadata"] = (307, {"Location": "http://metadata.example/latest/meta-data/"}, b"", 0)
    handler.routes["/to-file"] = (302, {"Location": "file:///etc/passwd"}, b"", 0)
    handler.routes["/loop"] = (302, {"Location": "/loop"}, b"", 0)
    base = f"http://public.example:{port}"

    (doc,) = load.fetch_url(f"{base}/moved", timeout=3)  # an allowed redirect is followed (and checked)
    assert "Hello from the public site" in doc.text and doc.source == f"{base}/moved"

    with pytest.raises(load.LoadError, match=r"Refused: 10\.0\.0\.1 leads to 10\.0\.0\.1 is a private"):
        load.fetch_url(f"{base}/to-private", timeout=3)
    with pytest.raises(load.LoadError, match="Refused: metadata.example leads to 169.254.169.254 is a link-local"):
        load.fetch_url(f"{base}/to-metadata", timeout=3)
    with pytest.raises(load.LoadError, match="http:// or https://"):
        load.fetch_url(f"{base}/to-file", timeout=3)
    with pytest.raises(load.LoadError, match="redirects more than"):
        load.fetch_url(f"{base}/loop", timeout=3)
    assert set(connections) == {"127.0.0.1"}  # only ever the allowed first hop
    assert "metadata.example" in lookups and "/secret" not in handler.hits


def test_connection_goes_to_the_checked_address_only(web, monkeypatch, connections):
    """DNS rebinding: the second answer for a name differs from the first. The loader resolves once, checks, and
    connects to exactly that address; the socket's peer is checked too."""
    server, handler = web
    port = server.server_address[1]
    real_problem = load.address_problem
    handler.routes["/"] = (200, {"Content-Type": "text/plain"}, b"public text", 0)
    answers = iter([["127.0.0.1"], ["10.0.0.1"], ["10.0.0.1"]])
    real = socket.getaddrinfo
    calls = []

    def rebinding(host, port_, *args, **kwargs):
        if host != "rebind.example":
            return real(host, port_, *args, **kwargs)
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port_)) for a in next(answers)]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    allow_loopback_as_public(monkeypatch)
    (doc,) = load.fetch_url(f"http://rebind.example:{port}/", timeout=3)
    assert doc.text == "public text" and len(calls) == 1 and connections == ["127.0.0.1"]

    # and if the check were somehow skipped, the peer check still refuses an inside address
    monkeypatch.setattr(load, "address_problem", real_problem)
    monkeypatch.setattr(load, "resolve_public", lambda host, port: ["127.0.0.1"])
    before = list(handler.hits)
    with pytest.raises(load.LoadError, match="the connection went to 127.0.0.1"):
        load.fetch_url(f"http://rebind.example:{port}/", timeout=3)
    assert handler.hits == before  # no request was sent on that connection


def test_size_and_time_limits_still_hold(web, monkeypatch, connections):
    server, handler = web
    port = server.server_address[1]
    fake_dns(monkeypatch, {"public.example": ["127.0.0.1"]})
    allow_loopback_as_public(monkeypatch)
    handler.routes["/big"] = (200, {"Content-Type": "text/plain"}, b"a" * 5000, 0)
    handler.routes["/slow"] = (200, {"Content-Type": "text/plain"}, b"late", 3)
    monkeypatch.setattr(load, "MAX_UPLOAD_BYTES", 1000)
    with pytest.raises(load.LoadError, match="larger than"):
        load.fetch_url(f"http://public.example:{port}/big", timeout=3)
    t0 = time.monotonic()
    with pytest.raises(load.LoadError, match="Could not fetch|longer than"):
        load.fetch_url(f"http://public.example:{port}/slow", timeout=1)
    assert time.monotonic() - t0 < 2.5


def test_the_instructor_switch_turns_url_loading_off(web, monkeypatch, connections):
    server, handler = web
    port = server.server_address[1]
    monkeypatch.setenv("LLMLAB_URL_LOADING", "off")
    with pytest.raises(load.LoadError, match="turned off"):
        load.fetch_url("https://docs.python.org/3/", timeout=2)
    monkeypatch.delenv("LLMLAB_URL_LOADING")
    with pytest.raises(load.LoadError, match="turned off"):
        load.fetch_url(f"http://127.0.0.1:{port}/secret.txt", allowed=False)  # the class-wide toggle
    assert connections == [] and handler.hits == []


# ------------------------------------------------------------------------------------------ 2. one student, one voice
def make_vote(i: int, voter: str, outcome: str = "a", **kw) -> votes.Vote:
    return votes.Vote(battle_id=f"sec-{voter}-{i}", voter_id=voter, prompt=f"prompt {i}", model_a="m1", model_b="m2",
                      answer_a="A", answer_b="B", outcome=outcome, **kw)


@pytest.fixture
def store(tmp_path):
    s = votes.VoteStore(f"sqlite:///{tmp_path / 'votes.sqlite'}")
    yield s
    s.dispose()


def test_names_not_browsers_are_voters(store):
    ada_phone, ada_laptop = votes.voter_key("Ada Lovelace"), votes.voter_key("  ada   LOVELACE ")
    assert ada_phone == ada_laptop
    store.set_voter_cap(2)
    store.record(make_vote(1, ada_phone))
    store.record(make_vote(2, ada_laptop))  # a second browser session with the same name...
    with pytest.raises(votes.VoteRejected, match="cap for this board is 2"):
        store.record(make_vote(3, ada_laptop))  # ...shares the cap
    store.record(make_vote(1, votes.voter_key("Grace")))
    assert store.voters() == 2 and store.count() == 3
    for bad, why in (("", "Type your name"), ("x" * 41, "at most 40"), ("<script>", "letters, digits")):
        with pytest.raises(votes.VoteRejected, match=why):
            votes.voter_key(bad)


def finished_battle() -> arena.Battle:
    a, b = arena.BUILT_IN[0], arena.BUILT_IN[1]
    battle = arena.Battle("Say hi", arena.Answer(a, "hi", done=True), arena.Answer(b, "hello", done=True), 0, 16)
    return battle


def test_a_burst_from_one_address_is_refused_and_nothing_is_lost(store, monkeypatch):
    monkeypatch.setattr(arena.classroom, "vote_limiter", arena.BurstLimit(3, 60))
    for i in range(3):
        finished_battle().vote(store, f"student{i}", "a", client="10.1.1.5")  # three names, one address
    blocked = finished_battle()
    with pytest.raises(votes.VoteRejected, match=r"Too many votes from your address: at most 3 every 60 s\. Wait"):
        blocked.vote(store, "student9", "b", client="10.1.1.5")
    assert blocked.outcome is None and store.count() == 3  # refused, and the three earlier votes stand
    finished_battle().vote(store, "student9", "b", client="10.1.1.6")  # another address is not blocked
    limiter = arena.BurstLimit(2, 10)
    limiter.check("x", now=0)
    limiter.check("x", now=1)
    with pytest.raises(votes.VoteRejected, match="Wait 9 s"):
        limiter.check("x", now=1)
    limiter.check("x", now=10.5)  # the window slid on


def test_client_address_ignores_forwarded_headers_unless_a_proxy_is_trusted():
    headers = {"X-Forwarded-For": "1.2.3.4, 10.0.0.9"}
    assert arena.client_address("192.168.1.20", headers, trust_proxy=False) == "192.168.1.20"
    assert arena.client_address(None, headers, trust_proxy=True) == "10.0.0.9"  # the hop our proxy added
    assert arena.client_address(None, {}, trust_proxy=True) == "this machine"


def test_removing_a_voter_takes_their_votes_off_the_board_and_keeps_them_aside(store):
    for i in range(6):
        store.record(make_vote(i, "stuffer", "a"))
    store.record(make_vote(0, "ada", "b"))
    store.record(make_vote(0, "grace", "b"))
    per_voter = store.votes_per_voter()
    assert per_voter[0] == dict(per_voter[0], voter="stuffer", votes=6)
    assert arena.leaderboard(store.votes(), n_boot=10)[0].model == "m1"  # stuffed
    assert store.remove_voter("stuffer", by="prof · 127.0.0.1") == 6
    rows = store.votes()
    assert {r["voter_id"] for r in rows} == {"ada", "grace"} and store.voters() == 2
    board = arena.leaderboard(rows, n_boot=10)
    assert board[0].model == "m2" and sum(r.votes for r in board) == 4  # 2 votes x 2 models
    assert "stuffer" not in votes.to_csv(store.votes(all_boards=True, blind_only=False))
    kept = store.removed_votes()
    assert len(kept) == 6 and {r["removed_by"] for r in kept} == {"prof · 127.0.0.1"}
    assert store.actions()[0]["action"] == "remove voter" and "6 votes of 'stuffer'" in store.actions()[0]["detail"]


def test_join_code(store):
    code = store.join_code()
    assert len(code) == 6 and store.join_code_ok(code.lower()) and not store.join_code_ok("")
    assert not store.join_code_ok("WRONG1")
    new = store.new_join_code(by="prof")
    assert new != code and not store.join_code_ok(code) and store.join_code_ok(new)
    url = arena.join_url("http://lab.example.org/arena", 8501, code=new)
    assert url == f"http://lab.example.org/arena?code={new}"


# ------------------------------------------------------------------------------------------ 3. bounded resources
@dataclasses.dataclass(frozen=True)
class SlowConfig:
    steps: int = 50
    tag: str = ""
    seed: int = 0


def slow(ctx):
    ctx.set_total(ctx.config.steps)
    for step in range(1, ctx.config.steps + 1):
        time.sleep(0.02)
        ctx.log(step=step, loss=1.0)
    return {"ok": True}


def test_one_queued_or_running_run_per_session():
    manager = jobs.JobManager(max_workers=1, runs_per_session=1)
    other = manager.submit(SlowConfig(tag="other"), slow, owner="someone-else", label="Other")  # occupies the worker
    mine = manager.submit(SlowConfig(tag="first"), slow, owner="student", label="My SFT")
    assert manager.get(mine).position == 1
    with pytest.raises(jobs.SessionBusy, match=r"already have a run waiting in the queue at position 1: My SFT") as info:
        manager.submit(SlowConfig(tag="second"), slow, owner="student", label="My DPO")
    assert info.value.run_id == mine and info.value.position == 1
    assert isinstance(info.value, ValueError)  # pages show it with ui.friendly_errors, never a traceback
    assert manager.submit(SlowConfig(tag="first"), slow, owner="student") == mine  # the same run: no second copy
    a = manager.submit(SlowConfig(tag="sweep", steps=2), slow, owner="sweeper", group="g1")
    b = manager.submit(SlowConfig(tag="sweep", steps=3), slow, owner="sweeper", group="g1")  # one click, one sweep
    assert a != b
    with pytest.raises(jobs.SessionBusy):
        manager.submit(SlowConfig(tag="sweep", steps=4), slow, owner="sweeper", group="g2")
    while manager.get(mine).status != jobs.RUNNING:
        time.sleep(0.02)
    with pytest.raises(jobs.SessionBusy, match=r"running \(step \d+/50\)"):
        manager.submit(SlowConfig(tag="second"), slow, owner="student")
    for run_id in (other, mine, a, b):  # nothing lost: every accepted run finishes
        assert manager.wait(run_id, 60).status == jobs.DONE
    later = manager.submit(SlowConfig(tag="second", steps=2), slow, owner="student")  # free again
    assert manager.wait(later, 60).status == jobs.DONE


def test_token_cap_in_class_mode(monkeypatch):
    monkeypatch.delenv("LLMLAB_MAX_NEW_TOKENS", raising=False)
    monkeypatch.delenv("LLMLAB_CLASS_MODE", raising=False)
    assert settings.max_new_tokens() is None and settings.check_new_tokens(1000) == 1000
    monkeypatch.setenv("LLMLAB_CLASS_MODE", "1")
    assert settings.max_new_tokens() == 128 and settings.new_tokens_slider_max(256) == 128
    with pytest.raises(ValueError, match="at most 128 new tokens per request"):
        settings.check_new_tokens(256)
    loads = []
    with pytest.raises(ValueError, match="at most 128"):
        arena.start_battle("Hi", arena.BUILT_IN[0], arena.BUILT_IN[1], loads.append, max_new_tokens=256)
    assert loads == []  # refused before any model was loaded or any thread started
    monkeypatch.setenv("LLMLAB_MAX_NEW_TOKENS", "64")
    assert settings.max_new_tokens() == 64


# ------------------------------------------------------------------------------------------ 4. instructor actions
def test_instructor_actions_are_recorded_with_who_and_when(store):
    t0 = time.time()
    store.set_voting_open(False, by="prof · 10.0.0.2")
    store.set_voting_open(True, by="prof · 10.0.0.2")
    store.set_voter_cap(5, by="prof · 10.0.0.2")
    store.reset_board(by="prof · 10.0.0.2")
    store.set_url_loading(False, by="prof · 10.0.0.2")
    store.new_join_code(by="prof · 10.0.0.2")
    store.log_action("prof · 10.0.0.2", "export", "votes CSV")
    actions = store.actions()
    assert [a["action"] for a in actions][::-1] == ["close voting", "open voting", "set voter cap", "reset board",
                                                    "URL loading off", "new join code", "export"]
    assert all(a["who"] == "prof · 10.0.0.2" and a["at"] >= t0 for a in actions)
    assert not store.url_loading()
    store.set_voting_open(False)  # an internal call without `by` is not an instructor action
    assert len(store.actions()) == 7
