"""Preference data loaders: every accepted layout, every refusal names what was expected, the bundled set."""
import json

import pytest

from labs.data import preferences as P


def _jsonl(*rows) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows)


def test_plain_strings():
    s = P.parse_text(_jsonl({"prompt": "Hi?", "chosen": "Hello!", "rejected": "Go away."}))
    pair = s.pairs[0]
    assert pair.prompt == ({"role": "user", "content": "Hi?"},) and pair.chosen == "Hello!" and not s.problems


def test_chat_message_lists_with_explicit_and_implicit_prompt():
    explicit = {"prompt": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi?"}],
                "chosen": [{"role": "assistant", "content": "Hello!"}],
                "rejected": [{"role": "assistant", "content": "What."}]}
    implicit = {"chosen": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello!"}],
                "rejected": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "What."}]}
    s = P.parse_text(_jsonl(explicit, implicit))
    assert len(s) == 2
    assert s.pairs[0].prompt[0]["role"] == "system" and s.pairs[0].prompt_text == "Hi?"
    assert s.pairs[1].prompt == ({"role": "user", "content": "Hi?"},) and s.pairs[1].rejected == "What."


def test_conversation_layout_with_from_value():
    row = {"conversations": [{"from": "system", "value": "Short answers."}, {"from": "human", "value": "2+2?"}],
           "chosen": {"from": "gpt", "value": "4"}, "rejected": {"from": "gpt", "value": "Five, probably."}}
    pair = P.parse_text(_jsonl(row)).pairs[0]
    assert pair.prompt[-1] == {"role": "user", "content": "2+2?"} and pair.chosen == "4"


def test_json_list_and_arena_style_rows_with_extra_fields():
    rows = [{"prompt": "Q?", "chosen": "A", "rejected": "B", "chosen_model": "x", "battle_id": "1"}]
    assert len(P.parse_text(json.dumps(rows))) == 1
    assert len(P.parse_records(rows, "arena votes")) == 1


def test_bad_rows_are_skipped_and_reported_by_line():
    text = _jsonl({"prompt": "Q?", "chosen": "A", "rejected": "B"},
                  "{not json",
                  {"prompt": "Q?", "chosen": "same", "rejected": "same"},
                  {"prompt": "Q?", "chosen": "", "rejected": "B"},
                  {"prompt": "Q?", "answer": "A"})
    s = P.parse_text(text)
    assert len(s) == 1
    joined = "\n".join(s.problems)
    assert "line 2: not valid JSON" in joined
    assert "line 3" in joined and "identical" in joined
    assert "line 4" in joined and "empty" in joined
    assert "line 5" in joined and "'chosen'" in joined and "'rejected'" in joined


@pytest.mark.parametrize("text", ["", "   \n", _jsonl({"question": "Q", "answer": "A"}), "[1, 2]", "[oops",
                                  _jsonl({"instruction": "Q", "output": "A"}, "nope")])
def test_unusable_files_name_the_expected_fields(text):
    with pytest.raises(P.PreferenceDataError) as err:
        P.parse_text(text)
    msg = str(err.value)
    assert "prompt" in msg and "chosen" in msg and "rejected" in msg or "does not parse" in msg


def test_bytes_that_are_not_utf8_or_too_big():
    with pytest.raises(P.PreferenceDataError, match="UTF-8"):
        P.parse_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(P.PreferenceDataError, match="larger"):
        P.parse_bytes(b" " * (P.MAX_BYTES + 1))


def test_prompt_must_end_with_a_user_turn():
    row = {"prompt": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
           "chosen": "x", "rejected": "y"}
    with pytest.raises(P.PreferenceDataError, match="user turn"):
        P.parse_text(_jsonl(row))


def test_bundled_set_is_large_with_a_disjoint_heldout_split():
    train, held = P.bundled()
    assert len(train) + len(held) >= 150 and len(held) >= 20
    assert not train.problems and not held.problems
    assert not {p.prompt_text for p in train.pairs} & {p.prompt_text for p in held.pairs}
    assert any("laptop" in p.prompt_text for p in held.pairs)  # the lecture's example is held out
    lengths = [(len(p.chosen.split()), len(p.rejected.split())) for p in train.pairs]
    mean_c = sum(c for c, _ in lengths) / len(lengths)
    mean_r = sum(r for _, r in lengths) / len(lengths)
    assert abs(mean_c - mean_r) / mean_r < 0.25  # the preference is style, not length


def test_split_fingerprint_and_round_trip():
    pairs = P.parse_text(_jsonl(*[{"prompt": f"Q{i}?", "chosen": f"A{i}", "rejected": f"B{i}"} for i in range(20)])).pairs
    train, held = P.split(pairs, 0.2, seed=3)
    assert len(held) == 4 and len(train) == 16 and not set(map(id, train)) & set(map(id, held))
    assert P.split(pairs, 0.2, seed=3) == (train, held)
    assert P.fingerprint(pairs) == P.fingerprint(list(pairs)) != P.fingerprint(pairs[:-1])
    assert P.parse_text(P.to_jsonl(pairs)).pairs == pairs
    assert P.split(pairs[:1]) == (pairs[:1], [])
