"""Contenders, pairs and battles: a contender is a model + decoding settings (+ optionally a saved adapter); pairs
are drawn fewest-votes-first so every contender collects votes at about the same rate, a model never meets itself,
positions A/B are a coin flip; two background threads stream both answers into a per-battle buffer the page polls."""
from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from labs import models
from labs.arena import classroom, votes
from labs.core import settings
from labs.core.errors import ConfigError, EmptyPrompt
from labs.data import asset
from labs.models import LoadedModel, ModelError, adapters
from labs.serving import endpoints as backends
from labs.serving import engine
from labs.serving.generation import GenerationConfig
from labs.serving.runtimes import gate as runtime_gate


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
        raise ConfigError("The arena needs at least two contenders; pick more in 'Contenders'.")
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
        raise EmptyPrompt()
    if len(prompt) > votes.MAX_PROMPT_CHARS:
        raise ConfigError(f"The prompt is {len(prompt)} characters; the arena takes at most {votes.MAX_PROMPT_CHARS}. "
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
            classroom.vote_limiter.check(client)
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
        raise ConfigError("A contender cannot battle itself; pick two different ones.")
    if not 8 <= max_new_tokens <= 1024:
        raise ConfigError("Answer length must be between 8 and 1024 tokens.")
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
