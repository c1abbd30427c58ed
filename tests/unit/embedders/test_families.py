"""A family is defined once, by its spec: the registry, the catalogue, family detection and the
classes all derive from :data:`mmrag.embedders.families.SPECS`."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

import pytest

from mmrag.embedders.catalogue import FAMILIES, SUPPORTED_MODELS, describe
from mmrag.embedders.families import MODEL_TYPES, SPECS, family_of_model_type, get_spec
from mmrag.embedders.families.spec import FamilySpec, ModelDescription
from mmrag.errors import ConfigError
from mmrag.registry import COMPONENTS, known_types, resolve

pytestmark = pytest.mark.unit


def test_registry_names_and_families_are_the_specs():
    names = tuple(spec.name for spec in SPECS)
    assert known_types("embedder") == names
    assert names == FAMILIES
    assert dict(COMPONENTS["embedder"]) == {spec.name: spec.target for spec in SPECS}


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_each_class_takes_its_identity_from_its_spec(spec):
    cls = resolve("embedder", spec.name)
    assert cls is spec.load_class()
    assert cls.spec is spec
    assert (cls.family, cls.kind) == (spec.name, spec.kind)
    assert spec.target == f"{cls.__module__}:{cls.__qualname__}"


def test_catalogue_entries_come_from_the_specs_and_carry_their_family():
    assert tuple(entry for spec in SPECS for entry in spec.catalogue) == SUPPORTED_MODELS
    for spec in SPECS:
        for entry in spec.catalogue:
            assert describe(entry.name) is entry
            assert (entry.family, entry.kind) == (spec.name, spec.kind)


def test_model_type_map_is_derived_from_the_specs():
    assert dict(MODEL_TYPES) == {t: spec.name for spec in SPECS for t in spec.model_types}
    for spec in SPECS:
        for model_type in spec.model_types:
            assert family_of_model_type(model_type) == spec.name
    assert family_of_model_type("bert") is None
    assert family_of_model_type(None) is None


def test_unknown_family_lists_the_known_ones():
    with pytest.raises(
        ConfigError, match="unknown embedder family 'colbert'; allowed: clip, vlm2vec"
    ):
        get_spec("colbert")


def test_a_catalogue_entry_never_names_its_own_family_or_kind():
    entry = ModelDescription(
        name="me/toy", family="toy", dim=8, params="1M", license="MIT", source="-"
    )
    with pytest.raises(ValueError, match="leave both out"):
        FamilySpec(name="toy", kind="multi", target="pkg.toy:Toy", catalogue=(entry,))
    with pytest.raises(ValueError, match="'module:Class'"):
        FamilySpec(name="toy", kind="multi", target="pkg.toy.Toy")


def test_the_catalogue_and_the_specs_import_no_torch():
    code = (
        "import sys; import mmrag.embedders.catalogue, mmrag.embedders.families, mmrag.registry; "
        "print(sorted(m for m in ('torch', 'transformers', 'open_clip', 'PIL', 'numpy') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "module",
    [
        "mmrag.embedders.families",
        "mmrag.embedders.families.spec",
        "mmrag.embedders.families.clip",
        "mmrag.embedders.families.vlm2vec",
        "mmrag.embedders.families.e5v",
        "mmrag.embedders.families.colpali",
        "mmrag.embedders.families.colqwen2",
        "mmrag.embedders.families.colmodernvbert",
        "mmrag.embedders.catalogue",
        "mmrag.embedders.colvision",
    ],
)
def test_module_doctests(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
