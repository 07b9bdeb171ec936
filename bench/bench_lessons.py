"""Lessons benchmark: does each lecture claim hold when the page's default experiment runs? Writes JSON.

    python -m bench.bench_lessons                 # every claim, at most --budget seconds each
    python -m bench.bench_lessons --list          # the claims, one id per line first
    python -m bench.bench_lessons --only C13 C1   # just these (their entries in the results file are replaced)
    python -m bench.bench_lessons --table         # the results file as the README's Markdown table

Each claim runs the page's default configuration through the same labs functions the page calls (real models,
SmolLM2-135M-Instruct), and its figures go through the criterion in labs/runs/lessons.py. Output, in
bench/results/lessons.json: [{id, statement, criterion, verdict, figure, figures, reason, seconds, measured_at,
matmul_gflops}] (this machine's float32 matmul rate just before the claim: the same CPU differs ~2x between days).
Each claim runs in a process of its own (--in-process: one after another in this one).
A claim whose run fails, or is stopped at the time budget, reports "not measured yet" with the reason; a claim
this benchmark does not run yet says so. Run it on an idle machine: timings are part of some claims.
"""
from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench  # noqa: E402
from labs.core import compute, hardware  # noqa: E402
from labs.runs import lessons as L  # noqa: E402

RESULTS = bench.RESULTS / "lessons.json"
BUDGET_S = 120.0  # the limit per claim on an idle 2-core CPU


class OverBudget(Exception):
    pass


class BenchContext:
    """Enough of labs.runs.jobs.RunContext to run a step function inline, with a deadline instead of a Stop button."""

    def __init__(self, config, deadline: float):
        self.config, self.deadline, self.seed = config, deadline, getattr(config, "seed", 0)
        self.metrics, self.notes, self.total = [], [], None
        self.run_id = "lessons-bench"
        self._tmp = tempfile.TemporaryDirectory(prefix="llmlab-lessons-")
        self.artifacts = Path(self._tmp.name)

    def set_total(self, n):
        self.total = n

    def should_stop(self) -> bool:
        return time.perf_counter() > self.deadline

    def check_stop(self):
        if self.should_stop():
            raise OverBudget()

    def log(self, **m):
        self.metrics.append(m)
        self.check_stop()

    def note(self, text):
        self.notes.append(text)

    def save_json(self, name, obj):
        (self.artifacts / name).write_text(json.dumps(obj, default=str))


_MODELS: dict = {}


def chat_model():
    """The page's default model, loaded once for every claim that needs it."""
    from labs import models

    if "chat" not in _MODELS:
        _MODELS["chat"] = models.load_model(models.DEFAULT_CHAT_MODEL)
    return _MODELS["chat"]


def embedder():
    """The default embedding model, loaded once."""
    from labs import models

    if "embedder" not in _MODELS:
        _MODELS["embedder"] = models.load_embedder()
    return _MODELS["embedder"]


def c9_setup() -> None:
    """Before C9's timer, as on the page: the embedder loaded and the corpus embedded into Chroma (the page's Build
    button, a step and a prepared demo of its own), as every claim's chat model is loaded before its timer."""
    from labs.rag import evaluate

    evaluate.claim_index(evaluate.RagClaimConfig(), embedder())


SETUP = {"C9": c9_setup}  # claim -> what the page has done before its button is pressed (timed apart: setup_seconds)


# ---------------------------------------------------------------------------------------------------------------
# Runners: the page's default configuration through labs -> figures -> the claim's criterion
# ---------------------------------------------------------------------------------------------------------------
def c1(deadline: float) -> L.Verdict:
    from labs.mixtures import calculator

    rows, _ = calculator.mixture_table(list(calculator.GPT3.sources), calculator.GPT3.budget_b)
    return L.mixture_epochs(rows, source=calculator.GPT3.citation)


def c2(deadline: float) -> L.Verdict:
    from labs.mixtures import next_token

    lm = chat_model()
    text = next_token.DEFAULT_SENTENCE
    rows = next_token.next_token_rows(lm, text)
    return L.labels_shifted([r["loss"] for r in rows], *next_token.shift_check(lm, text))


def c3(deadline: float) -> L.Verdict:
    from labs.mixtures import pretrain

    cfg = pretrain.MixtureRunConfig(repeat_domain=pretrain.OVERFIT_DOMAIN)
    ctx = BenchContext(cfg, deadline)
    pretrain.train_mixture(ctx)
    return pretrain.overfitting_verdict(ctx.metrics, cfg.repeat_domain)


def c5(deadline: float) -> L.Verdict:
    from labs.finetune import classifier

    ctx = BenchContext(classifier.ClassifierConfig(), deadline)
    out = classifier.train(ctx, chat_model())
    return L.cost_grows_with_blocks({r["blocks"]: r["seconds_per_epoch"] for r in out["results"]})


