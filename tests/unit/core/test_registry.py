"""The component catalogue: names, dotted paths, clear errors."""

from __future__ import annotations

import pytest

from mmrag.errors import ConfigError, FeatureNotAvailableError
from mmrag.registry import COMPONENTS, known_types, resolve, validate_type

pytestmark = pytest.mark.unit


def test_known_types_list_the_catalogue():
    assert set(known_types("embedder")) == set(COMPONENTS["embedder"])
    with pytest.raises(ConfigError, match="allowed: embedder, reranker, generator"):
        known_types("vectorizer")


def test_unknown_name_lists_supported_ones():
    with pytest.raises(ConfigError, match="allowed: clip, vlm2vec, e5v"):
        validate_type("embedder", "colbert-x")


def test_dotted_path_resolves_to_the_class():
    assert resolve("embedder", "collections.OrderedDict").__name__ == "OrderedDict"


def test_missing_module_of_a_catalogue_entry_is_reported(monkeypatch):
    monkeypatch.setitem(COMPONENTS["embedder"], "ghost", "mmrag.embedders.ghost_family:Ghost")
    with pytest.raises(FeatureNotAvailableError, match=r"'ghost'.*not available"):
        resolve("embedder", "ghost")
