"""The arena's vote store: every vote is a row of data (SQLAlchemy; SQLite in WAL mode or PostgreSQL).

One row per battle: who voted (the name or student id the voter gave, see `voter_key`), the prompt, both answers,
which model sat at position A and B, the outcome, timestamps and generation latencies. ``battle_id`` is unique, so a battle can
be voted on once even when two replicas race. Only *blind* votes (cast before the names were shown) count on
the leaderboard. The store also keeps a few room-wide settings (voting open/closed, the current board, a
per-voter cap, the join code, URL loading on/off) so every browser and every server replica sees the same
switches, and a log of the instructor's actions (who, when, what). Votes the instructor removes move to their own
table: they leave the leaderboard and the exports but are not destroyed.

    store = votes.open_store()                      # labs.core.settings.db_url(): LLMLAB_DB_URL or SQLite
    store.record(Vote(battle_id=..., voter_id=..., prompt=..., model_a=..., model_b=..., answer_a=..., ...))
    rows = store.votes()                            # blind votes on the current board, oldest first
    pairs = votes.export_preference_pairs()         # prompt / chosen / rejected for preference tuning (DPO)
"""
from __future__ import annotations

import csv
import hmac
import io
import json
import re
import secrets
import threading
import time
import unicodedata
from dataclasses import asdict, dataclass, field

from sqlalchemy import (Boolean, Column, Float, Integer, MetaData, String, Table, Text, cast, delete,
                        func, insert, select, update)
from sqlalchemy.exc import IntegrityError

from labs.core import settings
from labs.core.db import make_engine, normalise_url, safe_url  # noqa: F401  (votes.safe_url is public)
from labs.core.errors import ConfigError


# Chatbot Arena's four buttons (Chiang et al. 2024, "Chatbot Arena", Sec. 3): A wins, B wins, tie, both bad.
OUTCOMES = ("a", "b", "tie", "bothbad")
MAX_PROMPT_CHARS = 2000  # a prompt is a question, not a document; keeps battles under a minute on a CPU

metadata = MetaData()
votes_table = Table(
    "arena_votes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("battle_id", String(64), nullable=False, unique=True),  # one vote per battle, enforced by the database
    Column("board", Integer, nullable=False, default=1, index=True),  # "reset the board" starts a new number
    Column("voter_id", String(64), nullable=False, index=True),
    Column("prompt", Text, nullable=False),
    Column("model_a", String(200), nullable=False),  # the contender shown at position A (left)
    Column("model_b", String(200), nullable=False),  # ... at position B (right)
    Column("answer_a", Text, nullable=False),
    Column("answer_b", Text, nullable=False),
    Column("outcome", String(16), nullable=False),  # one of OUTCOMES
    Column("blind", Boolean, nullable=False, default=True),  # names hidden while voting: only these count
    Column("swapped", Boolean, nullable=False, default=False),  # the sampler's first pick was put at position B
    Column("battle_started", Float, nullable=False),  # unix seconds
    Column("voted_at", Float, nullable=False),
    Column("latency_a_s", Float),  # generation time of each answer
    Column("latency_b_s", Float),
    Column("prompt_source", String(32), default="typed"),  # "typed" or "bank"
)
# Votes an instructor removed (a stuffed voter): the same columns plus who removed them and when.
removed_table = Table(
    "arena_removed_votes", metadata,
    *(Column(c.name, c.type, nullable=True) for c in votes_table.columns if c.name != "id"),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("vote_id", Integer, nullable=False),  # its id in arena_votes
    Column("removed_at", Float, nullable=False),
    Column("removed_by", String(200), nullable=False),
)
# What the instructor did, for the classroom tab: unlock, open/close voting, cap, reset, removals, exports, ...
audit_table = Table(
    "arena_audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False, index=True),
    Column("who", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("detail", Text, nullable=False, default=""),
)
state_table = Table(
    "arena_state", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)
_DEFAULT_STATE = {"voting_open": "1", "board": "1", "voter_cap": "0", "url_loading": "1"}  # cap 0 = no cap
JOIN_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: students type it off a projector
MAX_VOTER_CHARS = 40


def new_join_code(length: int = 6) -> str:
    """A random join code of `length` characters from JOIN_CODE_ALPHABET (no look-alike characters)."""
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(length))