def c4(deadline: float) -> L.Verdict:
    from labs.finetune import sft

    # The page's default sweep: its default settings at each of the default sizes (8/16/32/64; 128 is one click
    # more on the page and adds about a minute).
    sizes = sft.SWEEP_DEFAULT
    train, heldout = sft.load_bundled()
    summaries = []
    for n in sizes:
        ctx = BenchContext(sft.sweep_config(sft.SFTConfig(), n), deadline)
        summaries.append((n, sft.train(ctx, chat_model(), train, heldout)))
        ctx.check_stop()
    v = sft.size_verdict(sft.size_points(summaries))
    v.figures["sizes"] = list(sizes)
    return v


def _lora_runs(configs, deadline: float) -> list[dict]:
    from labs.finetune import lora

    out = []
    for cfg in configs:
        ctx = BenchContext(cfg, deadline)
        out.append(lora.train_lora(ctx, chat_model()))
    return out


def c6(deadline: float) -> L.Verdict:
    from labs.finetune import lora

    # The page's default sweep: the ranks the claim compares, at the page's default training settings.
    ranks = lora.SWEEP_RANKS
    runs = _lora_runs([lora.LoraRunConfig(r=r) for r in ranks], deadline)
    v = lora.rank_verdict(runs)
    v.figures["seconds_per_run"] = {r["r"]: round(r["train_seconds"], 1) for r in runs}
    return v


def c7(deadline: float) -> L.Verdict:
    from labs.finetune import lora

    plan = lora.equal_budget_plan(lora.model_architecture(lora.LoraRunConfig().model_key), ("W_q", "W_q+W_v"))
    runs = dict(zip((name for name, _, _ in plan), _lora_runs(
        [lora.LoraRunConfig(r=r, targets=t) for _, t, r in plan], deadline)))
    v = lora.qv_verdict(runs["W_q+W_v"], runs["W_q"])
    v.figures["ranks"] = {name: r for name, _, r in plan}
    v.figures["train_seconds"] = {name: round(run["train_seconds"], 1) for name, run in runs.items()}
    return v


def c8(deadline: float) -> L.Verdict:
    from labs.finetune import dpo
    from labs.data import preferences

    train, held = preferences.bundled()  # the page's default data; its default settings are DPOConfig's
    cfg = dpo.DPOConfig(data_id=preferences.fingerprint(train.pairs + held.pairs), n_train=len(train.pairs),
                        n_heldout=len(held.pairs))
    ctx = BenchContext(cfg, deadline)
    out = dpo.train(ctx, chat_model(), train.pairs, held.pairs)
    heldout = json.loads((ctx.artifacts / "result.json").read_text()).get("heldout")
    v = dpo.claim_verdict(ctx.metrics, heldout=heldout)
    v.figures["heldout_policy_prefers_chosen"] = out["heldout_policy_prefers_chosen"]
    return v


def c9(deadline: float) -> L.Verdict:
    from labs.rag import evaluate

    cfg = evaluate.RagClaimConfig()  # the page's default: all 30 bundled questions, k = 4, its fusion weight
    ctx = BenchContext(cfg, deadline)
    summary = evaluate.run_rag_claim(ctx, embedder(), chat_model())
    return evaluate.rag_claim_verdict(summary)


def c10(deadline: float) -> L.Verdict:
    from labs.attention import cost

    cfg = cost.CostConfig(variants=("softmax", "linear"))  # the page's lengths and shapes; the two the claim names
    rows = cost.measure(cfg, "cpu", should_stop=lambda: time.perf_counter() > deadline)
    if time.perf_counter() > deadline:
        raise OverBudget()
    return cost.slopes_verdict(rows)


def c11(deadline: float) -> L.Verdict:
    from labs.attention import sweep

    cfg = sweep.PairsSweepConfig()  # the page's default pairs sweep
    ctx = BenchContext(cfg, deadline)
    result = sweep.run(ctx)
    v = L.recall_vs_state(result["accuracy"])
    v.figures.update(pairs=result["pairs"], steps=cfg.steps, mixers=list(cfg.mixers))
    return v


def _length_sweep(cfg, deadline: float) -> L.Verdict:
    from labs.attention import sweep

    ctx = BenchContext(cfg, deadline)
    result = sweep.run_lengths(ctx)
    v = sweep.length_verdict(True, ctx.metrics, {"task": cfg.task, "mixers": list(cfg.mixers),
                                                 "lengths": result["lengths"]})
    v.figures.update(lengths=result["lengths"], steps=cfg.steps, mixers=list(cfg.mixers), scored=result["scored"])
    return v


def c11b(deadline: float) -> L.Verdict:
    from labs.attention import sweep

    return _length_sweep(sweep.PalindromeSweepConfig(), deadline)  # the page's default palindrome sweep


