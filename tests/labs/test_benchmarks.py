"""Benchmark loaders: the bundled mini benchmark's shape, and a clear error for every kind of bad file."""
import json

import pytest

from labs.data import benchmarks as bm


def test_bundled_benchmark_has_enough_items_subjects_and_a_dev_split():
    test, dev = bm.load_bundled("test"), bm.load_bundled("dev")
    subjects = {i.subject for i in test}
    assert len(test) >= 100 and len(subjects) >= 5
    assert {i.subject for i in dev} == subjects  # every subject can be prompted k-shot
    assert all(len(i.choices) == 4 and 0 <= i.answer < 4 for i in test)
    assert not {i.prompt for i in test} & {i.prompt for i in dev}  # dev examples never leak into the test split
    letters = [sum(i.answer == k for i in test) for k in range(4)]
    assert max(letters) - min(letters) <= 5  # the right letter is balanced: a letter-biased model gains nothing
    assert len({i.id for i in test + dev}) == len(test) + len(dev)


def test_mmlu_csv_with_and_without_header_and_quoted_commas():
    plain = 'What is 2+2?,3,4,5,6,B\n"Pick one, please",x,y,z,w,d\n'
    items = bm.load_mmlu_csv(plain, subject="math")
    assert [i.answer for i in items] == [1, 3] and items[1].prompt == "Pick one, please"
    headed = bm.load_mmlu_csv("question,A,B,C,D,answer\n" + plain)
    assert [i.prompt for i in headed] == [i.prompt for i in items]
    with_subject = bm.load_mmlu_csv("question,A,B,C,D,answer,subject\nQ?,a,b,c,d,A,physics\n")
    assert with_subject[0].subject == "physics"


@pytest.mark.parametrize("text, words", [
    ("What?,a,b,c,A\n", "row 1: 5 columns, expected 6"),
    ("Q1,a,b,c,d,A\nQ2,a,b,c,d,E\n", "row 2: the answer is 'E'"),
    ("Q1,a,,c,d,A\n", "choice B is empty"),
    (",a,b,c,d,A\n", "question is empty"),
    ("\n\n", "empty"),
])
def test_mmlu_csv_errors_name_the_row_and_the_fix(text, words):
    with pytest.raises(bm.BenchmarkError, match=words.replace("?", r"\?").replace("(", r"\(")):
        bm.load_mmlu_csv(text)


def test_non_utf8_file_is_refused_with_how_to_fix():
    with pytest.raises(bm.BenchmarkError, match="not UTF-8.*CSV UTF-8"):
        bm.load_mmlu_csv("Caf\u00e9?,a,b,c,d,A\n".encode("latin-1"))
    assert bm.load_mmlu_csv("\ufeffQ,a,b,c,d,A\n".encode("utf-8"))[0].prompt == "Q"  # a BOM is fine


def test_hellaswag_jsonl_and_its_errors():
    lines = [{"ctx_a": "A man is on a roof.", "ctx_b": "he", "endings": ["jumps.", "sings [title] loudly."],
              "label": "1", "activity_label": "Roofing"},
             {"ctx": "She opens the door and", "endings": ["walks in.", "eats it.", "flies."], "label": 0}]
    items = bm.load_hellaswag_jsonl("\n".join(json.dumps(x) for x in lines))
    assert items[0].prompt == "Roofing: A man is on a roof. He" and items[0].answer == 1
    assert items[0].choices[1] == "sings. loudly." and items[0].style == "continuation"
    assert items[1].subject == "hellaswag" and len(items[1].choices) == 3
    bad = [('{"ctx": "x", "endings": ["a", "b"], "label": 2}', "label 2 is outside"),
           ('{"ctx": "x", "endings": ["a"], "label": 0}', "at least two"),
           ('{"ctx": "", "endings": ["a", "b"], "label": 0}', "context"),
           ('{"ctx": "x", "endings": ["a", "b"], "label": "first"}', "index of the right ending"),
           ("not json", "line 1: not valid JSON")]
    for text, words in bad:
        with pytest.raises(bm.BenchmarkError, match=words):
            bm.load_hellaswag_jsonl(text)


def test_upload_dispatch_by_suffix_and_size_limits(monkeypatch):
    assert bm.load_upload(b"Q,a,b,c,d,C\n", "astronomy_test.csv")[0].subject == "astronomy"
    with pytest.raises(bm.BenchmarkError, match="upload an MMLU-style .csv"):
        bm.load_upload(b"x", "notes.txt")
    monkeypatch.setattr(bm, "MAX_ITEMS", 5)
    with pytest.raises(bm.BenchmarkError, match="limit is 5"):
        bm.load_mmlu_csv("Q,a,b,c,d,A\n" * 6)


def test_generative_pairs_loader():
    rows = bm.load_bundled_generative()
    assert len(rows) >= 20 and all(r["prompt"] and r["answer"] for r in rows)
    with pytest.raises(bm.BenchmarkError, match="needs a non-empty"):
        bm.load_generative('{"prompt": "hi"}')
    with pytest.raises(bm.BenchmarkError, match="regex pattern is invalid"):
        bm.load_generative('{"prompt": "hi", "answer": "x", "pattern": "("}')
