"""Classifier fine-tuning: CSV checks, the cached frozen part equals running the whole model, training learns."""
import types

import pytest
import torch

from labs.finetune import classifier as clf


def test_bundled_spam_set_is_balanced():
    data = clf.load_bundled()
    assert len(data) >= 100 and data.classes == ("ham", "spam")
    assert abs(sum(data.labels) - len(data) / 2) <= 5


@pytest.mark.parametrize("text, words", [
    ("text,label\nhello,ham\nhi,ham\n", "one class"),
    ("text,label\na,spam\nb,ham\nc,maybe\n", "3 different labels"),
    ("message,kind\na,spam\n", "'text' and 'label'"),
    ("", "empty"),
])
def test_bad_csvs_say_what_is_wrong(text, words):
    with pytest.raises(clf.LabelError, match=words):
        clf.parse_csv(text)


def test_non_utf8_csv():
    with pytest.raises(clf.LabelError, match="UTF-8"):
        clf.parse_csv("text,label\ncafé,spam\nb,ham\n".encode("latin-1"))


def test_labels_map_positive_class_and_skip_empty_rows():
    data = clf.parse_csv("text,label\nwin money,SPAM\nhello,ham\n,ham\n")
    assert data.labels == (1, 0) and data.classes == ("ham", "spam") and data.skipped == 1


def test_split_is_stratified():
    tr, va = clf.split(clf.load_bundled(), 0.25)
    assert sum(va.labels) == len(va) - sum(va.labels)
    assert not set(tr.texts) & set(va.texts)


@pytest.mark.parametrize("k", [0, 1])
def test_cached_frozen_part_equals_the_whole_model(tiny, k):
    """Running the last k blocks on the cached input of block L-k = running all blocks on the tokens."""
    ids, mask = clf.encode(tiny.tokenizer, ["Win a prize now", "see you at 6"], 16, "cpu")
    model = clf.SpamClassifier(tiny, k)
    full = clf.SpamClassifier(tiny, -1)
    full.head.load_state_dict(model.head.state_dict())
    with torch.no_grad():
        cached = model(clf.frozen_features(tiny, ids, mask, k), mask)
        whole = full(ids, mask)
    torch.testing.assert_close(cached, whole, atol=1e-5, rtol=1e-4)


def test_trainable_counts_and_shared_model_untouched(tiny):
    before = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    head = clf.SpamClassifier(tiny, 0)
    one = clf.SpamClassifier(tiny, 1)
    assert sum(p.numel() for p in head.parameters() if p.requires_grad) == 64 * 2 + 2
    layer = sum(p.numel() for p in tiny.model.model.layers[-1].parameters())
    norm = sum(p.numel() for p in tiny.model.model.norm.parameters())
    assert sum(p.numel() for p in one.parameters() if p.requires_grad) == 64 * 2 + 2 + layer + norm
    assert all(torch.equal(before[k], v) for k, v in tiny.model.state_dict().items())
    for k in (0, 1, -1):
        model = clf.SpamClassifier(tiny, k)
        assert clf.trainable_count(tiny, k) == sum(p.numel() for p in model.parameters() if p.requires_grad)


class FakeCtx:
    def __init__(self, config):
        self.config, self.metrics, self.notes, self.saved = config, [], [], {}

    def log(self, **m):
        self.metrics.append(m)

    def note(self, text):
        self.notes.append(text)

    def set_total(self, n):
        self.total = n

    def check_stop(self):
        pass

    def save_json(self, name, obj):
        self.saved[name] = obj


def test_head_training_learns_the_bundled_set(tiny):
    """Even on a random tiny model, a head over frozen features separates spam from ham on the training set."""
    cfg = clf.ClassifierConfig(blocks=(0, 1), epochs=12, lr=1e-2)
    ctx = FakeCtx(cfg)
    summary = clf.train(ctx, tiny)
    rows = {r["blocks"]: r for r in summary["results"]}
    assert rows[0]["train_acc"] > 0.7
    assert [m["blocks"] for m in ctx.metrics].count(1) == 12
    assert ctx.saved["classifier.json"] == summary["results"]
