"""The component catalogue: short names → import paths, resolved lazily.

A pipeline names its components by a short name (``colqwen2``) or by a dotted import path
(``my_pkg.embedders.MyEmbedder``). Nothing is imported until :func:`resolve` is called, so
``import mmrag`` stays fast. Adding a reranker or generator is one new file plus one line here.
The embedder names are not written here: they are derived from the family specs in
:mod:`mmrag.embedders.families` (plain data, no torch), where a family is defined once.

Example:
    >>> from mmrag.registry import known_types
    >>> "maxsim" in known_types("reranker")
    True
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from mmrag.embedders.families import SPECS
from mmrag.errors import ConfigError, FeatureNotAvailableError

__all__ = ["COMPONENTS", "KINDS", "known_types", "resolve", "validate_type"]

#: kind → short name → "module:attribute". Entries whose module is not in this build resolve to
#: a clear FeatureNotAvailableError, never to a placeholder.
COMPONENTS: Mapping[str, Mapping[str, str]] = {
    "embedder": {spec.name: spec.target for spec in SPECS},
    "reranker": {
        "maxsim": "mmrag.rerankers.maxsim:MaxSimReranker",
        "monoqwen": "mmrag.rerankers.monoqwen:MonoQwenReranker",
        "score_head": "mmrag.rerankers.score_head:ScoreHeadReranker",
        "text": "mmrag.rerankers.text:TextReranker",
    },
    "generator": {
        "transformers": "mmrag.generators.transformers_vlm:TransformersGenerator",
        "langchain": "mmrag.generators.langchain:LangChainGenerator",
        "extractive": "mmrag.generators.extractive:ExtractiveGenerator",
    },
}

KINDS: tuple[str, ...] = tuple(COMPONENTS)


def known_types(kind: str) -> tuple[str, ...]:
    """The short names registered for ``kind`` (``embedder``, ``reranker``, ``generator``)."""
    try:
        return tuple(COMPONENTS[kind])
    except KeyError:
        raise ConfigError(f"unknown component kind {kind!r}; allowed: {', '.join(KINDS)}") from None


def validate_type(kind: str, type_name: str) -> str:
    """Check that ``type_name`` is a registered short name or a dotted import path."""
    names = known_types(kind)
    if type_name in names or ("." in type_name and not type_name.startswith(".")):
        return type_name
    raise ConfigError(
        f"unknown {kind} type {type_name!r}; allowed: {', '.join(names)} "
        "(or a dotted import path such as 'my_package.module.MyClass')"
    )


def resolve(kind: str, type_name: str) -> type:
    """Import and return the class named by ``type_name``."""
    validate_type(kind, type_name)
    target = COMPONENTS[kind].get(type_name)
    if target is None:
        module_name, _, attr = type_name.rpartition(".")
    else:
        module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name) and module_name.startswith("mmrag."):
            raise FeatureNotAvailableError(
                f"{kind} {type_name!r} ({module_name}) is not available in this build of mmrag"
            ) from exc
        raise
    try:
        return getattr(module, attr)
    except AttributeError:
        raise FeatureNotAvailableError(
            f"{kind} {type_name!r}: {module_name} has no attribute {attr!r}"
        ) from None
