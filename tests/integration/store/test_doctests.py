"""The usage examples of the store backends (they open real stores in temporary folders)."""

from __future__ import annotations

import doctest
import importlib

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "module",
    ["mmrag.store", "mmrag.store.embedded", "mmrag.store.server", "mmrag.store._server_connection"],
)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
