"""Classifier fine-tuning: swap the LM head (hidden -> vocabulary) for a new head (hidden -> 2 classes) and train
only the head, the head + the last k blocks, or everything — the lecture's spam/ham example.

The decoder is causal, so the last real token of a message has attended to every token before it: its final
hidden state is the message's summary (Raschka, "Build a Large Language Model From Scratch", ch. 6).
Frozen blocks compute the same thing every epoch, so we run them once and cache their output (the input to the
first trainable block); each epoch then pays only for the trainable blocks — which is why "training more layers
takes more time".

Shapes (legend in labs/__init__.py): B batch, T tokens, M hidden size (model width); the head has 2 classes.
"""
from __future__ import annotations

import copy
import csv
import io
import math
import random
import time
from collections import Counter
from dataclasses import dataclass

import plotly.graph_objects as go
import torch
import torch.nn.functional as F

from labs.core.charts import PALETTE, _layout
from labs.core.errors import ConfigError, DataError
from labs.data import asset
from labs.models import LoadedModel
from labs.runs import results
from labs.training import loop as training


MAX_BYTES = 5 * 1024 * 1024
BUNDLED = ("sft", "spam_ham.csv")


class LabelError(DataError):
    """The labelled file cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class LabelledSet:
    """Texts and their 0 / 1 labels (1 = the positive class, e.g. spam), with the two class names."""

    texts: tuple[str, ...]
    labels: tuple[int, ...]  # 0 / 1
    classes: tuple[str, str]  # class names for label 0 and 1
    skipped: int = 0  # rows with an empty text or label

    def __len__(self) -> int:
        return len(self.texts)


def parse_csv(data: bytes | str) -> LabelledSet:
    """A `text,label` CSV with exactly two distinct labels (e.g. spam / ham). Raises LabelError otherwise."""
    if isinstance(data, bytes):
        if len(data) > MAX_BYTES:
            raise LabelError(f"The file is {len(data) / 1e6:.1f} MB; the limit is {MAX_BYTES // 1e6:.0f} MB.")
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise LabelError(f"The file is not UTF-8 text (byte {exc.start} is invalid); save it as UTF-8 CSV.") from None
    if not data.strip():
        raise LabelError("The file is empty.")
    try:
        reader = csv.DictReader(io.StringIO(data))
        fields = [f.strip().lower() for f in (reader.fieldnames or [])]
        rows = list(reader)
    except csv.Error as exc:
        raise LabelError(f"The CSV could not be read ({exc}).") from None
    if "text" not in fields or "label" not in fields:
        raise LabelError(f"The CSV needs a header with 'text' and 'label' columns; found {fields or 'no header'}.")
    texts, raw, skipped = [], [], 0
    for row in rows:
        row = {(k or "").strip().lower(): (v or "") if isinstance(v, str) else "" for k, v in row.items()}
        text, label = row.get("text", "").strip(), row.get("label", "").strip().lower()
        if not text or not label:
            skipped += 1
            continue
        texts.append(text)
        raw.append(label)
    counts = Counter(raw)
    if len(counts) < 2:
        raise LabelError("Only one class found" + (f" ('{next(iter(counts))}')" if counts else "") +
                         ": a classifier needs examples of two classes, e.g. spam and ham.")
    if len(counts) > 2:
        listed = ", ".join(f"'{k}' ({n})" for k, n in counts.most_common(8))
        raise LabelError(f"Found {len(counts)} different labels ({listed}); this lab trains a two-class head. "
                         "Keep two labels (e.g. spam / ham) and remove or relabel the other rows.")
    # the positive class (1) is 'spam' / '1' / 'positive' / 'true' when present, else the rarer label
    positive = next((k for k in counts if k in ("spam", "1", "positive", "true", "yes")), counts.most_common()[-1][0])
    negative = next(k for k in counts if k != positive)
    return LabelledSet(tuple(texts), tuple(int(label == positive) for label in raw), (negative, positive), skipped)


def load_bundled() -> LabelledSet:
    """116 short messages written for this project, half spam, half ham (assets/sft/spam_ham.csv)."""
    return parse_csv(asset(*BUNDLED).read_bytes())


def split(data: LabelledSet, val_fraction: float = 0.25, seed: int = 0) -> tuple[LabelledSet, LabelledSet]:
    """Stratified split: the same share of each class goes to validation."""
    rng = random.Random(seed)
    train_idx, val_idx = [], []
    for c in (0, 1):
        idx = [i for i, y in enumerate(data.labels) if y == c]
        rng.shuffle(idx)
        n_val = max(1, round(len(idx) * val_fraction)) if len(idx) > 1 else 0
        val_idx += idx[:n_val]
        train_idx += idx[n_val:]
    rng.shuffle(train_idx)

    def pick(ids):
        return LabelledSet(tuple(data.texts[i] for i in ids), tuple(data.labels[i] for i in ids), data.classes)

    return pick(train_idx), pick(val_idx)


@dataclass(frozen=True)
class ClassifierConfig:
    """One classifier run: the settings in `blocks` train in turn on the same data; max_len in tokens."""

    model: str = "smollm2-135m-instruct"
    data: str = "bundled"  # or "upload:<name>:<sha1>"
    blocks: tuple[int, ...] = (0, 1, 2, 4)  # trainable last blocks to compare; 0 = head only, -1 = every weight
    epochs: int = 4
    batch_size: int = 16
    lr: float = 5e-4  # AdamW; the new head starts from scratch so it takes a larger rate than the blocks would alone
    max_len: int = 48  # tokens per message (longer ones are cut; the bundled messages are ~20 tokens)
    seed: int = 0

    def __post_init__(self):
        if not self.blocks:
            raise ConfigError("Choose at least one setting to train (e.g. head only).")
        if any(b < -1 for b in self.blocks):
            raise ConfigError("blocks are 0 (head only), k >= 1 (head + last k blocks) or -1 (everything).")
        training.check_between("epochs", self.epochs, 1, 50)
        training.check_between("batch_size", self.batch_size, 1, 256)
        training.check_lr(self.lr, "try 5e-4")
        training.check_between("max_len", self.max_len, 4, 2048, "tokens")


def encode(tokenizer, texts, max_len: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and mask (B, T)."""
    pad = training.pad_id(tokenizer)
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"][:max_len] or [pad] for t in texts]
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = 1
    return ids.to(device), mask.to(device)


