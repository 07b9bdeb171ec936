"""The arena: anonymous side-by-side battles and a leaderboard with confidence, as in Chatbot Arena.

Three parts, each small:

1. **Contenders and pairs.** A contender is a model + decoding settings (+ optionally a saved adapter).
   Pairs are drawn fewest-votes-first so every contender collects votes at about the same rate; a model
   never meets itself; positions A/B are a coin flip.
2. **Battles.** Two background threads stream both answers into a per-battle buffer that the page polls.
   When both contenders use the same shared model its lock interleaves their decode steps token by token.
3. **Ratings.** Online Elo (order-dependent, K selectable) and Bradley–Terry maximum likelihood
   (order-free) on the 400-point scale, with percentile-bootstrap 95% confidence intervals and Rank (UB).

Shapes: P = number of models (the players), N = number of battles. Battles are dicts with model_a, model_b, outcome
(one of labs.arena.votes.OUTCOMES: "a", "b", "tie", "bothbad").
"""
from __future__ import annotations

import hmac
import json
import math
import random
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from labs.models import adapters
from labs.serving import endpoints as backends
from labs.serving import engine
from labs import models
from labs.core import settings
from labs.arena import votes
from labs.data import asset
from labs.serving.generation import GenerationConfig
from labs.models import LoadedModel, ModelError
from labs.serving.runtimes import gate as runtime_gate

LN10 = math.log(10.0)
BASE_RATING = 1000.0
SCALE = 400.0  # Elo's scale: a 400-point gap means 10:1 odds


# ---------------------------------------------------------------------------------------------------------
# 1. Contenders and pair sampling
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Contender:
    """One arena contender: a registry model with its sampling settings and prompt style."""
    name: str  # what the leaderboard and the votes call it; unique
    model_key: str  # labs.models registry key
    temperature: float = 0.7
    top_p: float = 0.9
    prompt_style: str = "chat"  # "chat" (chat template) or "qa" (plain "Question: …\nAnswer:" for base models)
    adapter_path: str | None = None
    description: str = ""

    def render(self, prompt: str):
        """What is sent to labs.serving.generation.stream: a chat message list, or plain text a base model continues."""
        if self.prompt_style == "qa":
            return f"Question: {prompt.strip()}\nAnswer:"
        return [{"role": "user", "content": prompt}]

    def config(self, max_new_tokens: int, seed: int) -> GenerationConfig:
        """The GenerationConfig for one answer (max_new_tokens in tokens, a fixed seed per battle)."""
        return GenerationConfig(max_new_tokens=max_new_tokens, temperature=self.temperature, top_p=self.top_p,
                                seed=seed, repetition_penalty=1.1)


# A base model keeps writing the next "Question:"; the answer ends where the format repeats.
QA_STOPS = ("\nQuestion:", "\nQ:", "\n\n\n")
STALL_S = 30.0  # an unfinished answer silent this long (not moving in a queue either) is reported, with Retry

BUILT_IN = (
    Contender("SmolLM2-135M · T=0.7", "smollm2-135m-instruct", 0.7,
              description="SmolLM2-135M-Instruct, its chat template, the default sampling settings."),
    Contender("SmolLM2-135M · greedy", "smollm2-135m-instruct", 0.0,
              description="The same model, temperature 0: always the most likely next token."),
    Contender("SmolLM2-135M · T=1.3", "smollm2-135m-instruct", 1.3, top_p=1.0,
              description="The same model, hot sampling (T = 1.3, no nucleus cut): more varied, less careful."),
    Contender("Gemma-3-270M base · Q/A", "gemma3-270m", 0.7, prompt_style="qa",
              description="A base (not instruction-tuned) model given 'Question: …\\nAnswer:' and cut at the next question."),
)


