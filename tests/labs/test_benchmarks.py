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


# --- MMLU CSVs as found: every accepted layout reads the same two questions, and says which columns it used ---
ROWS_LETTERS = [("What is 2+2?", "3", "4", "5", "6", "B"), ("Pick one, please", "x", "y", "z", "w", "d")]
ROWS_INDICES = [("What is 2+2?", "3", "4", "5", "6", "1"), ("Pick one, please", "x", "y", "z", "w", "3")]


def _csv(header, rows):
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


@pytest.mark.parametrize("header, rows, used", [
    (None, ROWS_LETTERS, "No header row"),
    (None, ROWS_INDICES, "indices 0–3"),
    (["question", "A", "B", "C", "D", "answer"], ROWS_LETTERS, "'A', 'B', 'C', 'D'"),
    (["Question", "a", "b", "c", "d", "Answer"], ROWS_INDICES, "answer ← 'Answer'"),
    (["question", "choice0", "choice1", "choice2", "choice3", "answer"], ROWS_INDICES, "'choice0', 'choice1'"),
    (["question", "choice1", "choice2", "choice3", "choice4", "answer"], ROWS_LETTERS, "'choice1', 'choice2'"),
    (["question", "option_a", "option_b", "option_c", "option_d", "answer"], ROWS_LETTERS, "'option_a'"),
    (["prompt", "Option A", "Option B", "Option C", "Option D", "label"], ROWS_INDICES, "question ← 'prompt'"),
    (["answer", "question", "A", "B", "C", "D"], [(r[5],) + r[:5] for r in ROWS_LETTERS], "answer ← 'answer'"),
])
def test_every_accepted_mmlu_layout_reads_the_same_questions(header, rows, used):
    loaded = bm.read_mmlu_csv(_csv(header, rows), subject="math")
    assert [i.prompt for i in loaded.items] == ["What is 2+2?", "Pick one, please"]
    assert [i.answer for i in loaded.items] == [1, 3]
    assert loaded.items[0].choices == ("3", "4", "5", "6") and loaded.items[1].subject == "math"
    assert used in loaded.columns


def test_header_with_subject_id_columns_and_a_choices_list():
    text = _csv(["id", "question", "subject", "choices", "answer"],
                [("7", "Capital of France?", "geography", '["Rome", "Paris", "Oslo", "Bern"]', "1"),
                 ("8", "2 x 3?", "math", "['5', '6', '7', '8']", "B")])
    loaded = bm.read_mmlu_csv(text)
    assert [i.choices[i.answer] for i in loaded.items] == ["Paris", "6"]
    assert [i.subject for i in loaded.items] == ["geography", "math"]
    assert "a list" in loaded.columns and "ignored: 'id'" in loaded.columns
    with pytest.raises(bm.BenchmarkError, match="row 2: the choices column must hold a list of four"):
        bm.read_mmlu_csv(_csv(["question", "choices", "answer"], [("Q", '["a", "b"]', "0")]))


def test_answers_in_any_case_and_as_float_indices():
    items = bm.load_mmlu_csv("Q1,a,b,c,d,c\nQ2,a,b,c,d,2.0\n")
    assert [i.answer for i in items] == [2, 2]


@pytest.mark.parametrize("text, words", [
    ("q,w,e,r,t,y\nQ,a,b,c,d,A\n", "row 1 looks like a header.*not ones this loader knows.*Accepted"),
    ("question,choice_a,choice_b,choice_c,answer\nQ,a,b,c,A\n", "row 1 looks like a header"),
    ("Frage,A,B,C,D,Antwort\nQ,a,b,c,d,A\n", "row 1: the answer is 'Antwort'.*If row 1 is a header"),
    ("Q1,a,b,c,d,4\n", "answer is '4'.*count from 1, subtract 1"),
    ("Q1,a,b,c,d,1\nQ2,a,b,c,d,E\n", "row 2: the answer is 'E'.*letter A, B, C or D, or an index 0"),
    ("question,A,B,C,D,answer\n", "header row but no questions"),
    ("question,A,B,C,D,answer\nQ,a,b,c,d\n", r"row 2: 5 columns, expected 6 \(question,A,B,C,D,answer\)"),
])
def test_anything_else_gets_one_clear_message(text, words):
    with pytest.raises(bm.BenchmarkError, match=words):
        bm.read_mmlu_csv(text)


def test_upload_says_how_it_was_read_and_dev_pools_never_hold_scored_questions():
    loaded = bm.read_upload(b"question,choice0,choice1,choice2,choice3,answer\nQ?,a,b,c,d,0\n", "x_test.csv")
    assert loaded.items[0].subject == "x" and "'choice0'" in loaded.columns
    hs = bm.read_upload(b'{"ctx": "He", "endings": ["a", "b"], "label": 1}\n', "h.jsonl", id_prefix="dev/")
    assert hs.items[0].id.startswith("dev/") and "'endings'" in hs.columns
    cont = bm.load_dev_pool("continuation")
    assert len(cont) >= 8 and all(i.style == "continuation" and len(i.choices) == 4 for i in cont)
    assert sorted({i.answer for i in cont}) == [0, 1, 2, 3]
    test, dev = bm.load_bundled("test"), bm.load_dev_pool("mmlu")
    pool, left_out = bm.shot_pool(test, dev)
    assert pool == dev and left_out == 0
    pool, left_out = bm.shot_pool(test + dev[:3], dev)  # a dev file that repeats scored questions
    assert left_out == 3 and not {p.prompt for p in pool} & {i.prompt for i in test + dev[:3]}
