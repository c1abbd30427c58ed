"""Tiny, randomly initialised, seeded models of every architecture mmrag supports.

They let tests run every embedder, reranker and generator offline in seconds: each is saved the
way its real checkpoint is (``save_pretrained`` or open_clip's hub layout) and loads back
through the same ``from_pretrained`` path, with a ``mmrag_tiny.json`` manifest beside it.

Importing this package is cheap: torch and transformers load only when a model is built.

Example:
    >>> from mmrag.testing import list_tiny_models
    >>> [spec.name for spec in list_tiny_models()]  # doctest: +NORMALIZE_WHITESPACE
    ['qwen2vl', 'colqwen2', 'colpali', 'colmodernvbert', 'idefics3', 'smolvlm',
     'llava_next', 'open_clip']

From the shell: ``python -m mmrag.testing build DIR`` (or ``list``). In pytest, enable the
fixtures with ``pytest_plugins = ["mmrag.testing.fixtures"]``.
"""

from mmrag.testing.bundle import TinyModel
from mmrag.testing.manifest import MANIFEST_NAME, TinyManifest, read_manifest
from mmrag.testing.zoo import (
    DEFAULT_SEED,
    TinyModelSpec,
    build,
    build_all,
    get_spec,
    list_tiny_models,
    make,
)

__all__ = [
    "DEFAULT_SEED",
    "MANIFEST_NAME",
    "TinyManifest",
    "TinyModel",
    "TinyModelSpec",
    "build",
    "build_all",
    "get_spec",
    "list_tiny_models",
    "make",
    "read_manifest",
]
