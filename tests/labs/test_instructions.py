"""Instruction data loaders: Alpaca JSON / JSONL, ShareGPT, role/content messages, LIMA; clear errors."""
import json

import pytest

from labs.data import instructions as ins


def test_alpaca_json_and_jsonl_give_the_same_examples():
    rows = [{"instruction": "Add", "input": "2 and 3", "output": "5"}, {"instruction": "Greet", "output": "Hi"}]
    a = ins.parse(json.dumps(rows).encode())
    b = ins.parse("\n".join(json.dumps(r) for r in rows).encode())
    assert a.format == b.format == "alpaca"
    assert a.examples == b.examples
    assert a.examples[0].input == "2 and 3" and a.examples[1].input == ""
    assert a.examples[0].messages()[-1]["content"] == "Add\n\n2 and 3"


def test_sharegpt_from_value_uses_last_assistant_turn_and_keeps_history():
    row = {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"},
                             {"from": "gpt", "value": "Hello"}, {"from": "human", "value": "2+2?"},
                             {"from": "gpt", "value": "4"}]}
    ex = ins.parse(json.dumps([row])).examples[0]
    assert (ex.instruction, ex.output, ex.system) == ("2+2?", "4", "Be brief.")
    assert ex.history == (("user", "Hi"), ("assistant", "Hello"))
    assert [m["role"] for m in ex.messages()] == ["system", "user", "assistant", "user"]


def test_role_content_messages_and_lima_string_lists():
    msgs = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
    lima = {"conversations": ["What is LIMA?", "Less Is More for Alignment."]}
    assert ins.parse(json.dumps(msgs)).format == "messages"
    result = ins.parse(json.dumps([lima]))
    assert result.format == "lima" and result.examples[0].output == "Less Is More for Alignment."


def test_bad_rows_are_skipped_and_counted():
    rows = [{"instruction": "ok", "output": "fine"}, {"instruction": "no output", "output": "  "},
            {"instruction": "", "output": "x"}, {"output": "missing instruction"}, [1, 2]]
    result = ins.parse(json.dumps(rows))
    assert len(result.examples) == 1
    assert sum(result.skipped.values()) == 4
    assert "empty output" in result.skipped_text()


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"\xff\xfe\x00bad", "UTF-8"),
    (b'{"question": 1, "answer": 2}', "Unrecognised"),
    (b'{"instruction": "a", "output": "b"}\nnot json', "Line 2"),
    (json.dumps([{"instruction": "a", "output": ""}]).encode(), "No usable examples"),
])
def test_clear_errors(data, words):
    with pytest.raises(ins.InstructionFormatError, match=words):
        ins.parse(data)


def test_too_big_is_refused():
    with pytest.raises(ins.InstructionFormatError, match="limit"):
        ins.parse(b" " * (ins.MAX_BYTES + 1))


def test_bundled_set_is_large_enough_with_a_held_out_split():
    train, held = ins.bundled()
    assert len(train) + len(held) >= 200 and len(held) >= 20
    assert not {e.instruction + e.input for e in train} & {e.instruction + e.input for e in held}
    assert all(e.output.startswith("TL;DR: ") for e in train + held)
    assert {e.family for e in held} == {e.family for e in train}  # every task family is held out too


def test_split_is_deterministic_and_disjoint():
    exs = [ins.Example(f"q{i}", f"a{i}") for i in range(20)]
    a, b = ins.split(exs, 0.2, seed=1)
    assert (a, b) == ins.split(exs, 0.2, seed=1)
    assert len(b) == 4 and not set(a) & set(b)
