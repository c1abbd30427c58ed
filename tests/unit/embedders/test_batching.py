"""Adaptive batching: order kept, lazy consumption, halving on out-of-memory."""

from __future__ import annotations

import pytest
import torch

from mmrag.embedders.batching import AdaptiveBatcher, is_out_of_memory, iter_batches

pytestmark = pytest.mark.unit


class Device:
    """The other side of the boundary: a device that runs out of memory above a batch size."""

    def __init__(self, capacity: int, error: type[Exception] = torch.OutOfMemoryError) -> None:
        self.capacity = capacity
        self.error = error
        self.calls: list[int] = []

    def __call__(self, batch):
        self.calls.append(len(batch))
        if len(batch) > self.capacity:
            raise self.error("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [x * 10 for x in batch]


def test_outputs_keep_input_order_across_batches():
    assert AdaptiveBatcher(3).run(lambda b: [x + 1 for x in b], range(8)) == list(range(1, 9))


def test_batch_size_halves_on_oom_and_stays_reduced():
    device = Device(capacity=2)
    batcher = AdaptiveBatcher(8)
    assert batcher.run(device, range(7)) == [x * 10 for x in range(7)]
    assert device.calls[:3] == [7, 4, 2]  # 7 inputs fill a first batch of 7
    assert batcher.batch_size == 2
    device.calls.clear()
    batcher.run(device, range(4))
    assert device.calls == [2, 2]  # no second round of failures


def test_runtime_error_out_of_memory_is_recognised():
    device = Device(capacity=1, error=RuntimeError)
    assert AdaptiveBatcher(4).run(device, range(3)) == [0, 10, 20]
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_a_single_item_that_does_not_fit_reraises():
    with pytest.raises(torch.OutOfMemoryError):
        AdaptiveBatcher(4).run(Device(capacity=0), [1, 2])


def test_other_errors_propagate_unchanged():
    def broken(batch):
        raise ValueError("bad input 3")

    with pytest.raises(ValueError, match="bad input 3"):
        AdaptiveBatcher(2).run(broken, [1, 2, 3])


def test_inputs_are_consumed_lazily():
    consumed = []

    def source():
        for i in range(100):
            consumed.append(i)
            yield i

    outputs = AdaptiveBatcher(4).iter_run(lambda b: b, source())
    assert [next(outputs) for _ in range(5)] == [0, 1, 2, 3, 4]
    assert len(consumed) == 8  # two batches, not the whole stream


def test_wrong_output_count_is_an_error():
    with pytest.raises(RuntimeError, match="returned 1 outputs for 2 inputs"):
        AdaptiveBatcher(2).run(lambda b: b[:1], [1, 2])


def test_iter_batches():
    assert list(iter_batches(range(5), 2)) == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match=">= 1"):
        list(iter_batches([], 0))


def test_prefetch_keeps_order_and_raises_errors_at_their_turn():
    from mmrag.embedders.base import prefetch

    def load(x):
        if x == 3:
            raise ValueError("page 3 is corrupt")
        return x * x

    stream = prefetch(range(6), load, ahead=2)
    assert [next(stream) for _ in range(3)] == [0, 1, 4]
    with pytest.raises(ValueError, match="page 3 is corrupt"):
        next(stream)


def test_prefetch_loads_in_a_background_thread_within_the_window():
    import threading
    import time

    from mmrag.embedders.base import prefetch

    started: list[int] = []
    threads: set[str] = set()

    def load(x):
        started.append(x)
        threads.add(threading.current_thread().name)
        return x

    stream = prefetch(range(100), load, ahead=3)
    assert next(stream) == 0
    time.sleep(0.05)  # give the loader time to run ahead as far as it may
    assert len(started) <= 1 + 3 + 1  # consumed + window + the one that triggered the yield
    assert threads == {next(iter(threads))} and "mmrag-prefetch" in next(iter(threads))
    assert list(stream) == list(range(1, 100))


def test_prefetch_advances_the_source_and_loads_in_the_same_thread():
    import threading

    from mmrag.embedders.base import prefetch

    threads: set[str] = set()

    def source():
        for i in range(20):
            threads.add(threading.current_thread().name)
            yield i

    def load(x):
        threads.add(threading.current_thread().name)
        return x

    assert list(prefetch(source(), load, ahead=3)) == list(range(20))
    assert threads == {"mmrag-prefetch"}  # the source never runs beside a load


def test_prefetch_stops_its_thread_when_the_consumer_stops_early():
    from mmrag.embedders.base import prefetch

    stream = prefetch(iter(range(10_000)), lambda x: x, ahead=2)
    assert next(stream) == 0
    stream.close()  # joins the producer thread; must not hang
    assert not [t for t in __import__("threading").enumerate() if t.name == "mmrag-prefetch"]
