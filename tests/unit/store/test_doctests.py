"""The usage examples in the docstrings of the store-side modules run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "module",
    [
        "mmrag.store",
        "mmrag.store.assets",
        "mmrag.store.text",
        "mmrag.pipeline.retrieval",
        "mmrag.pipeline.evaluate",
    ],
)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