def voter_key(name: str) -> str:
    """The voter id a name or student id stands for: the same person typing 'Ada  Lovelace' or 'ada lovelace' in
    two browsers is one voter (one cap, counted once). Raises VoteRejected with what to type instead."""
    text = unicodedata.normalize("NFKC", name or "")
    text = " ".join(text.split()).casefold()
    if not text:
        raise VoteRejected("Type your name or student id before voting: it keeps one vote per person fair.")
    if len(text) > MAX_VOTER_CHARS:
        raise VoteRejected(f"That name is {len(text)} characters; use at most {MAX_VOTER_CHARS} "
                           "(your student id is enough).")
    if not re.fullmatch(r"[\w .@'-]+", text):
        raise VoteRejected("Use letters, digits, spaces and . @ ' - _ in your name or student id.")
    return text


class VoteRejected(ConfigError):
    """A vote that must not be stored; the message says why in words a student understands."""


@dataclass
class Vote:
    """One stored vote: the battle, who voted, what both sides answered, the outcome, and times (epoch seconds)."""
    battle_id: str
    voter_id: str
    prompt: str
    model_a: str
    model_b: str
    answer_a: str
    answer_b: str
    outcome: str
    blind: bool = True
    swapped: bool = False
    battle_started: float = field(default_factory=time.time)
    voted_at: float = field(default_factory=time.time)
    latency_a_s: float | None = None
    latency_b_s: float | None = None
    prompt_source: str = "typed"

    def validate(self) -> None:
        """Raise VoteRejected, in words, for a vote that must not be stored."""
        if self.outcome not in OUTCOMES:
            raise VoteRejected(f"Unknown outcome '{self.outcome}'; use one of {', '.join(OUTCOMES)}.")
        if self.model_a == self.model_b:
            raise VoteRejected("A model cannot battle itself.")
        if not self.battle_id or not self.voter_id:
            raise VoteRejected("A vote needs a battle id and a voter id.")
        if not self.prompt.strip():
            raise VoteRejected("The battle has no prompt.")


