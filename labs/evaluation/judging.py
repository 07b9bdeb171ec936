"""LLM-as-a-judge: pairwise verdicts in both orders, the judge's biases (position, first slot, length), pairs with a
known better answer, and a plain sentence on how far to trust the judge."""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Sequence

from labs import models
from labs.core.errors import ConfigError
from labs.evaluation.generative import normalize_answer
from labs.evaluation.scoring import encode_pair, score_choices
from labs.runs import results
from labs.serving import endpoints as backends
from labs.serving.generation import GenerationConfig, render_prompt


# ---------------------------------------------------------------------------------------------------------------
# Pairwise LLM-as-a-judge, both orders (Zheng et al. 2023, "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena")
# ---------------------------------------------------------------------------------------------------------------
JUDGE_PROMPT = ("You are a strict judge. Which response answers the question better?\n\n"
                "Question: {question}\n\nResponse 1: {first}\n\nResponse 2: {second}\n\n"
                "Reply with the number of the better response, 1 or 2.")


def combine_orders(pick_ab: int, pick_ba: int) -> str:
    """Verdict from two judgments: (A shown first) and (B shown first); picks are slots 1 or 2 (0 = the judge
    named neither, which only a judge that writes text can do; that pair is a tie).
    A wins only if chosen in both orders, B likewise; a judge that changes its mind when the order flips is
    showing position bias, and that counts as a tie (MT-Bench's conservative rule)."""
    if 0 in (pick_ab, pick_ba):
        return "tie"
    a_wins_ab, a_wins_ba = pick_ab == 1, pick_ba == 2
    if a_wins_ab and a_wins_ba:
        return "A"
    if not a_wins_ab and not a_wins_ba:
        return "B"
    return "tie"


def judge_by_text(judge, text: str) -> tuple[int, float]:
    """A judge behind an endpoint gives no probabilities: it writes its verdict (greedy, a few tokens) and the
    first '1' or '2' in it is the pick; P(slot 1) is then 1, 0, or NaN when it named neither (pick 0)."""
    reply = backends.generate(judge, text, GenerationConfig(max_new_tokens=8, temperature=0.0, seed=0,
                                                            repetition_penalty=1.0))
    found = re.search(r"[12]", reply)
    if not found:
        return 0, float("nan")
    pick = int(found.group())
    return pick, 1.0 if pick == 1 else 0.0


def judge_once(judge, question: str, first: str, second: str) -> tuple[int, float]:
    """(slot picked, P(slot 1) renormalised over {1, 2}): the judge's next-token log-likelihood of '1' vs '2'
    (a local judge), or the number it writes (an endpoint: judge_by_text)."""
    text = JUDGE_PROMPT.format(question=question, first=first, second=second)
    if backends.is_endpoint(judge):
        return judge_by_text(judge, text)
    chat = judge.spec.prompt_format == "chat"
    context = render_prompt(judge, text) if chat else text + "\nBetter response:"
    sep = "" if chat else " "
    pairs = [encode_pair(judge.tokenizer, context, sep + s) for s in ("1", "2")]
    with judge.lock:
        (l1, _), (l2, _) = score_choices(judge.model, pairs[0][0], [pairs[0][1], pairs[1][1]])
    p1 = 1 / (1 + math.exp(l2 - l1))
    return (1 if l1 >= l2 else 2), p1


def judge_pair(judge: models.LoadedModel, question: str, a: str, b: str) -> dict:
    """Ask the judge twice, with a and b in both orders: picks (1, 2 or 0 for no verdict), the probability of
    slot 1 in each order, and the combined verdict."""
    pick_ab, p_ab = judge_once(judge, question, a, b)
    pick_ba, p_ba = judge_once(judge, question, b, a)
    return {"pick_ab": pick_ab, "pick_ba": pick_ba, "p1_ab": p_ab, "p1_ba": p_ba,
            "verdict": combine_orders(pick_ab, pick_ba)}


def judge_biases(records: Sequence[dict]) -> dict:
    """Rates measured on this run. Each record: verdict, pick_ab, pick_ba, a, b, and optionally gold ('A'/'B').

    position_bias: share of pairs where the judge chose the same slot in both orders (so the verdict flipped);
    first_slot: share of all single judgments that chose slot 1 (0.5 = no preference);
    length_bias: among decided pairs of different lengths, share won by the longer response (0.5 = none);
    accuracy: among pairs with a known better answer, share the judge got right (ties count as wrong)."""
    n = len(records)
    if not n:
        return {}
    same_slot = sum(r["pick_ab"] == r["pick_ba"] != 0 for r in records)
    first = sum((r["pick_ab"] == 1) + (r["pick_ba"] == 1) for r in records)
    decided = [r for r in records if r["verdict"] != "tie" and len(r["a"]) != len(r["b"])]
    longer_won = sum((r["verdict"] == "A") == (len(r["a"]) > len(r["b"])) for r in decided)
    known = [r for r in records if r.get("gold")]
    out = {"pairs": n, "ties": sum(r["verdict"] == "tie" for r in records) / n, "position_bias": same_slot / n,
           "first_slot": first / (2 * n), "length_bias": longer_won / len(decided) if decided else float("nan"),
           "decided_with_length_gap": len(decided)}
    if known:
        out["accuracy"] = sum(r["verdict"] == r["gold"] for r in known) / len(known)
        out["known_pairs"] = len(known)
    return out


