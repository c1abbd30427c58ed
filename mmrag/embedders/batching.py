"""Batching with automatic halving of the batch size on out-of-memory.

Example:
    >>> from mmrag.embedders.batching import AdaptiveBatcher
    >>> batcher = AdaptiveBatcher(batch_size=4)
    >>> batcher.run(lambda batch: [x * 2 for x in batch], range(10))
    [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

__all__ = ["AdaptiveBatcher", "is_out_of_memory", "iter_batches"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def iter_batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Yield lists of up to ``size`` items, consuming ``items`` lazily."""
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def is_out_of_memory(error: BaseException) -> bool:
    """True for CUDA / MPS / CPU allocator out-of-memory errors raised by torch."""
    try:
        import torch

        if isinstance(error, torch.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if isinstance(error, MemoryError):
        return True
    message = str(error).lower()
    return isinstance(error, RuntimeError) and (
        "out of memory" in message or "can't allocate memory" in message
    )


def _free_accelerator_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


class AdaptiveBatcher:
    """Runs a batch function over inputs; on out-of-memory, halves the batch and retries.

    The reduced size is kept for later calls (the model will not fit a larger batch next time
    either). A single input that does not fit re-raises the error.

    Example:
        >>> from mmrag.embedders.batching import AdaptiveBatcher
        >>> AdaptiveBatcher(batch_size=8).batch_size
        8
    """

    def __init__(self, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size

    def run(self, fn: Callable[[Sequence[Any]], Sequence[R]], inputs: Iterable[Any]) -> list[R]:
        """``fn`` maps a batch to one output per input; returns every output, in order."""
        return list(self.iter_run(fn, inputs))

    def iter_run(
        self, fn: Callable[[Sequence[Any]], Sequence[R]], inputs: Iterable[Any]
    ) -> Iterator[R]:
        """Like :meth:`run`, yielding outputs as batches finish (inputs consumed lazily)."""
        pending: list[Any] = []
        iterator = iter(inputs)
        while True:
            pending.extend(itertools.islice(iterator, max(0, self.batch_size - len(pending))))
            if not pending:
                return
            batch = pending[: self.batch_size]
            try:
                outputs = fn(batch)
            except Exception as error:
                if not is_out_of_memory(error) or self.batch_size == 1:
                    raise
                self.batch_size = max(1, self.batch_size // 2)
                logger.warning(
                    "out of memory on a batch of %d; retrying with batch size %d",
                    len(batch),
                    self.batch_size,
                )
                _free_accelerator_memory()
                continue
            if len(outputs) != len(batch):
                raise RuntimeError(
                    f"batch function returned {len(outputs)} outputs for {len(batch)} inputs"
                )
            del pending[: len(batch)]
            yield from outputs
