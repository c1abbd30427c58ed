"""A tiny model in memory (model + processor) and the seeded context that builds it.

Example:
    >>> import torch
    >>> with seeded(3):
    ...     a = torch.rand(2)
    >>> with seeded(3):
    ...     b = torch.rand(2)
    >>> bool(torch.equal(a, b))
    True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator for the block, then restore the caller's RNG state.

    Weights of the tiny models are drawn on the CPU, so the same seed gives bit-identical
    weights, and building a model leaves the global random state as it found it.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@dataclass
class TinyModel:
    """A freshly built tiny model and its processor, not yet on disk.

    ``save`` writes both the way real checkpoints are laid out (``save_pretrained``), so they
    load back through ``from_pretrained`` / ``AutoProcessor.from_pretrained``.

    Example:
        >>> from mmrag.testing.zoo import make
        >>> tiny = make("qwen2vl")
        >>> type(tiny.model).__name__, type(tiny.processor).__name__
        ('Qwen2VLForConditionalGeneration', 'Qwen2VLProcessor')
    """

    model: Any
    processor: Any

    def save(self, model_dir: Path) -> Path:
        """Save the model and processor into ``model_dir`` and return it."""
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(model_dir)
        self.processor.save_pretrained(model_dir)
        return model_dir