def c11c(deadline: float) -> L.Verdict:
    from labs.attention import sweep

    return _length_sweep(sweep.ParitySweepConfig(), deadline)  # the page's default parity sweep


def c12(deadline: float) -> L.Verdict:
    from labs.attention import memory

    return memory.hybrid_verdict(1_000_000)  # the page's default context


def c13(deadline: float) -> L.Verdict:
    from labs.evaluation import judging
    from labs.data import benchmarks as bm

    pairs = judging.known_pairs(bm.load_bundled_generative())  # the page's default: known pairs from the bundled Q&A
    ctx = BenchContext(judging.JudgeConfig(), deadline)
    rates = judging.run_judge(ctx, chat_model(), pairs)
    v = L.judge_position_bias(round(rates["position_bias"] * rates["pairs"]), rates["pairs"])
    v.figures.update({k: rates[k] for k in ("first_slot", "accuracy", "ties") if k in rates})
    return v


def c14(deadline: float) -> L.Verdict:
    from labs.evaluation import contamination

    # 48 bundled items, two equal 48-step LoRA fine-tunes
    ctx = BenchContext(contamination.ContaminationConfig(), deadline)
    return contamination.contamination_verdict(contamination.run_contamination(ctx, chat_model()))


def m4(deadline: float) -> L.Verdict:
    from labs.mixtures import comparison

    ctx = BenchContext(comparison.QualityComparisonConfig(), deadline)  # the page's default: 'web', equal steps
    return comparison.quality_verdict(comparison.run_quality_comparison(ctx))


NEEDS_MODEL = {"C2", "C4", "C5", "C6", "C7", "C8", "C9", "C13", "C14"}  # the model is loaded once before these, so their seconds are the experiment's
NOT_WIRED = ("this benchmark does not run it yet: its default run is not wired into bench_lessons "
             "(measure it on the {page} page)")
RUNNERS = {"C1": c1, "C2": c2, "C3": c3, "C4": c4, "C5": c5, "C6": c6, "C7": c7, "C8": c8, "C9": c9, "C10": c10, "C11": c11, "C11b": c11b, "C11c": c11c, "C12": c12, "C13": c13, "C14": c14, "M4": m4}


def fresh_start(wait_s: float = 30.0) -> None:
    """What a claim finds when it starts, the same in a full run as alone: the whole CPU budget on this thread
    (torch's thread count is process-wide in practice: an engine that decoded beside an earlier claim's training set
    it to half the cores), no engine still decoding an earlier claim's answers, and the earlier claims' garbage
    collected. `--alone` measures whether it is enough: each claim again in a process of its own."""
    deadline = time.perf_counter() + wait_s
    while compute.active("generation") and time.perf_counter() < deadline:
        time.sleep(0.1)
    gc.collect()
    compute.reset_threads()


def run_claim(claim_id: str, budget_s: float = BUDGET_S) -> L.Verdict:
    claim = L.CLAIMS[claim_id]
    runner = RUNNERS.get(claim_id)
    fresh_start()
    setup_seconds = None
    if runner is not None and claim_id in SETUP:
        t0 = time.perf_counter()
        try:
            SETUP[claim_id]()
        except Exception as exc:  # reported by the claim itself, which needs the same things
            print(f"# {claim_id}'s setup failed: {exc}", file=sys.stderr, flush=True)
        setup_seconds = round(time.perf_counter() - t0, 2)
        fresh_start()
    t0 = time.perf_counter()
    if runner is None:
        verdict = L.not_measured(claim_id, NOT_WIRED.format(page=claim.page))
    else:
        try:
            verdict = runner(t0 + budget_s)
        except OverBudget:
            verdict = L.not_measured(claim_id, f"stopped at the time budget of {budget_s:.0f} s before it finished")
        except Exception as exc:  # a failed run is reported, never turned into a verdict
            verdict = L.not_measured(claim_id, f"the run failed: {type(exc).__name__}: {exc}")
    verdict.seconds = round(time.perf_counter() - t0, 2) if runner is not None else None
    if setup_seconds is not None:
        verdict.figures["setup_seconds"] = setup_seconds  # not in `seconds`, as the chat model's load is not
    return verdict


def in_own_process(claim_id: str, budget_s: float) -> dict:
    """The claim run in a process of its own (a fresh interpreter: nothing left over from other claims, the model
    loaded there and not counted); its results entry, or a "not measured yet" entry saying why the process failed."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "claim.json"
        proc = subprocess.run([sys.executable, "-m", "bench.bench_lessons", "--only", claim_id, "--budget",
                               str(budget_s), "--out", str(out), "--in-process"], cwd=ROOT, check=False,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        entry = load_results(out).get(claim_id)
    if entry is None:
        tail = (proc.stderr or "").strip().splitlines()[-1:] or ["no output"]
        verdict = L.not_measured(claim_id, f"its process ended with code {proc.returncode}: {tail[0]}")
        entry = dict(verdict.to_json(), measured_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
    return entry


def alone(claim_id: str, budget_s: float, seconds_full: float | None) -> dict:
    """The claim run again in a process of its own: its seconds, and the full run's seconds over them."""
    entry = in_own_process(claim_id, budget_s)
    seconds = entry.get("seconds")
    ratio = round(seconds_full / seconds, 2) if seconds and seconds_full else None
    return {"seconds_alone": seconds, "verdict_alone": entry.get("verdict"), "full_over_alone": ratio,
            "matmul_gflops_alone": entry.get("matmul_gflops")}


