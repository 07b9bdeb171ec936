"""Labels are the inputs shifted by one: per-position next-token loss of a causal LM, and the check that the loss
transformers computes with labels = input_ids is the shifted one."""
from __future__ import annotations

import math

import torch

from labs.core.errors import ConfigError


# ---------------------------------------------------------------------------------------------------------------
# Labels are the inputs shifted by one
# ---------------------------------------------------------------------------------------------------------------


DEFAULT_SENTENCE = "Labels are the inputs shifted by one position, so every token teaches the model something."


@torch.no_grad()
def shift_check(lm, text: str, max_tokens: int = 64) -> tuple[float, float]:
    """(the model's own loss with labels = input_ids, the mean loss of predicting each token at its own position).

    transformers shifts the labels inside its loss, so the first equals the mean of next_token_rows' losses; the
    second scores the same tokens without the shift and is far off, which shows the shift is what makes the match."""
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"][: max_tokens + 1]
    if len(ids) < 2:
        raise ConfigError("The text must have at least two tokens.")
    x = torch.tensor([ids], device=lm.device)
    with lm.lock:
        out = lm.model(input_ids=x, labels=x)
    logp = out.logits[0].float().log_softmax(-1)  # (T, V)
    unshifted = -logp.gather(1, x[0][:, None])[:, 0].mean()
    return float(out.loss), float(unshifted)


def shift_for_next_token(ids: list[int]) -> tuple[list[int], list[int]]:
    """inputs = ids[:-1], labels = ids[1:]: position t is trained to predict token t + 1."""
    return list(ids[:-1]), list(ids[1:])


@torch.no_grad()
def next_token_rows(lm, text: str, max_tokens: int = 64) -> list[dict]:
    """Per-position next-token loss of a causal LM on `text` (its own tokenizer, no special tokens).

    Returns rows: position, input token, label token (= next input), p(label), loss = -ln p(label), top guess.
    """
    if not text.strip():
        raise ConfigError("Type a sentence first.")
    tok = lm.tokenizer
    ids = tok(text, add_special_tokens=False)["input_ids"][: max_tokens + 1]
    if len(ids) < 2:
        raise ConfigError("The text must have at least two tokens: one input and the label that follows it.")
    inputs, labels = shift_for_next_token(ids)
    x = torch.tensor([ids], device=lm.device)
    with lm.lock:
        logits = lm.model(input_ids=x).logits[0, :-1].float()  # (T-1, V): position t predicts ids[t+1]
    logp = logits.log_softmax(-1)
    label_t = torch.tensor(labels, device=logp.device)
    losses = -logp.gather(1, label_t[:, None])[:, 0]
    top = logits.argmax(-1).tolist()
    show = lambda i: tok.decode([i]).replace(" ", "␣").replace("\n", "\\n")  # noqa: E731  (spaces are part of tokens)
    return [{"position": t, "input": show(i), "label": show(l), "p(label)": math.exp(-loss),
             "loss": loss, "model's top guess": show(g)}
            for t, (i, l, loss, g) in enumerate(zip(inputs, labels, losses.tolist(), top))]