class VoteStore:
    """Votes and room-wide arena settings in one SQL database (thread-safe; share one per process)."""

    def __init__(self, url: str | None = None):
        self.url = normalise_url(url or settings.db_url())
        self.engine = make_engine(self.url)
        metadata.create_all(self.engine)
        with self.engine.connect() as conn:
            have = {r.key for r in conn.execute(select(state_table.c.key))}
        for key, value in {**_DEFAULT_STATE, "join_code": new_join_code()}.items():
            if key not in have:
                try:
                    with self.engine.begin() as conn:  # one transaction each: a failed insert aborts its transaction
                        conn.execute(insert(state_table).values(key=key, value=value))
                except IntegrityError:  # another process created it first
                    pass

    # ---- room-wide settings ---------------------------------------------------------------------------
    def _get(self, key: str) -> str:
        with self.engine.connect() as conn:
            value = conn.execute(select(state_table.c.value).where(state_table.c.key == key)).scalar()
        return value if value is not None else _DEFAULT_STATE.get(key, "")

    def _set(self, key: str, value: str) -> None:
        with self.engine.begin() as conn:
            if conn.execute(update(state_table).where(state_table.c.key == key).values(value=value)).rowcount == 0:
                conn.execute(insert(state_table).values(key=key, value=value))

    def voting_open(self) -> bool:
        """Whether voting is open (the instructor opens and closes it)."""
        return self._get("voting_open") == "1"

    def set_voting_open(self, is_open: bool, *, by: str = "") -> None:
        """Open or close voting; logged with who did it."""
        self._set("voting_open", "1" if is_open else "0")
        self._log(by, "open voting" if is_open else "close voting")

    def board(self) -> int:
        """The current board number: votes go to it and the leaderboard reads it."""
        return int(self._get("board"))

    def reset_board(self, *, by: str = "") -> int:
        """Start an empty leaderboard. Old votes stay in the database (they are data) under their board number."""
        new = self.board() + 1
        self._set("board", str(new))
        self._log(by, "reset board", f"board #{new} started")
        return new

    def voter_cap(self) -> int:
        """Votes one voter may cast on the current board (0 = no cap)."""
        return int(self._get("voter_cap"))

    def set_voter_cap(self, cap: int, *, by: str = "") -> None:
        """Set the per-voter cap (0 = no cap); logged."""
        if cap < 0:
            raise ConfigError("The per-voter cap must be 0 (no cap) or a positive number of votes.")
        self._set("voter_cap", str(int(cap)))
        self._log(by, "set voter cap", f"{int(cap)} votes per voter" if cap else "no cap")

    def join_code(self) -> str:
        """The class's join code, made on first use."""
        code = self._get("join_code")
        if not code:  # a database made before join codes existed
            code = new_join_code()
            self._set("join_code", code)
        return code

    def new_join_code(self, *, by: str = "") -> str:
        """A fresh code: the old join link stops working for anyone who has not joined yet."""
        code = new_join_code()
        self._set("join_code", code)
        self._log(by, "new join code")
        return code

    def join_code_ok(self, code: str | None) -> bool:
        """Whether `code` (from the join link or typed) is this room's code; constant-time, case-insensitive."""
        return bool(code) and hmac.compare_digest(str(code).strip().upper().encode(), self.join_code().encode())

    def url_loading(self) -> bool:
        """The instructor's class-wide switch for the RAG page's URL loader (LLMLAB_URL_LOADING=off beats it)."""
        return self._get("url_loading") != "0"

    def set_url_loading(self, on: bool, *, by: str = "") -> None:
        """Allow or forbid loading RAG documents from URLs; logged."""
        self._set("url_loading", "1" if on else "0")
        self._log(by, "URL loading on" if on else "URL loading off")

    # ---- the instructor's log -------------------------------------------------------------------------
    def _log(self, who: str, action: str, detail: str = "") -> None:
        if who:
            self.log_action(who, action, detail)

    def log_action(self, who: str, action: str, detail: str = "") -> None:
        """Record one instructor action (who, when, what) for the classroom tab."""
        with self.engine.begin() as conn:
            conn.execute(insert(audit_table).values(at=time.time(), who=(who or "?")[:200], action=action[:64],
                                                    detail=detail))

    def actions(self, limit: int = 50) -> list[dict]:
        """The latest instructor actions, newest first."""
        query = select(audit_table).order_by(audit_table.c.at.desc(), audit_table.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # ---- votes --------------------------------------------------------------------------------------
    def record(self, vote: Vote) -> int:
        """Store one vote durably; returns its row id. Raises VoteRejected (closed, cap reached, voted twice)."""
        vote.validate()
        if not self.voting_open():
            raise VoteRejected("Voting is closed right now: the instructor will open it again.")
        board = self.board()
        cap = self.voter_cap()
        row = asdict(vote)
        row["board"] = board
        with self.engine.begin() as conn:
            if cap and vote.blind:
                mine = conn.execute(select(func.count()).select_from(votes_table).where(
                    (votes_table.c.voter_id == vote.voter_id) & (votes_table.c.board == board)
                    & votes_table.c.blind)).scalar()
                if mine >= cap:
                    raise VoteRejected(f"You have cast {mine} votes, the cap for this board is {cap}. "
                                       "Thanks! Let others catch up.")
            try:
                result = conn.execute(insert(votes_table).values(**row))
            except IntegrityError:
                raise VoteRejected("This battle already has a vote: one vote per battle. Start a new round.") from None
        return int(result.inserted_primary_key[0])

    def has_vote(self, battle_id: str) -> bool:
        """Whether this battle already has a vote (one vote per battle)."""
        with self.engine.connect() as conn:
            return conn.execute(select(votes_table.c.id).where(votes_table.c.battle_id == battle_id)).first() is not None

    def votes(self, *, board: int | None = None, all_boards: bool = False, blind_only: bool = True) -> list[dict]:
        """Votes as plain dicts, oldest first (the order online Elo consumes them)."""
        query = select(votes_table).order_by(votes_table.c.voted_at, votes_table.c.id)
        if not all_boards:
            query = query.where(votes_table.c.board == (board if board is not None else self.board()))
        if blind_only:
            query = query.where(votes_table.c.blind)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def count(self, *, board: int | None = None, all_boards: bool = False, blind_only: bool = True,
              voter_id: str | None = None) -> int:
        """Number of votes on the current board (or `board`, or all boards), blind ones only by default,
        optionally one voter's."""
        query = select(func.count()).select_from(votes_table)
        if not all_boards:
            query = query.where(votes_table.c.board == (board if board is not None else self.board()))
        if blind_only:
            query = query.where(votes_table.c.blind)
        if voter_id is not None:
            query = query.where(votes_table.c.voter_id == voter_id)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar())

    def voters(self, *, board: int | None = None) -> int:
        """How many different voters cast blind votes on the board."""
        query = select(func.count(func.distinct(votes_table.c.voter_id))).where(
            (votes_table.c.board == (board if board is not None else self.board())) & votes_table.c.blind)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar())

    def votes_per_voter(self, *, board: int | None = None) -> list[dict]:
        """[{voter, votes, blind, first, last}] on the board, most votes first: who might be stuffing."""
        board = board if board is not None else self.board()
        query = (select(votes_table.c.voter_id, func.count().label("votes"),
                        func.sum(cast(votes_table.c.blind, Integer)).label("blind"),
                        func.min(votes_table.c.voted_at).label("first"), func.max(votes_table.c.voted_at).label("last"))
                 .where(votes_table.c.board == board).group_by(votes_table.c.voter_id)
                 .order_by(func.count().desc(), votes_table.c.voter_id))
        with self.engine.connect() as conn:
            return [{"voter": r.voter_id, "votes": int(r.votes), "blind": int(r.blind or 0), "first": r.first,
                     "last": r.last} for r in conn.execute(query)]

    def remove_voter(self, voter_id: str, *, board: int | None = None, by: str = "") -> int:
        """Take one voter's votes on the board off the leaderboard and out of the exports. They move to
        arena_removed_votes (with who removed them and when), in one transaction. Returns how many moved."""
        board = board if board is not None else self.board()
        where = (votes_table.c.voter_id == voter_id) & (votes_table.c.board == board)
        now = time.time()
        with self.engine.begin() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(votes_table).where(where))]
            for row in rows:
                row["vote_id"] = row.pop("id")
                conn.execute(insert(removed_table).values(**row, removed_at=now, removed_by=(by or "?")[:200]))
            conn.execute(delete(votes_table).where(where))
        self._log(by, "remove voter", f"{len(rows)} votes of '{voter_id}' on board #{board}")
        return len(rows)

    def removed_votes(self) -> list[dict]:
        """The audit trail of removed votes, oldest first."""
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(removed_table).order_by(removed_table.c.id))]

    def dispose(self) -> None:
        """Close the store's database connections."""
        self.engine.dispose()


