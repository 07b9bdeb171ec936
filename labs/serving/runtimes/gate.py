"""Which runtime serves a model: the fastest OpenVINO candidate that passes the quality gate, else torch.

Candidates, fastest first on this project's 2-core CPU for a room (16 streams, bench.bench_models): Q8_0
weights with bf16 arithmetic and activations quantised to int8 on the fly (int8 matmuls), the same with
float32, Q8_0 with bf16 and float activations, F16 weights with float32. Each is scored like every decode fast path
(labs.models.quality): perplexity on the standard-library docstrings against our float32 torch model (at most +2 %), and
greedy agreement with float32 alone and in a batch of all the prompts. The first that passes serves; the figures
are stored beside the model's cache and shown on Home. Anything that goes wrong (runtime not installed, a model
it cannot build, an export that fails, a gate it misses) leaves the torch engine serving, with one line saying why.
"""
from __future__ import annotations

import collections
import json
import logging
import math
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable, NamedTuple

import numpy as np
import torch

from labs import models
from labs.core import settings
from labs.models import quality
from labs.serving import decode_gate, engine
from labs.serving.generation import GenerationConfig, encode_prompt
from labs.serving.runtimes import export
from labs.serving.runtimes.engine import RuntimeEngine, RuntimeUnavailable


log = logging.getLogger(__name__)


class Candidate(NamedTuple):
    """One way to run the export: weights as stored, arithmetic precision, and activations ('int8': quantised per
    group of 32 on the fly, OpenVINO's dynamic quantisation; 'float': as the precision)."""
    weights: str
    precision: str
    activations: str

    @property
    def name(self) -> str:
        return f"openvino {self.weights}/{self.precision}" + ("+int8-act" if self.activations == "int8" else "")


CANDIDATES = (Candidate("q8_0", "bf16", "int8"), Candidate("q8_0", "f32", "int8"), Candidate("q8_0", "bf16", "float"),
              Candidate("f16", "f32", "float"))
GATE_TOKENS = 2048  # reference tokens scored per candidate (the torch gate's figure)


def properties(precision: str, activations: str = "float") -> dict:
    """OpenVINO CPU settings of a candidate: its inference precision, and whether activations are quantised to
    int8 on the fly (groups of 32) for int8 weights; the gate measures what that costs in perplexity."""
    return {"INFERENCE_PRECISION_HINT": precision,
            "DYNAMIC_QUANTIZATION_GROUP_SIZE": "32" if activations == "int8" else "0"}


def start(folder, c: Candidate, fallback: Callable) -> RuntimeEngine:
    """A running engine of this candidate over an export."""
    eng = RuntimeEngine(folder, properties(c.precision, c.activations), fallback, c.name)
    eng.choice = c
    return eng


def version() -> str:
    """The installed OpenVINO GenAI version ('' when it is not installed)."""
    try:
        import openvino_genai  # optional dependency: without it torch serves every model

        return openvino_genai.__version__
    except ImportError:
        return ""


def perplexity(folder, precision: str, tokenizer, text: str, max_tokens: int = GATE_TOKENS,
               window: int = 512, activations: str = "float") -> float:
    """The exported model's perplexity, computed exactly like labs.models.quality.perplexity (same windows)."""
    import openvino as ov  # optional dependency, as above

    compiled = ov.Core().compile_model(str(folder / "openvino_model.xml"), "CPU", properties(precision, activations))
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:max_tokens]
    total, count = 0.0, 0
    for start in range(0, len(ids) - 1, window):
        chunk = np.asarray([ids[start:start + window]], dtype=np.int64)  # (1, T)
        t = chunk.shape[1]
        if t < 2:
            break
        request = compiled.create_infer_request()  # a fresh KV state per window
        out = request.infer({"input_ids": chunk, "attention_mask": np.ones_like(chunk),
                             "position_ids": np.arange(t, dtype=np.int64)[None], "beam_idx": np.zeros(1, np.int32)})
        logits = torch.from_numpy(np.asarray(out["logits"])).float()  # (1, T, V)
        loss = torch.nn.functional.cross_entropy(logits[0, :-1], torch.from_numpy(chunk[0, 1:]), reduction="sum")
        total, count = total + float(loss), count + t - 1
    return math.exp(total / max(count, 1))


