"""Starting a pipeline: its config from one model name, its models loaded (and timed) as a step
of their own, and its store opened without the embedder when no embedding is needed.

:class:`~mmrag.pipeline.pipeline.Pipeline` calls these; they live here to keep that class short.

Example:
    >>> from mmrag.pipeline.startup import config_for_model
    >>> cfg = config_for_model("vidore/colqwen2-v1.0-hf", "my_index")
    >>> cfg.embedder.init_parameters["model"], cfg.store.path
    ('vidore/colqwen2-v1.0-hf', 'my_index')
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mmrag.config import PipelineConfig

if TYPE_CHECKING:
    from mmrag.config import StoreConfig
    from mmrag.pipeline.pipeline import Pipeline
    from mmrag.store.contract import VectorStore
    from mmrag.store.schema import CollectionSchema

__all__ = ["ROLES", "config_for_model", "load_models", "open_as_stored", "stored"]

logger = logging.getLogger(__name__)

#: The model-backed components of a pipeline, in the order they are used.
ROLES = ("embedder", "reranker", "generator")


def config_for_model(
    model: str,
    index: str = "mmrag_index",
    collection: str | None = None,
    device: str = "auto",
    overrides: dict[str, Any] | None = None,
) -> PipelineConfig:
    """The config of :meth:`Pipeline.from_pretrained <mmrag.pipeline.pipeline.Pipeline.
    from_pretrained>`: ``model`` as the embedder (its family read from the checkpoint when the
    embedder is built), the embedded store in ``index``, ``device`` for every model that names
    none, and ``overrides`` as whole config sections (``retrieval={"top_k": 3}``,
    ``generator=None``; a dict section is merged into the default one)."""
    from mmrag.errors import ConfigError

    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(PipelineConfig.model_fields))
    if unknown:
        raise ConfigError(
            f"unknown config section(s) {', '.join(unknown)}; allowed: "
            f"{', '.join(PipelineConfig.model_fields)}"
        )
    defaults = PipelineConfig()
    data: dict[str, Any] = {"embedder": {"model": model}, "store": {"path": str(index)}}
    if collection:
        data["store"]["collection"] = collection
    for section, value in overrides.items():
        if isinstance(value, dict):
            value = _merged(data.get(section) or _dump(getattr(defaults, section)) or {}, value)
        data[section] = value
    for role in ROLES:
        spec = data[role] if role in data else _dump(getattr(defaults, role))
        if device != "auto" and isinstance(spec, dict) and _takes_device(role, spec):
            spec.setdefault("init_parameters", {}).setdefault("device", device)
            data[role] = spec
    return PipelineConfig.from_dict(data)


def _dump(section: Any) -> Any:
    return section.model_dump(mode="json", exclude_none=True) if section is not None else None


def _takes_device(role: str, spec: dict[str, Any]) -> bool:
    """Whether the component ``spec`` names is built with a ``device`` (model-backed ones)."""
    import inspect

    from mmrag.registry import resolve

    if role == "embedder" or spec.get("type") is None:
        return True
    parameters = inspect.signature(resolve(role, spec["type"])).parameters.values()
    return any(p.name == "device" or p.kind is p.VAR_KEYWORD for p in parameters)


def _merged(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        old = merged.get(key)
        merged[key] = (
            _merged(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
        )
    return merged


def load_models(pipeline: Pipeline, roles: Iterable[str] = ()) -> dict[str, float]:
    """Load the models of ``roles`` (default: all) that are not in memory yet; returns the
    seconds each one took (empty when nothing had to load).

    A model whose files cannot be had raises :class:`~mmrag.errors.ModelNotAvailableError`
    at once, naming what was tried (:func:`mmrag.embedders.checkpoint.loading`).
    """
    from mmrag.embedders.checkpoint import loading

    seconds: dict[str, float] = {}
    for role in roles or ROLES:
        component = getattr(pipeline, role)
        if component is None or getattr(component, "is_loaded", True):
            continue  # not configured, already loaded, or nothing to load
        model = str(getattr(component, "model", "") or "")
        started = time.perf_counter()
        if role == "embedder":  # the embedder checks its own files (a Hub id pins a commit)
            component.load()
        else:
            revision = getattr(component, "revision", None)
            with loading(model, revision, what=f"the {role} model", check=bool(model)):
                component.load()
        seconds[role] = time.perf_counter() - started
        logger.info("loaded the %s model %s in %.1f s", role, model, seconds[role])
    return seconds


class _NeedsSchemaError(Exception):
    """Raised by the schema stand-in: the store wanted a schema (there is no collection)."""


def _needs_schema() -> CollectionSchema:
    raise _NeedsSchemaError


def open_as_stored(
    config: StoreConfig, schema: Callable[[], CollectionSchema]
) -> VectorStore | None:
    """The collection opened as it is stored, without consulting the embedder (for
    ``sources`` and ``delete``), or ``None`` when there is no collection yet.

    A Qdrant server is opened the usual way (with ``schema``, which it needs up front)."""
    from mmrag.store import open_store
    from mmrag.store.contract import StoreError

    if config.backend == "server":
        return open_store(config, schema)
    try:
        return open_store(config, None)
    except StoreError as error:
        if type(error) is not StoreError:  # locked, damaged, old layout: as they are
            raise
    try:  # the plain StoreError is "no collection" exactly when a schema is asked for
        return open_store(config, _needs_schema)
    except _NeedsSchemaError:
        return None


@contextmanager
def stored(
    store: VectorStore | None, config: StoreConfig, schema: Callable[[], CollectionSchema]
) -> Iterator[VectorStore | None]:
    """``store`` if it is open; else the collection opened as stored for the ``with`` block
    (no embedder consulted; closed after it), or ``None`` when there is no collection."""
    if store is not None:
        yield store
        return
    opened = open_as_stored(config, schema)
    try:
        yield opened
    finally:
        if opened is not None:
            opened.close()