def last_token(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """hidden (B, T, M), right-padded mask (B, T) -> the last real token's state (B, M)."""
    last = mask.sum(1) - 1  # (B,)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


class SpamClassifier(torch.nn.Module):
    """The last k blocks (+ final norm) of a copy of the decoder, and a new head M -> 2.

    k = 0: head only (input = the frozen model's final hidden states);
    1 <= k < L: input = the hidden states entering block L-k (computed once by the frozen blocks);
    k = L (or -1): the whole decoder trains from token ids.
    """

    def __init__(self, lm: LoadedModel, k: int, seed: int = 0):
        super().__init__()
        body = lm.model.model
        layers = list(body.layers)
        L = len(layers)
        self.k = L if k in (-1, L) or k > L else k
        torch.manual_seed(seed)
        hidden = lm.model.config.hidden_size
        self.head = torch.nn.Linear(hidden, 2)  # replaces lm_head: M -> 2 classes instead of M -> V
        self.body = None
        if self.k > 0:
            # Copy only what trains; frozen blocks and the embeddings stay shared (memo maps them to themselves).
            memo = {id(m): m for m in layers[:L - self.k]} if self.k < L else {}
            if self.k < L:
                memo[id(body.embed_tokens)] = body.embed_tokens
            self.body = copy.deepcopy(body, memo)
            self.body.layers = torch.nn.ModuleList(list(self.body.layers)[L - self.k:])
            self.body.config.num_hidden_layers = self.k
            if getattr(self.body.config, "layer_types", None):
                self.body.config.layer_types = list(self.body.config.layer_types)[L - self.k:]
            if self.k < L:
                self.body.embed_tokens = None  # never used: the input is the cached hidden state
            for p in self.body.parameters():
                p.requires_grad_(True)
        self.head.to(next(lm.model.parameters()).device)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """features: token ids (B, T) when every block trains, else cached hidden states (B, T, M); -> logits (B, 2)."""
        if self.body is None:
            h = features
        elif features.dtype == torch.long:
            h = self.body(input_ids=features, attention_mask=mask, use_cache=False).last_hidden_state
        else:
            h = self.body(inputs_embeds=features, attention_mask=mask, use_cache=False).last_hidden_state
        return self.head(last_token(h, mask).to(self.head.weight.dtype))


@torch.no_grad()
def frozen_features(lm: LoadedModel, ids: torch.Tensor, mask: torch.Tensor, k: int, batch_size: int = 32) -> torch.Tensor:
    """What the frozen part hands to the trainable part: final hidden states (k = 0) or the input of block L-k."""
    return frozen_features_for(lm, ids, mask, [k], batch_size)[k]


@torch.no_grad()
def frozen_features_for(lm: LoadedModel, ids: torch.Tensor, mask: torch.Tensor, ks, batch_size: int = 32) -> dict:
    """frozen_features for several k from one pass of the frozen model: {k: (B, T, M)}."""
    L = len(training.decoder_layers(lm.model))
    ks = sorted({k for k in ks if 0 <= k < L})
    out: dict[int, list] = {k: [] for k in ks}
    for i in range(0, len(ids), batch_size):
        with lm.lock:
            res = lm.model.model(input_ids=ids[i:i + batch_size], attention_mask=mask[i:i + batch_size],
                                 output_hidden_states=any(ks), use_cache=False)
        for k in ks:
            out[k].append(res.last_hidden_state if k == 0 else res.hidden_states[L - k])
    return {k: torch.cat(v).float() for k, v in out.items()}


def evaluate(clf: SpamClassifier, feats: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 32) -> tuple[float, float]:
    """(mean loss, accuracy)."""
    clf.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(labels), batch_size):
            logits = clf(feats[i:i + batch_size], mask[i:i + batch_size])
            loss += float(F.cross_entropy(logits.float(), labels[i:i + batch_size], reduction="sum"))
            correct += int((logits.argmax(-1) == labels[i:i + batch_size]).sum())
    clf.train()
    return loss / len(labels), correct / len(labels)