def greedy(eng, prompts: list[list[int]], new_tokens: int = 16, together: bool = False) -> list[list[int]]:
    """Greedy tokens of each prompt on an engine: one after another (alone) or all submitted at once."""
    config = GenerationConfig(max_new_tokens=new_tokens, temperature=0, repetition_penalty=1.0)
    make = lambda ids: engine.Request(list(ids), config, frozenset())  # noqa: E731 - ignore_eos, as the torch gate
    if together:
        requests = [eng.submit(make(p)) for p in prompts]
        return [list(r.tokens()) for r in requests]
    return [list(eng.submit(make(p)).tokens()) for p in prompts]


@dataclass(frozen=True)
class RuntimeScore:
    """One candidate against float32 torch: perplexity ratio and greedy agreement alone / in a batch."""
    runtime: str  # e.g. openvino q8_0/bf16
    perplexity: float
    ppl_ratio: float
    greedy_agreement: float  # share of prompts whose greedy tokens equal float32 torch's, each alone
    batched_equals_alone: float  # share whose tokens in a batch of all prompts equal their tokens alone
    passes: bool


def _tag(lm) -> str:
    """Exports of tiny random models are told apart by their weights (seed and sizes vary between tests)."""
    return f"tiny-{export.fingerprint(lm.model)}" if lm.tiny else ""


def gate_path(lm):
    """The stored verdict: beside the model's cache folder."""
    tag = _tag(lm)
    return models.cache_dir(lm.key).parent / f"{lm.key}.runtime{('-' + tag) if tag else ''}.json"


def choose(lm, progress=None) -> tuple[dict, RuntimeEngine | None]:
    """The gate's verdict for this model (stored once per OpenVINO version) and, if a candidate passed, its
    running engine."""
    progress = progress or (lambda f, m: None)
    path, tag = gate_path(lm), _tag(lm)
    fallback = lambda: engine.engine_for(lm.inference_model, lm.lock)  # noqa: E731
    try:
        stored = json.loads(path.read_text())
        if stored.get("openvino") == version() and stored.get("candidates") == [list(c) for c in CANDIDATES]:
            if not stored.get("chosen"):
                return stored, None
            c = Candidate(*stored["chosen"])
            folder = export.export(lm.key, lm.model, c.weights, tag, progress)
            progress(0.9, "Starting the fast runtime…")
            return stored, start(folder, c, fallback)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    t0 = time.perf_counter()
    text = quality.reference_text()
    progress(0.02, "Quality gate: scoring the float32 reference…")
    base_ppl = quality.perplexity(lm.tokenizer, lm.model, text, GATE_TOKENS)

    prompts = [encode_prompt(lm, p, 16) for p in quality.AGREEMENT_PROMPTS]
    reference = greedy(fallback(), prompts)
    rows, chosen, running = [], None, None
    for i, c in enumerate(CANDIDATES):
        folder = export.export(lm.key, lm.model, c.weights, tag, progress)
        progress(0.5 + 0.4 * i / len(CANDIDATES), f"Quality gate: scoring {c.name}…")
        ratio = perplexity(folder, c.precision, lm.tokenizer, text, activations=c.activations) / base_ppl
        if ratio > quality.GATE:
            rows.append(RuntimeScore(c.name, round(ratio * base_ppl, 4), round(ratio, 4), 0.0, 0.0, False))
            continue
        eng = start(folder, c, fallback)
        alone = greedy(eng, prompts)
        batched = greedy(eng, prompts, together=True)
        agree = sum(a == b for a, b in zip(alone, reference)) / len(prompts)
        same = sum(a == b for a, b in zip(alone, batched)) / len(prompts)
        rows.append(RuntimeScore(c.name, round(ratio * base_ppl, 4), round(ratio, 4), agree, same, True))
        chosen, running = c, eng
        break
    verdict = {"openvino": version(), "candidates": [list(c) for c in CANDIDATES], "chosen": chosen,
               "float32_perplexity": round(base_ppl, 4), "gate": quality.GATE, "rows": [asdict(r) for r in rows],
               "seconds": round(time.perf_counter() - t0, 1),
               "text": f"docstrings of {len(quality.DOC_MODULES)} standard-library modules, first {GATE_TOKENS} "
                       "tokens; greedy agreement over 10 prompts x 16 tokens"}
    try:
        path.write_text(json.dumps(verdict, indent=2))
    except OSError:
        pass  # a read-only cache: measured again next time
    return verdict, running