_stores: dict[str, VoteStore] = {}
_stores_lock = threading.Lock()


def open_store(url: str | None = None) -> VoteStore:
    """One VoteStore (and connection pool) per database URL per process."""
    key = normalise_url(url or settings.db_url())
    with _stores_lock:
        if key not in _stores:
            _stores[key] = VoteStore(key)
        return _stores[key]


# ---- exports ------------------------------------------------------------------------------------------
EXPORT_COLUMNS = [c.name for c in votes_table.columns]


def to_csv(rows: list[dict]) -> str:
    """Vote rows as CSV text with the EXPORT_COLUMNS header."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def to_jsonl(rows: list[dict]) -> str:
    """Vote rows as JSON Lines text, one vote a line."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def preference_pairs(rows: list[dict]) -> list[dict]:
    """Decisive votes as prompt / chosen / rejected (ties and both-bad say nothing about which answer is better)."""
    pairs = []
    for r in rows:
        if r["outcome"] not in ("a", "b"):
            continue
        win, lose = ("a", "b") if r["outcome"] == "a" else ("b", "a")
        chosen, rejected = r[f"answer_{win}"], r[f"answer_{lose}"]
        if not chosen.strip() or chosen == rejected:
            continue
        pairs.append({"prompt": r["prompt"], "chosen": chosen, "rejected": rejected,
                      "chosen_model": r[f"model_{win}"], "rejected_model": r[f"model_{lose}"],
                      "battle_id": r["battle_id"], "voter_id": r["voter_id"]})
    return pairs


def export_preference_pairs(store: VoteStore | None = None, *, all_boards: bool = True,
                            blind_only: bool = True) -> list[dict]:
    """The arena's votes as preference pairs for the DPO page: [{"prompt", "chosen", "rejected", ...}, ...].

    Reads the default store (labs.core.settings.db_url()) unless one is given; all boards by default, since a
    reset board still holds good human preferences.
    """
    store = store or open_store()
    return preference_pairs(store.votes(all_boards=all_boards, blind_only=blind_only))