def classification_loss(clf: SpamClassifier, feats: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor
                        ) -> torch.Tensor:
    """Cross-entropy of the new head's two logits (B, 2) against the labels (B,) — Raschka ch. 6."""
    return F.cross_entropy(clf(feats, mask).float(), labels)


def _fit_setting(ctx, cfg: ClassifierConfig, clf: SpamClassifier, params: list, k: int, first_step: int,
                 train_set: tuple, val_set: tuple) -> tuple[training.FitResult, list[float]]:
    """`cfg.epochs` epochs of one blocks setting through the shared loop, evaluated and logged once per epoch.

    AdamW at a constant rate with weight decay 0.01; logged steps continue from `first_step` across settings.
    Returns the loop's FitResult and the training time of each epoch (evaluation excluded).
    """
    feats_tr, mask_tr, y_tr = train_set
    device = y_tr.device
    steps_per_epoch = math.ceil(len(y_tr) / cfg.batch_size)
    state = {"epoch": 0, "t_epoch": 0.0, "total_loss": 0.0}
    epoch_seconds: list[float] = []
    rng = torch.Generator().manual_seed(cfg.seed)

    def batches():
        for epoch in range(1, cfg.epochs + 1):
            state.update(epoch=epoch, t_epoch=time.perf_counter(), total_loss=0.0)
            order = torch.randperm(len(y_tr), generator=rng).to(device)
            for i in range(0, len(order), cfg.batch_size):
                yield order[i:i + cfg.batch_size]

    def loss_fn(idx) -> training.StepOutput:
        loss = classification_loss(clf, feats_tr[idx], mask_tr[idx], y_tr[idx])
        state["total_loss"] += loss.item() * len(idx)
        return training.StepOutput(loss, tokens=int(mask_tr[idx].sum()))

    def end_of_epoch(step: int) -> dict:
        epoch_seconds.append(time.perf_counter() - state["t_epoch"])
        _, train_acc = evaluate(clf, feats_tr, mask_tr, y_tr)
        val_loss, val_acc = evaluate(clf, *val_set)
        return dict(blocks=k, epoch=state["epoch"], train_loss=state["total_loss"] / len(y_tr), val_loss=val_loss,
                    train_acc=train_acc, val_acc=val_acc, epoch_seconds=epoch_seconds[-1])

    loop = training.LoopSettings(steps=steps_per_epoch * cfg.epochs, lr=cfg.lr, schedule="constant", weight_decay=0.01,
                                 eval_every=steps_per_epoch, log_every=0, first_step=first_step)
    return training.fit(ctx, params, batches(), loss_fn, loop, evaluate=end_of_epoch, device=device), epoch_seconds