def serve(lm, progress=None):
    """Put the fastest runtime that passes the gate under `lm` (lm.runtime, lm.runtime_note); torch otherwise.
    Called once per loaded model, where a progress bar can show the one-time export."""
    decode_gate.choose(lm)  # the torch decode variant, for what torch still serves
    choice = settings.runtime()
    why = None
    if choice == "torch":
        why = "LLMLAB_RUNTIME=torch"
    elif lm.device != "cpu":
        why = f"torch serves on {lm.device}"
    elif lm.tiny and choice != "openvino":
        why = "tiny test models run on torch (LLMLAB_RUNTIME=openvino to try the runtime with them)"
    elif not version():
        why = "OpenVINO GenAI is not installed"
    if why is None:
        try:
            verdict, running = choose(lm, progress)
            if running is not None:
                row = next((r for r in verdict["rows"] if r["passes"]), {})
                lm.runtime = running
                lm.runtime_note = (f"{running.label} (perplexity x{row.get('ppl_ratio', 1):.3f} of float32 torch, "
                                   f"greedy agreement {row.get('greedy_agreement', 0):.0%})")
                return lm
            why = "no OpenVINO candidate passed the quality gate: " + ", ".join(
                f"{r['runtime']} x{r['ppl_ratio']:.3f}" for r in verdict["rows"])
        except (export.ExportUnsupported, RuntimeUnavailable) as exc:
            why = str(exc)
        except Exception as exc:  # noqa: BLE001 - the torch engine always serves
            log.exception("fast runtime unavailable")
            why = f"the fast runtime failed to start ({type(exc).__name__}: {exc})"
    lm.runtime = None
    lm.runtime_note = f"torch engine: {why}"
    return lm


# -- adapters trained in the app ----------------------------------------------------------------------------------
MAX_ADAPTER_ENGINES = 3  # each is a runtime process with its own merged copy of the model
_adapters: "collections.OrderedDict[str, RuntimeEngine | str]" = collections.OrderedDict()
_adapters_lock = threading.Lock()
BUILDING = "the fast runtime's merged copy of this adapter is being prepared (about 15 s); the torch engine answers " \
           "meanwhile"


def adapter_engine(lm, path, load_adapter: Callable, fallback: Callable) -> tuple[RuntimeEngine | None, str]:
    """The fast runtime serving `lm` with the LoRA adapter at `path` merged in (W + B·A, exported once with the
    base's chosen weights and precision), or None and why the torch engine serves it. The first request starts
    the merge and export in the background and is answered by torch: an export never runs on a request's path.
    load_adapter(lm, path) -> the PEFT model; fallback() -> the torch engine that takes over if the runtime stops."""
    base = lm.runtime
    if base is None or not base.alive or not getattr(base, "choice", None):
        return None, f"torch engine, as its base model ({lm.runtime_note})"
    key = str(path)
    with _adapters_lock:
        state = _adapters.get(key)
        if isinstance(state, RuntimeEngine) and state.alive:
            _adapters.move_to_end(key)
            return state, f"{state.label} (adapter merged into a copy of the weights)"
        if isinstance(state, str):
            return None, f"torch engine: {state}"
        _adapters[key] = BUILDING
    threading.Thread(target=_build_adapter, args=(lm, key, load_adapter, fallback), name="llmlab-adapter-export",
                     daemon=True).start()
    return None, f"torch engine: {BUILDING}"


def _build_adapter(lm, key: str, load_adapter: Callable, fallback: Callable) -> None:
    c = lm.runtime.choice
    try:
        merged = load_adapter(lm, key).merge_and_unload()  # PEFT: W <- W + (alpha / r) B A, the adapter gone
        folder = export.export(lm.key, merged, c.weights, f"adapter-{export.fingerprint(merged)}")
        del merged
        state: RuntimeEngine | str = start(folder, c, fallback)
    except Exception as exc:  # noqa: BLE001 - torch keeps serving this adapter, and the page says why
        log.exception("adapter export failed")
        state = f"the fast runtime could not take this adapter ({type(exc).__name__}: {str(exc)[:200]})"
    with _adapters_lock:
        _adapters[key] = state
        _adapters.move_to_end(key)
        engines = [k for k, v in _adapters.items() if isinstance(v, RuntimeEngine)]
        evicted = [_adapters.pop(k) for k in engines[:-MAX_ADAPTER_ENGINES]] if len(engines) > MAX_ADAPTER_ENGINES \
            else []
    for old in evicted:
        old.close()
