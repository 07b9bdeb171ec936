"""Splitter invariants: coverage, bounded overlap, bounded size (unless unsplittable), in chars and tokens."""
import random

import pytest

from labs.rag import load, split
from labs.rag.load import Document


def check_invariants(doc: Document, chunks, config: split.SplitConfig, length=split.char_length):
    assert chunks, "a non-empty text gives at least one chunk"
    covered = [False] * len(doc.text)
    for c in chunks:
        assert c.text == doc.text[c.start:c.end]
        for i in range(c.start, c.end):
            covered[i] = True
        if length(c.text) > config.chunk_size:  # only a piece that cannot be split further may be too long
            assert "" not in config.separators, "with '' as the last separator every piece fits"
            for sep in config.separators:  # one piece: no separator inside (one may trail, it stays attached)
                inner = c.text[:-len(sep)] if c.text.endswith(sep) else c.text
                assert sep not in inner
    assert all(covered), "every character is in some chunk"
    for a, b in zip(chunks, chunks[1:]):
        assert a.start < b.start and a.end < b.end, "chunks advance"
        if a.end > b.start:
            assert length(doc.text[b.start:a.end]) <= config.chunk_overlap


@pytest.mark.parametrize("method", ["recursive", "sentence"])
@pytest.mark.parametrize("size,overlap", [(500, 50), (120, 30), (60, 0)])
def test_invariants_on_the_default_corpus(method, size, overlap):
    config = split.SplitConfig(method=method, chunk_size=size, chunk_overlap=overlap)
    for doc in load.default_corpus()[:6]:
        check_invariants(doc, split.split_documents([doc], config), config)


def test_invariants_on_random_text():
    rng = random.Random(0)
    words = ["a", "bb", "ccc", "longerword", "x" * 70, ".", "\n", "\n\n", "Sentence.", "end!"]
    for trial in range(40):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 200)))
        size = rng.randint(20, 120)
        config = split.SplitConfig(chunk_size=size, chunk_overlap=rng.randint(0, size - 1),
                                   method=rng.choice(["recursive", "sentence"]))
        doc = Document("r", text, "text")
        chunks = split.split_documents([doc], config)
        check_invariants(doc, chunks, config)
        assert max(c.length for c in chunks) <= size  # "" (between characters) is the last separator


def test_unsplittable_piece_stays_whole_without_char_separator():
    config = split.SplitConfig(chunk_size=20, chunk_overlap=0, separators=(" ",))
    doc = Document("u", "short " + "y" * 50 + " tail", "text")
    chunks = split.split_documents([doc], config)
    assert any(c.text.strip() == "y" * 50 for c in chunks)
    check_invariants(doc, chunks, config)


def test_token_unit_uses_the_embedder_tokenizer():
    from transformers import AutoTokenizer

    from labs import models

    tok = AutoTokenizer.from_pretrained(str(models.package_dir("all-minilm-l6-v2") / "model"))
    length = split.token_length(tok)
    config = split.SplitConfig(chunk_size=64, chunk_overlap=16, unit="tokens")
    doc = load.default_corpus()[0]
    chunks = split.split_documents([doc], config, length)
    check_invariants(doc, chunks, config, length)
    assert max(c.length for c in chunks) <= 64 and len(chunks) > 5


def test_sentence_spans_tile_the_text():
    text = "One. Two!  Three? (Four.) Five\n\nSix"
    spans = split.sentence_spans(text)
    assert "".join(text[a:b] for a, b in spans) == text
    assert [text[a:b].strip() for a, b in spans] == ["One.", "Two!", "Three?", "(Four.)", "Five", "Six"]


def test_coverage_segments_mark_overlaps():
    doc = Document("d", "alpha beta gamma delta epsilon zeta eta theta", "text")
    config = split.SplitConfig(chunk_size=20, chunk_overlap=10)
    chunks = split.split_documents([doc], config)
    segments = split.coverage_segments(chunks, len(doc.text))
    assert segments[0][0] == 0 and segments[-1][1] == len(doc.text)
    assert all(cov for _, _, cov in segments)
    overlaps = sum(b - a for a, b, cov in segments if len(cov) > 1)
    assert overlaps == sum(split.overlap_len(x, y) for x, y in zip(chunks, chunks[1:]))


def test_bad_settings_say_how_to_fix():
    with pytest.raises(ValueError, match="smaller than the chunk size"):
        split.SplitConfig(chunk_size=100, chunk_overlap=100)
    with pytest.raises(ValueError, match="between"):
        split.SplitConfig(chunk_size=5)