def train(ctx, lm: LoadedModel, data: LabelledSet | None = None) -> dict:
    """A jobs step function: for each blocks setting, train `epochs` epochs; log accuracy and time per epoch."""
    cfg: ClassifierConfig = ctx.config
    data = data if data is not None else load_bundled()
    train_set, val_set = split(data, seed=cfg.seed)
    device = next(lm.model.parameters()).device
    L = len(training.decoder_layers(lm.model))
    ids_tr, mask_tr = encode(lm.tokenizer, train_set.texts, cfg.max_len, device)
    ids_va, mask_va = encode(lm.tokenizer, val_set.texts, cfg.max_len, device)
    y_tr = torch.tensor(train_set.labels, device=device)
    y_va = torch.tensor(val_set.labels, device=device)
    steps_per_epoch = math.ceil(len(y_tr) / cfg.batch_size)
    ctx.set_total(steps_per_epoch * cfg.epochs * len(cfg.blocks))
    ctx.note(f"{len(y_tr)} training and {len(y_va)} validation messages; classes {data.classes}.")
    t0 = time.perf_counter()
    ks = [L if b == -1 or b >= L else b for b in cfg.blocks]
    cache_tr = frozen_features_for(lm, ids_tr, mask_tr, ks)  # one pass of the frozen model serves every setting
    cache_va = frozen_features_for(lm, ids_va, mask_va, ks)
    frozen_seconds = time.perf_counter() - t0
    if cache_tr:
        ctx.note(f"Frozen part run once for every setting: {frozen_seconds:.1f} s.")
    step, results = 0, []
    for setting in cfg.blocks:
        k = L if setting == -1 or setting >= L else setting
        name = "everything" if k == L else ("head only" if k == 0 else f"head + last {k}")
        if k == L:
            feats_tr, feats_va = ids_tr, ids_va  # nothing frozen: every epoch runs the whole model
        else:
            feats_tr, feats_va = cache_tr[k], cache_va[k]
        clf = SpamClassifier(lm, k, seed=cfg.seed)
        params = [p for p in clf.parameters() if p.requires_grad]
        trainable = sum(p.numel() for p in params)
        _, acc0 = evaluate(clf, feats_va, mask_va, y_va)
        fit, epoch_seconds = _fit_setting(ctx, cfg, clf, params, k, step, (feats_tr, mask_tr, y_tr),
                                          (feats_va, mask_va, y_va))
        step += fit.steps
        val_acc, train_acc = fit.last_eval["val_acc"], fit.last_eval["train_acc"]
        ctx.note(f"{name}: {trainable:,} trainable parameters, validation accuracy {acc0:.0%} -> {val_acc:.0%}, "
                 f"{sum(epoch_seconds) / len(epoch_seconds):.2f} s per epoch")
        results.append({"setting": name, "blocks": k, "trainable": trainable, "val_acc_before": acc0,
                        "val_acc": val_acc, "train_acc": train_acc, "seconds_per_epoch": sum(epoch_seconds) / len(epoch_seconds),
                        "frozen_seconds_once": frozen_seconds if k < L else 0.0})
        del clf, fit
    ctx.save_json("classifier.json", results)
    return {"results": results, "classes": list(data.classes)}


def summary_rows(metrics: list[dict]) -> list[dict]:
    """One row per blocks setting from a run's metrics: last-epoch accuracy and mean seconds per epoch."""
    by_k: dict[int, list[dict]] = {}
    for m in metrics:
        if "blocks" in m:
            by_k.setdefault(int(m["blocks"]), []).append(m)
    return [{"trainable blocks": k, "epochs": len(rows), "val_acc": rows[-1]["val_acc"], "train_acc": rows[-1]["train_acc"],
             "seconds_per_epoch": sum(r["epoch_seconds"] for r in rows) / len(rows)} for k, rows in by_k.items()]


def blocks_chart(rows: list[dict]):
    """Validation accuracy (bars, left axis) and seconds per epoch (line, right axis) vs trainable blocks."""

    labels = [("head only" if r["trainable blocks"] == 0 else f"head + {r['trainable blocks']}") for r in rows]
    fig = go.Figure()
    fig.add_bar(x=labels, y=[r["val_acc"] for r in rows], name="validation accuracy", marker_color=PALETTE[0],
                text=[f"{r['val_acc']:.0%}" for r in rows], textposition="auto")
    fig.add_scatter(x=labels, y=[r["seconds_per_epoch"] for r in rows], name="seconds per epoch", yaxis="y2",
                    mode="lines+markers", line=dict(color=PALETTE[1], width=3))
    fig.update_layout(yaxis=dict(range=[0, 1.05], tickformat=".0%"),
                      yaxis2=dict(overlaying="y", side="right", title="seconds per epoch", rangemode="tozero"))
    return _layout(fig, "Accuracy and time per epoch vs trainable blocks", "what trains", "validation accuracy")


def trainable_count(lm: LoadedModel, k: int) -> int:
    """Trainable parameters of SpamClassifier(lm, k) from shapes: head (M*2 + 2) + last k blocks + final norm."""
    body = lm.model.model
    L = len(body.layers)
    head = lm.model.config.hidden_size * 2 + 2
    if k == -1 or k >= L:
        return head + sum(p.numel() for p in body.parameters())
    if k == 0:
        return head
    return head + sum(p.numel() for layer in list(body.layers)[L - k:] for p in layer.parameters()) + \
        sum(p.numel() for p in body.norm.parameters())


results.register(ClassifierConfig, results.read_classifier)