_PADDING = (" I am quite confident about this, because it is a well-known fact that is explained in many "
            "textbooks and encyclopedias, and most experts would give the same answer.")


def known_pairs(rows: Sequence[dict], seed: int = 0) -> list[dict]:
    """Pairs with a known better answer: the reference vs another question's answer. Half the time the right
    answer gets the long, confident padding and half the time the wrong one does, so length and correctness are
    independent, and which one is shown as 'A' is shuffled: a fair judge scores ~50% length bias."""
    rng = random.Random(seed)
    out = []
    answers = [r["answer"] for r in rows]
    for i, row in enumerate(rows):
        wrong = next((a for a in answers[i + 1:] + answers[:i] if normalize_answer(a) != normalize_answer(row["answer"])),
                     "I don't know")
        right_text, wrong_text = f"{row['answer']}.", f"{wrong}."
        if i % 2:
            right_text = f"The answer is {row['answer']}.{_PADDING}"
        else:
            wrong_text = f"The answer is {wrong}.{_PADDING}"
        if rng.random() < 0.5:
            out.append({"question": row["prompt"], "a": right_text, "b": wrong_text, "gold": "A"})
        else:
            out.append({"question": row["prompt"], "a": wrong_text, "b": right_text, "gold": "B"})
    return out


@dataclass(frozen=True)
class JudgeConfig:
    """An LLM-as-judge run: the judge model and the pairs it judges (known right/wrong pairs, or two runs'
    answers)."""
    judge_key: str = models.DEFAULT_CHAT_MODEL
    pairs_source: str = "known"  # "known" (reference vs wrong answer) or "runs:<run_a>,<run_b>"
    data_digest: str = "bundled"
    seed: int = 0

    def __post_init__(self):
        models.spec(self.judge_key)
        if not (self.pairs_source == "known" or self.pairs_source.startswith("runs:")):
            raise ConfigError("pairs_source must be 'known' or 'runs:<run_a>,<run_b>'.")


def run_judge(ctx, judge: models.LoadedModel, pairs: Sequence[dict]) -> dict:
    """Judge every pair in both orders, logging position bias, first-slot share, accuracy and ties as it goes;
    judgments.json keeps every record."""
    ctx.set_total(len(pairs))
    records = []
    try:
        for i, pair in enumerate(pairs, 1):
            records.append(dict(pair, **judge_pair(judge, pair["question"], pair["a"], pair["b"])))
            rates = judge_biases(records)
            ctx.log(step=i, **{k: v for k, v in rates.items() if k in ("position_bias", "first_slot", "accuracy", "ties")})
    finally:
        ctx.save_json("judgments.json", {"records": records, "rates": judge_biases(records)})
    return judge_biases(records)


def run_pairs(outputs_a: Sequence[dict], outputs_b: Sequence[dict]) -> list[dict]:
    """Pairs from two generative runs on the same prompts: model A's answer vs model B's (no known winner)."""
    by_prompt = {r["prompt"]: r for r in outputs_b}
    pairs = [{"question": r["prompt"], "a": r["output"].strip() or "(empty)", "b": by_prompt[r["prompt"]]["output"].strip()
              or "(empty)"} for r in outputs_a if r["prompt"] in by_prompt]
    if not pairs:
        raise ConfigError("The two Q&A runs share no prompts; run both on the same prompt/answer set.")
    return pairs


def judge_verdict_text(rates: dict, judge_name: str) -> str:
    """A plain sentence about how far to trust this judge, from the rates measured on this run."""
    parts = [f"{judge_name} as a judge:"]
    if "accuracy" in rates:
        parts.append(f"it picked the right answer in {rates['accuracy']:.0%} of {rates['known_pairs']} pairs whose "
                     "answer we know (a coin flip that never ties would get about 50%).")
    parts.append(f"In {rates['position_bias']:.0%} of pairs its choice followed the position, not the content.")
    if math.isfinite(rates.get("length_bias", float("nan"))):
        parts.append(f"The longer response won {rates['length_bias']:.0%} of decided pairs.")
    parts.append("A 135M–270M model cannot read two answers and compare them reliably; its verdicts here show the "
                 "biases, not quality. Real LLM-as-a-judge setups use a far stronger model than the one judged, "
                 "swap orders, and check agreement with humans.")
    return " ".join(parts)


results.register(JudgeConfig, results.evaluation_reader("judge", "judgments.json"))