def contenders(include_adapters: bool = True) -> list[Contender]:
    """The built-in contenders, one per model of the models file (local or endpoint), and every adapter saved by
    the SFT, preference and LoRA pages."""
    found = list(BUILT_IN)
    for s in models.generators():
        if s.is_user:
            found.append(Contender(s.display_name, s.key, 0.7, prompt_style="chat" if s.prompt_format == "chat" else "qa",
                                   description=f"{s.display_name} from the models file ("
                                               + (f"endpoint {s.location}" if s.is_endpoint else f"{s.source} {s.location}")
                                               + "), default sampling settings."))
    if include_adapters:
        try:
            from labs.models import adapters
            saved = adapters.list_adapters()
        except Exception:  # noqa: BLE001 - a broken adapter folder must not take the arena down
            saved = []
        names = {c.name for c in found}
        for info in saved:
            name = f"{info.label} · adapter"
            if name in names:
                name = f"{info.label} · adapter {info.path[-8:]}"
            names.add(name)
            found.append(Contender(name, info.base_model or "smollm2-135m-instruct", 0.7, adapter_path=info.path,
                                   description=f"Adapter saved by the {info.page or 'a'} page on "
                                               f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(info.created))}."))
    return found


def sample_pair(names: Sequence[str], vote_counts: dict[str, int], rng: random.Random,
                pair_counts: dict[frozenset, int] | None = None) -> tuple[str, str]:
    """Two different contenders, fewest-votes-first, in random positions (A, B)."""
    a, b, _ = draw_pair(names, vote_counts, rng, pair_counts)
    return a, b


def draw_pair(names: Sequence[str], vote_counts: dict[str, int], rng: random.Random,
              pair_counts: dict[frozenset, int] | None = None) -> tuple[str, str, bool]:
    """(A, B, swapped): two different contenders, fewest-votes-first; swapped = the first pick sits at B.

    The first is drawn among the contenders with the fewest votes; the second among the rest with the
    fewest votes, then the fewest battles against the first. Random tie-breaks keep it unpredictable.
    """
    unique = list(dict.fromkeys(names))
    if len(unique) < 2:
        raise ValueError("The arena needs at least two contenders; pick more in 'Contenders'.")
    pair_counts = pair_counts or {}
    least = min(vote_counts.get(n, 0) for n in unique)
    first = rng.choice([n for n in unique if vote_counts.get(n, 0) == least])
    rest = [n for n in unique if n != first]
    key = lambda n: (vote_counts.get(n, 0), pair_counts.get(frozenset((first, n)), 0))  # noqa: E731
    best = min(key(n) for n in rest)
    second = rng.choice([n for n in rest if key(n) == best])
    swapped = rng.random() < 0.5  # position bias is real (people favour one side): randomise it
    return (second, first, True) if swapped else (first, second, False)


def counts_from(battles: Iterable[dict]) -> tuple[dict[str, int], dict[frozenset, int]]:
    """Votes per model and battles per unordered pair, for sample_pair."""
    per_model: dict[str, int] = {}
    per_pair: dict[frozenset, int] = {}
    for b in battles:
        for m in (b["model_a"], b["model_b"]):
            per_model[m] = per_model.get(m, 0) + 1
        pair = frozenset((b["model_a"], b["model_b"]))
        per_pair[pair] = per_pair.get(pair, 0) + 1
    return per_model, per_pair


def check_prompt(prompt: str) -> str:
    """The prompt stripped; ValueError with a fix when it is empty or over votes.MAX_PROMPT_CHARS characters."""
    prompt = (prompt or "").strip()
    if not prompt:
        raise ValueError("The prompt is empty: type a question or pick one from the prompt bank.")
    if len(prompt) > votes.MAX_PROMPT_CHARS:
        raise ValueError(f"The prompt is {len(prompt)} characters; the arena takes at most {votes.MAX_PROMPT_CHARS}. "
                         "Shorten it.")
    return prompt