def load_results(path: Path = RESULTS) -> dict[str, dict]:
    if not path.exists():
        return {}
    return {d["id"]: d for d in json.loads(path.read_text())}


def markdown_table(results: dict[str, dict]) -> str:
    """The README's claims table from a results file: id, statement, verdict, the measured figure (and the reason
    when it does not hold or was not measured), seconds."""
    def cell(text) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| id | claim | verdict | measured | s |", "|---|---|---|---|---|"]
    for claim in L.CLAIMS.values():
        r = results.get(claim.id)
        if r is None:
            lines.append(f"| {claim.id} | {cell(claim.statement)} | not measured yet | no run in the results file | – |")
            continue
        measured = r["figure"] if r["verdict"] != L.NOT_MEASURED else ""
        if r.get("reason"):
            measured = f"{measured}. {r['reason']}" if measured else r["reason"]
        seconds = "–" if r.get("seconds") is None else f"{r['seconds']:.1f}"
        lines.append(f"| {claim.id} | {cell(claim.statement)} | {r['verdict']} | {cell(measured)} | {seconds} |")
    return "\n".join(lines)


def run_here(ids: list[str], budget_s: float) -> dict[str, dict]:
    """The claims one after another in this process (the model loaded once first, not counted)."""
    if NEEDS_MODEL & set(ids):
        t0 = time.perf_counter()
        try:
            chat_model()
            print(f"# model loaded in {time.perf_counter() - t0:.1f} s (not counted in any claim's seconds)",
                  file=sys.stderr, flush=True)
        except Exception as exc:  # each claim that needs it reports the failure as its reason
            print(f"# the model did not load: {exc}", file=sys.stderr, flush=True)
    entries = {}
    for claim_id in ids:
        gflops = round(hardware.matmul_gflops(n=1024, repeats=5), 1)  # this machine's speed now: days differ ~2x
        verdict = run_claim(claim_id, budget_s)
        entries[claim_id] = dict(verdict.to_json(), measured_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
                                 matmul_gflops=gflops)
        print(json.dumps(entries[claim_id], default=str), flush=True)
    return entries


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the claims, one id per line first, and exit")
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these claims (e.g. C11)")
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="seconds per claim before it is stopped")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file (entries of other claims are kept)")
    parser.add_argument("--alone", action="store_true", help="then run each claim again in a process of its own and "
                                                             "report both times (seconds, seconds_alone)")
    parser.add_argument("--in-process", action="store_true", help="run the claims one after another in this process "
                                                                  "(the default starts a process per claim)")
    parser.add_argument("--table", action="store_true", help="print the results file as the README's Markdown table "
                                                             "and exit (runs nothing)")
    args = parser.parse_args(argv)
    if args.table:
        print(markdown_table(load_results(args.out)))
        return []
    if args.list:
        for c in L.CLAIMS.values():
            print(f"{c.id}\t{c.page}: {c.statement}")
        return []
    by_upper = {c.upper(): c for c in L.CLAIMS}  # ids are matched without case: C11b, c11b and C11B alike
    ids = [by_upper.get(i.upper(), i.upper()) for i in (args.only or L.CLAIMS)]
    unknown = [i for i in ids if i not in L.CLAIMS]
    if unknown:
        parser.error(f"unknown claim(s) {', '.join(unknown)}; --list shows them")
    results = load_results(args.out)
    if args.in_process or len(ids) == 1:
        results.update(run_here(ids, args.budget))
    else:  # each claim in a fresh process: what earlier claims leave behind in a process cannot slow a later one
        for claim_id in ids:
            results[claim_id] = in_own_process(claim_id, args.budget)
            print(json.dumps(results[claim_id], default=str), flush=True)
    if args.alone:
        for claim_id in ids:
            results[claim_id].update(alone(claim_id, args.budget, results[claim_id].get("seconds")))
            print(f"# {claim_id}: {results[claim_id].get('seconds')} s in the full run, "
                  f"{results[claim_id].get('seconds_alone')} s alone", file=sys.stderr, flush=True)
    ordered = [results[c] for c in L.CLAIMS if c in results]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(ordered, indent=2, default=str) + "\n")
    return ordered


if __name__ == "__main__":
    main()
