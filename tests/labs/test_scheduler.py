"""The scheduler decides who runs each step from plain numbers: no model, no tensors of a model."""
import collections
import threading

from labs.serving.request import Request
from labs.serving.sampling import GenerationConfig
from labs.serving.scheduler import BatchState, Scheduler


def _req(n_prompt: int, budget: int = 8, stop=frozenset({0})) -> Request:
    return Request(list(range(1, n_prompt + 1)), GenerationConfig(max_new_tokens=budget), stop, threading.Event())


def test_admits_in_arrival_order_up_to_max_streams():
    waiting = collections.deque(_req(5) for _ in range(5))
    first = list(waiting)
    joined = Scheduler(max_streams=3).admit(waiting, BatchState(running=(_req(4),), batchable=True))
    assert joined == first[:2] and list(waiting) == first[2:]


def test_prefill_budget_splits_newcomers_across_steps_but_never_starves_a_long_prompt():
    s = Scheduler(max_streams=8, prefill_tokens=10)
    waiting = collections.deque([_req(6), _req(6), _req(30)])
    assert len(s.admit(waiting, BatchState())) == 1  # 6 + 6 > 10: the second waits a step
    assert len(s.admit(waiting, BatchState())) == 1
    assert len(s.admit(waiting, BatchState())) == 1  # a prompt over the budget still runs, alone


def test_a_cache_that_cannot_be_batched_serves_one_stream_at_a_time():
    s = Scheduler(max_streams=8)
    running = BatchState(running=(_req(3),), cached_len=10, batchable=False)
    waiting = collections.deque([_req(3)])
    assert s.admit(waiting, running) == [] and len(waiting) == 1
    assert len(s.admit(waiting, BatchState(batchable=False))) == 1  # the batch emptied: it runs


def test_sliding_window_admits_only_rows_that_stay_inside_it():
    s = Scheduler(max_streams=8)
    state = BatchState(running=(_req(10, budget=20),), cached_len=50, batchable=True, window=64)
    assert s.fits(_req(5, budget=20), [], state) is False  # 50 cached + 20 new >= 63
    assert s.fits(_req(5, budget=10), [], BatchState(running=(_req(10, budget=10),), cached_len=30,
                                                      batchable=True, window=64)) is True


def test_finish_reasons_stop_length_cancelled():
    s = Scheduler(max_streams=2)
    r = _req(3, budget=2, stop=frozenset({7}))
    assert s.finish_reason(r, 7) == "stop"
    assert s.finish_reason(r, 5) is None
    r.generated.append(5)
    assert s.finish_reason(r, 5) == "length"  # the second of two tokens reaches the budget
    c = _req(3, budget=5)
    c.stop.set()
    assert s.finish_reason(c, 5) == "cancelled"


def test_evicts_rows_whose_reader_left():
    rows = [_req(3), _req(3), _req(3)]
    rows[1].cancel()
    assert Scheduler(max_streams=4).keep(rows) == [0, 2]


def test_prefill_groups_keep_padding_small_and_take_every_newcomer_once():
    lengths = [271] + [150 + (i * 7) % 40 for i in range(27)] + [38 + i % 9 for i in range(30)] + [271]
    groups = Scheduler.prefill_groups(lengths)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for g in groups:  # each forward pads its rows to its longest prompt: at most 1.25 positions per real token
        assert len(g) * max(lengths[i] for i in g) <= 1.25 * sum(lengths[i] for i in g)
    padded_at_once = len(lengths) * max(lengths)
    assert sum(len(g) * max(lengths[i] for i in g) for g in groups) < 0.5 * padded_at_once
    assert len(groups) <= 6  # similar lengths still share a forward
    assert Scheduler.prefill_groups([12, 12, 11, 12]) == [[0, 1, 3, 2]]  # longest first, one forward
    assert Scheduler.prefill_groups([5]) == [[0]]