def prompt_bank() -> list[dict]:
    """The bundled prompt bank (assets/arena/prompts.jsonl): [{"category", "prompt"}, ...]."""
    path = asset("arena", "prompts.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------------------
# 2. Battles: two answers streamed at once into a shared buffer
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Answer:
    """One side of a battle as it streams: its text so far, done / error, and latency in seconds."""
    contender: Contender
    text: str = ""
    done: bool = False
    error: str = ""
    seconds: float | None = None  # generation latency, start to last token
    first_token_s: float | None = None
    pieces: int = 0
    queue_position: int = 0  # >0 while the answer waits for a place in a full engine batch
    last_progress: float = field(default_factory=time.time)  # when it last wrote text or moved in the queue
    runtime: str = ""  # what decoded it, and why (shown once the names are revealed)


@dataclass
class Battle:
    """Two anonymous answers to one prompt, generated side by side, and the vote once cast."""
    prompt: str
    a: Answer
    b: Answer
    seed: int
    max_new_tokens: int
    swapped: bool = False  # the sampler's first pick sits at B
    prompt_source: str = "typed"
    blind: bool = True  # False when the user picked the contenders by name: such votes do not count
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = field(default_factory=time.time)
    outcome: str | None = None  # set once the vote is stored
    stop_event: threading.Event = field(default_factory=threading.Event, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def finished(self) -> bool:
        """Both answers are done."""
        return self.a.done and self.b.done

    @property
    def failed(self) -> bool:
        """Either answer ended with an error."""
        return bool(self.a.error or self.b.error)

    def stalled(self, now: float | None = None) -> str | None:
        """Why the battle is stuck, if an unfinished answer has written nothing and not moved in the queue for
        STALL_S seconds (a page then offers Retry instead of a silent wait); None while it is making progress."""
        now = time.time() if now is None else now
        with self.lock:
            for side, ans in (("A", self.a), ("B", self.b)):
                quiet = now - ans.last_progress
                if not ans.done and quiet > STALL_S:
                    what = "did not start" if not ans.pieces else "stopped writing"
                    return (f"Answer {side} {what}: nothing new for {quiet:.0f} s. The server may be overloaded or "
                            "the model stuck; Retry asks both models again.")
        return None

    def answer(self, side: str) -> Answer:
        """The answer shown on side 'a' or 'b'."""
        return self.a if side == "a" else self.b

    def stop(self) -> None:
        """Ask both generations to stop (they end within one token)."""
        self.stop_event.set()

    def wait(self, timeout: float = 120.0) -> bool:
        """Block until both answers are done or `timeout` seconds pass; True when done."""
        end = time.time() + timeout
        while not self.finished and time.time() < end:
            time.sleep(0.02)
        return self.finished

    def snapshot(self) -> dict:
        """A consistent copy for drawing (the threads keep writing)."""
        with self.lock:
            return {side: dict(text=ans.text, done=ans.done, error=ans.error, seconds=ans.seconds,
                               pieces=ans.pieces, name=ans.contender.name, queue_position=ans.queue_position,
                               runtime=ans.runtime)
                    for side, ans in (("a", self.a), ("b", self.b))}

    def vote(self, store: votes.VoteStore, voter_id: str, outcome: str, *, client: str | None = None) -> int:
        """Store the vote (once). Refuses before both answers are finished, after a vote, on a failed battle, and
        when the client address has voted too often lately (vote_limiter: scripted stuffing)."""
        if outcome not in votes.OUTCOMES:
            raise votes.VoteRejected(f"Unknown outcome '{outcome}'.")
        if client is not None:
            vote_limiter.check(client)
        with self.lock:
            if self.outcome is not None:
                raise votes.VoteRejected("You already voted on this battle: one vote per battle. Start a new round.")
            if not self.finished:
                raise votes.VoteRejected("Wait until both answers have finished before voting.")
            if self.failed:
                raise votes.VoteRejected("One of the answers failed, so this battle cannot be judged. Regenerate.")
            row = store.record(votes.Vote(
                battle_id=self.id, voter_id=voter_id, prompt=self.prompt, model_a=self.a.contender.name,
                model_b=self.b.contender.name, answer_a=self.a.text, answer_b=self.b.text, outcome=outcome,
                blind=self.blind, swapped=self.swapped, battle_started=self.started, voted_at=time.time(),
                latency_a_s=self.a.seconds, latency_b_s=self.b.seconds, prompt_source=self.prompt_source))
            self.outcome = outcome
            return row


ModelLoader = Callable[[str], "LoadedModel | backends.Endpoint"]  # key -> local model or endpoint

_battles: "OrderedDict[str, Battle]" = OrderedDict()
_battles_lock = threading.Lock()
MAX_BATTLES_KEPT = 500  # a class of 60 doing 8 rounds; older battles expire (voting on them says so)

_adapter_models: "OrderedDict[str, object]" = OrderedDict()
_adapter_lock = threading.Lock()
MAX_ADAPTERS_LOADED = 3  # each is a full copy of its base model in memory


def adapter_module(lm: LoadedModel, path: str):
    """The PeftModel for a saved adapter, loaded once and kept (a few at most)."""
    with _adapter_lock:
        if path in _adapter_models:
            _adapter_models.move_to_end(path)
            return _adapter_models[path]
        module = adapters.load_adapter(lm, path)
        _adapter_models[path] = module
        while len(_adapter_models) > MAX_ADAPTERS_LOADED:
            _adapter_models.popitem(last=False)
        return module


def _generate_into(battle: Battle, answer: Answer, lm: "backends.Target") -> None:
    """`lm`: the contender's shared local model, or its endpoint (a server that is down fails this answer, and a
    failed battle cannot be voted on, so nothing is recorded)."""
    c = answer.contender
    t0 = time.perf_counter()
    try:
        module = None
        if c.adapter_path:
            local = backends.require_local(lm, "given an adapter")
            path = c.adapter_path
            fast, answer.runtime = runtime_gate.adapter_engine(
                local, path, adapters.load_adapter,
                fallback=lambda: engine.engine_for(adapter_module(local, path), local.lock))
            module = fast or adapter_module(local, path)
        elif isinstance(lm, LoadedModel):
            answer.runtime = lm.runtime_note if lm.runtime is not None and lm.runtime.alive else \
                f"{lm.runtime_note} · decode {lm.decode}"
        else:
            answer.runtime = "the endpoint's server"
        stops = QA_STOPS if c.prompt_style == "qa" else ()
        text = ""
        def on_wait(position: int) -> None:
            if position != answer.queue_position:
                answer.last_progress = time.time()
            answer.queue_position = position

        for piece in backends.stream(lm, c.render(battle.prompt), c.config(battle.max_new_tokens, battle.seed),
                                     stop=battle.stop_event, model=module, on_wait=on_wait):
            answer.queue_position = 0
            text += piece
            cut = min((text.find(s) for s in stops if s in text), default=-1)
            with battle.lock:
                if answer.first_token_s is None:
                    answer.first_token_s = time.perf_counter() - t0
                answer.text = text[:cut] if cut >= 0 else text
                answer.pieces += 1
                answer.last_progress = time.time()
            if cut >= 0:
                break
        with battle.lock:
            answer.text = answer.text.strip() if c.prompt_style == "qa" else answer.text
            if not answer.text.strip() and not battle.stop_event.is_set():
                answer.text = "(the model ended its answer at once: an empty answer)"
    except (ModelError, ValueError) as exc:
        answer.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - shown on the page, never a traceback
        answer.error = f"{type(exc).__name__}: {exc}"
    finally:
        with battle.lock:
            answer.seconds = time.perf_counter() - t0
            answer.done = True


def start_battle(prompt: str, a: Contender, b: Contender, load: ModelLoader, *, max_new_tokens: int = 96,
                 seed: int | None = None, swapped: bool = False, prompt_source: str = "typed",
                 blind: bool = True) -> Battle:
    """Start both answers in background threads and return the battle at once (poll battle.snapshot())."""
    prompt = check_prompt(prompt)
    if a.name == b.name:
        raise ValueError("A contender cannot battle itself; pick two different ones.")
    if not 8 <= max_new_tokens <= 1024:
        raise ValueError("Answer length must be between 8 and 1024 tokens.")
    settings.check_new_tokens(max_new_tokens)  # class mode: a cap per request
    models = {c.model_key: load(c.model_key) for c in (a, b)}  # load in the caller: it may show progress
    battle = Battle(prompt, Answer(a), Answer(b), seed if seed is not None else random.randrange(2**31),
                    max_new_tokens, swapped, prompt_source, blind)
    with _battles_lock:
        _battles[battle.id] = battle
        while len(_battles) > MAX_BATTLES_KEPT:
            _, old = _battles.popitem(last=False)
            old.stop()
    for answer in (battle.a, battle.b):
        threading.Thread(target=_generate_into, args=(battle, answer, models[answer.contender.model_key]),
                         name=f"arena-{battle.id[:6]}", daemon=True).start()
    return battle


def get_battle(battle_id: str | None) -> Battle | None:
    """A battle started in this process by its id; None when unknown (or the id is empty)."""
    with _battles_lock:
        return _battles.get(battle_id) if battle_id else None


# ---------------------------------------------------------------------------------------------------------
# 3. Ratings
# ---------------------------------------------------------------------------------------------------------
def score_a(outcome: str, ties: str = "half") -> float | None:
    """A's score in one battle: 1 win, 0 loss, ties (and both-bad) 0.5 or None (= left out)."""
    if outcome == "a":
        return 1.0
    if outcome == "b":
        return 0.0
    if ties not in ("half", "exclude"):
        raise ValueError("ties must be 'half' or 'exclude'.")
    return 0.5 if ties == "half" else None


def expected_score(r_a: float, r_b: float) -> float:
    """Elo's expected score of A: 1 / (1 + 10^((R_B − R_A)/400))."""
    return 1.0 / (1.0 + 10.0 ** ((r_b - r_a) / SCALE))


def elo_update(r_a: float, r_b: float, s_a: float, k: float) -> tuple[float, float]:
    """One online Elo step (Elo 1978): A gains exactly what B loses, K · (S_A − E_A)."""
    delta = k * (s_a - expected_score(r_a, r_b))
    return r_a + delta, r_b - delta


def online_elo(battles: Sequence[dict], k: float = 16.0, ties: str = "half", base: float = BASE_RATING) -> dict[str, float]:
    """Ratings after replaying the votes in the given order. A different order gives different ratings."""
    ratings: dict[str, float] = {}
    for b in battles:
        s = score_a(b["outcome"], ties)
        ra, rb = ratings.setdefault(b["model_a"], base), ratings.setdefault(b["model_b"], base)
        if s is not None:
            ratings[b["model_a"]], ratings[b["model_b"]] = elo_update(ra, rb, s, k)
    return ratings


def elo_over_orders(battles: Sequence[dict], k: float = 16.0, ties: str = "half", n_orders: int = 50,
                    seed: int = 0) -> dict[str, tuple[float, float]]:
    """(lowest, highest) online-Elo rating of each model over shuffled vote orders: the order matters."""
    rng = random.Random(seed)
    seen: dict[str, list[float]] = {}
    order = list(battles)
    for _ in range(n_orders):
        rng.shuffle(order)
        for m, r in online_elo(order, k, ties).items():
            seen.setdefault(m, []).append(r)
    return {m: (min(rs), max(rs)) for m, rs in seen.items()}


def _encode(battles: Sequence[dict], ties: str, models: Sequence[str] | None = None):
    """Battles -> model list and arrays (ia, ib, s) with s = A's score; left-out ties are dropped."""
    names = list(models) if models is not None else sorted({m for b in battles for m in (b["model_a"], b["model_b"])})
    index = {m: i for i, m in enumerate(names)}
    ia, ib, s = [], [], []
    for b in battles:
        sc = score_a(b["outcome"], ties)
        if sc is None or b["model_a"] not in index or b["model_b"] not in index:
            continue
        ia.append(index[b["model_a"]])
        ib.append(index[b["model_b"]])
        s.append(sc)
    return names, np.array(ia, dtype=np.int64), np.array(ib, dtype=np.int64), np.array(s, dtype=np.float64)


def _win_matrix(ia: np.ndarray, ib: np.ndarray, s: np.ndarray, m: int, weights: np.ndarray | None = None) -> np.ndarray:
    """W[i, j] = total score i earned against j (a tie gives each side 0.5). Shape (P, P)."""
    w = np.ones_like(s) if weights is None else weights
    won = np.bincount(ia * m + ib, weights=w * s, minlength=m * m) + np.bincount(ib * m + ia, weights=w * (1 - s),
                                                                               minlength=m * m)
    return won.reshape(m, m)


def bt_from_wins(wins: np.ndarray, prior_sd: float = 400.0, iters: int = 100) -> np.ndarray:
    """Bradley–Terry MAP strengths θ (P,) in log10-odds units, by Newton's method.

    P(i beats j) = σ(ln10 · (θ_i − θ_j))   (Bradley & Terry 1952; Elo's 400-point scale is R = 1000 + 400 θ)
    log L(θ) = Σ_ij W_ij log P(i beats j) − λ/2 ‖θ‖²,  λ = (400 / prior_sd)²
    The Gaussian prior keeps θ finite when a model has only wins or only losses, and centres Σθ = 0.
    """
    m = wins.shape[0]
    n = wins + wins.T  # (P, P) games played between i and j (ties count once, split 0.5/0.5 in wins)
    lam = (SCALE / prior_sd) ** 2
    theta = np.zeros(m)
    for _ in range(iters):
        p = 1.0 / (1.0 + 10.0 ** (theta[None, :] - theta[:, None]))  # (P, P) P(i beats j)
        grad = LN10 * (wins - n * p).sum(axis=1) - lam * theta
        h = LN10**2 * n * p * (1 - p)  # (P, P) curvature of each pair
        hess = h - np.diag(h.sum(axis=1)) - lam * np.eye(m)  # negative definite for λ > 0
        step = np.linalg.solve(hess, grad)
        step = np.clip(step, -2.0, 2.0)  # at most 800 points per iteration: keeps Newton stable far from the optimum
        theta = theta - step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta


def bradley_terry(battles: Sequence[dict], ties: str = "half", prior_sd: float = 400.0,
                  base: float = BASE_RATING) -> dict[str, float]:
    """Order-free ratings on the Elo scale (mean = base)."""
    names, ia, ib, s = _encode(battles, ties)
    if not names:
        return {}
    theta = bt_from_wins(_win_matrix(ia, ib, s, len(names)), prior_sd)
    return {m: base + SCALE * t for m, t in zip(names, theta)}


def bootstrap_ci(battles: Sequence[dict], ties: str = "half", prior_sd: float = 400.0, n_boot: int = 200,
                 seed: int = 0, level: float = 0.95, base: float = BASE_RATING) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap (Efron 1979) over battles: resample N battles with replacement, refit, take quantiles."""
    names, ia, ib, s = _encode(battles, ties)
    if not names or len(s) == 0:
        return {m: (base, base) for m in names}
    rng = np.random.default_rng(seed)
    m, n = len(names), len(s)
    samples = np.empty((n_boot, m))
    for r in range(n_boot):
        counts = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)  # (N,) times each battle drawn
        samples[r] = base + SCALE * bt_from_wins(_win_matrix(ia, ib, s, m, counts), prior_sd)
    lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return {name: (float(lo[i]), float(hi[i])) for i, name in enumerate(names)}


def rank_ub(intervals: dict[str, tuple[float, float]]) -> dict[str, int]:
    """Chatbot Arena's Rank (UB): 1 + the number of models whose lower bound beats this model's upper bound."""
    return {m: 1 + sum(1 for o, (lo_o, _) in intervals.items() if o != m and lo_o > hi) for m, (_, hi) in intervals.items()}


@dataclass(frozen=True)
class LeaderboardRow:
    """One model on the leaderboard: Bradley–Terry rating with its 95% bootstrap interval and upper-bound
    rank, online Elo and its range over vote orders, and the vote counts."""
    model: str
    rating: float  # Bradley–Terry
    lower: float  # 95% bootstrap interval
    upper: float
    rank_ub: int
    elo: float  # online Elo in vote order
    elo_low: float  # online Elo range over shuffled orders
    elo_high: float
    votes: int
    wins: int
    losses: int
    ties: int
    provisional: bool


def leaderboard(battles: Sequence[dict], *, ties: str = "half", k: float = 16.0, prior_sd: float = 400.0,
                n_boot: int = 200, provisional_below: int = 10, seed: int = 0, n_orders: int = 30) -> list[LeaderboardRow]:
    """Everything the leaderboard shows, best first."""
    battles = list(battles)
    if not battles:
        return []
    bt = bradley_terry(battles, ties, prior_sd)
    ci = bootstrap_ci(battles, ties, prior_sd, n_boot, seed)
    ranks = rank_ub(ci)
    elo = online_elo(battles, k, ties)
    orders = elo_over_orders(battles, k, ties, n_orders, seed)
    tally: dict[str, list[int]] = {}
    for b in battles:
        for side, other in (("a", "b"), ("b", "a")):
            t = tally.setdefault(b[f"model_{side}"], [0, 0, 0])
            t[0 if b["outcome"] == side else 1 if b["outcome"] == other else 2] += 1
    rows = []
    for m, rating in bt.items():
        w, lo_, t = tally.get(m, [0, 0, 0])
        lo, hi = ci.get(m, (rating, rating))
        rows.append(LeaderboardRow(m, rating, lo, hi, ranks.get(m, 1), elo.get(m, BASE_RATING),
                                   *orders.get(m, (BASE_RATING, BASE_RATING)), w + lo_ + t, w, lo_, t,
                                   w + lo_ + t < provisional_below))
    return sorted(rows, key=lambda r: -r.rating)


def pair_matrices(battles: Sequence[dict], ties: str = "half", models: Sequence[str] | None = None):
    """(names, win_rate (P, P) = score of row vs column / games, NaN where none; counts (P, P) battles)."""
    names, ia, ib, s = _encode(battles, ties, models)
    m = len(names)
    wins = _win_matrix(ia, ib, s, m) if m else np.zeros((0, 0))
    games = wins + wins.T
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(games > 0, wins / np.where(games > 0, games, 1), np.nan)
    return names, rate, games


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


def elo_history(battles: Sequence[dict], k: float = 16.0, ties: str = "half") -> dict[str, list[float]]:
    """Each model's online Elo after every vote (vote index 0..N), for the 'order matters' chart."""
    names = sorted({m for b in battles for m in (b["model_a"], b["model_b"])})
    ratings = {m: BASE_RATING for m in names}
    history = {m: [BASE_RATING] for m in names}
    for b in battles:
        s = score_a(b["outcome"], ties)
        if s is not None:
            ratings[b["model_a"]], ratings[b["model_b"]] = elo_update(ratings[b["model_a"]], ratings[b["model_b"]], s, k)
        for m in names:
            history[m].append(ratings[m])
    return history


# ---------------------------------------------------------------------------------------------------------
# Charts (plain data in, Plotly figure out)
# ---------------------------------------------------------------------------------------------------------
def ratings_figure(rows: Sequence[LeaderboardRow]):
    """Bradley–Terry ratings with their 95% bootstrap intervals (a forest plot), best on top."""
    import plotly.graph_objects as go

    rows = list(rows)[::-1]
    fig = go.Figure(go.Scatter(
        x=[r.rating for r in rows], y=[r.model + (" (provisional)" if r.provisional else "") for r in rows],
        mode="markers", marker=dict(size=11, color="#4C78A8"),
        error_x=dict(type="data", symmetric=False, array=[r.upper - r.rating for r in rows],
                     arrayminus=[r.rating - r.lower for r in rows]),
        hovertemplate="%{y}: %{x:.0f}<extra></extra>"))
    fig.add_vline(x=BASE_RATING, line_dash="dot", line_color="gray")
    fig.update_layout(title="Bradley–Terry rating with 95% bootstrap interval", xaxis_title="rating (400 points = 10:1 odds)",
                      height=120 + 40 * len(rows), margin=dict(l=10, r=10, t=40, b=10), template="plotly_white")
    return fig


def elo_history_figure(history: dict[str, list[float]], k: float):
    """Online Elo rating of each model after every vote (K the update size)."""
    from labs.core import charts

    series = {m: (list(range(len(h))), h) for m, h in history.items()}
    return charts.curves(series, title=f"Online Elo after each vote (K = {k:g})", x="votes so far", y="Elo rating")


# ---------------------------------------------------------------------------------------------------------
# Classroom: the address students type (or scan)
# ---------------------------------------------------------------------------------------------------------
def lan_address() -> str:
    """This machine's address on the local network (no packet is sent: a UDP connect only picks a route)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def join_url(current_url: str | None, port: int, path: str = "arena", code: str | None = None) -> str:
    """The address students open: the page's own URL, with localhost replaced by this machine's LAN address,
    carrying the room's join code (`?code=...`) when one is given."""
    from urllib.parse import urlencode, urlsplit, urlunsplit

    query = urlencode({"code": code}) if code else ""
    if not current_url:
        return f"http://{lan_address()}:{port}/{path}" + (f"?{query}" if query else "")
    parts = urlsplit(current_url)
    if parts.hostname in ("localhost", "127.0.0.1", "::1", "0.0.0.0"):
        parts = parts._replace(netloc=f"{lan_address()}:{parts.port or port}")
    return urlunsplit(parts._replace(query=query, fragment=""))


def qr_png(text: str, scale: int = 6) -> bytes:
    """A QR code of `text` as PNG bytes (segno: pure Python, no image library needed)."""
    import io

    import segno

    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=scale, border=2)
    return buf.getvalue()
