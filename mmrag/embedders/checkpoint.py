"""A checkpoint before it loads: its embedder family, and whether its files can be had at all.

Both questions are answered without loading a model and without retry loops: a local folder and
the Hugging Face cache are read first; the Hub is asked at most once, with a short timeout, and
never when ``HF_HUB_OFFLINE`` is set. A model whose files cannot be had raises
:class:`~mmrag.errors.ModelNotAvailableError` at once, naming what was tried and how to point at
a local copy, instead of ``from_pretrained`` retrying for half a minute and failing with a
connection error. :func:`loading` wraps any model load (embedder, reranker, generator) that way.

Example:
    >>> from mmrag.embedders.checkpoint import infer_family
    >>> infer_family("vidore/colqwen2-v1.0-hf")     # the catalogue answers
    'colqwen2'
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmrag.embedders.identity import WEIGHT_SUFFIXES, hub_offline, is_local_model
from mmrag.errors import ConfigError, ModelNotAvailableError

__all__ = ["cached_snapshot", "check_available", "infer_family", "is_hub_id", "loading"]

#: Seconds to wait for the Hub's one answer.
HUB_TIMEOUT_S = 10.0
#: open_clip's own id schemes (a Hub repository, a local folder): the CLIP family.
OPEN_CLIP_SCHEMES = ("hf-hub:", "local-dir:")

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def is_hub_id(model: str) -> bool:
    """Whether ``model`` reads as a Hugging Face repository id (``org/name``, not a folder).

    Example:
        >>> is_hub_id("vidore/colqwen2-v1.0-hf"), is_hub_id("./models/mine")
        (True, False)
    """
    return bool(_HUB_ID.fullmatch(model)) and not is_local_model(model)


def cached_snapshot(repo: str, revision: str | None = None) -> Path | None:
    """The Hugging Face cache's folder of ``repo`` at ``revision`` (a branch, tag or commit;
    default ``main``), or ``None`` when that revision was never downloaded."""
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / ("models--" + repo.replace("/", "--"))
    commit = (revision or "main").lower()
    if not _COMMIT.fullmatch(commit):
        ref = folder / "refs" / (revision or "main")
        if not ref.is_file():
            return None
        commit = ref.read_text(encoding="utf-8").strip()
    snapshot = folder / "snapshots" / commit
    return snapshot if snapshot.is_dir() else None


def _has_weights(folder: Path) -> bool:
    return any(path.suffix in WEIGHT_SUFFIXES for path in folder.rglob("*"))


def _ask_hub(repo: str, revision: str | None, expand: list[str]) -> tuple[object | None, str]:
    """``(model info, "")`` or ``(None, why)``: one request with a short timeout, no retry."""
    try:
        from huggingface_hub import HfApi

        info = HfApi().model_info(repo, revision=revision, timeout=HUB_TIMEOUT_S, expand=expand)
    except Exception as error:  # any failure means: the Hub cannot tell us now
        lines = str(error).strip().splitlines()
        return None, f"{type(error).__name__}: {lines[0] if lines else 'no detail'}"
    return info, ""


def _not_available(what: str, model: str, tried: list[str]) -> ModelNotAvailableError:
    return ModelNotAvailableError(
        f"{what} {model!r} is not available here. Tried: {'; '.join(tried)}. Download it "
        f"while online (`hf download {model}`), point its `model` key at a local checkpoint "
        'folder (e.g. [embedder] model = "/path/to/checkpoint"), or run `mmrag init --tiny` '
        "for a working offline config on tiny random models."
    )


def _hub_part(repo: str, revision: str | None, expand: list[str]) -> tuple[object | None, str]:
    if hub_offline():
        return None, "not the Hub: HF_HUB_OFFLINE is set"
    info, why = _ask_hub(repo, revision, expand)
    return info, "" if info is not None else f"the Hub ({why})"


def check_available(model: str, revision: str | None = None, *, what: str = "the model") -> str:
    """How ``model``'s files can be had: ``"local folder"``, ``"cached"`` (the Hugging Face
    cache holds weights for ``revision``) or ``"the Hub"`` (it answered: they will download).

    Anything that is not a Hub id (a folder, an open_clip tag) is left to its loader. Raises
    :class:`~mmrag.errors.ModelNotAvailableError` naming what was tried, at once.
    """
    if is_local_model(model):
        return "local folder"
    if not is_hub_id(model):
        return "not a Hub id"
    snapshot = cached_snapshot(model, revision)
    if snapshot is not None and _has_weights(snapshot):
        return "cached"
    where = snapshot if snapshot is not None else cached_snapshot_root(model)
    tried = [f"the Hugging Face cache ({where}: no weights for revision {revision or 'main'!r})"]
    info, why = _hub_part(model, revision, ["sha"])
    if info is not None:
        return "the Hub"
    raise _not_available(what, model, [*tried, why])


def cached_snapshot_root(repo: str) -> Path:
    """Where the Hugging Face cache keeps ``repo``."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE) / ("models--" + repo.replace("/", "--"))


def infer_family(model: str, revision: str | None = None) -> str:
    """The embedder family of ``model``, read from the checkpoint itself (never its name).

    In order: the model catalogue; open_clip's ``hf-hub:`` / ``local-dir:`` ids (CLIP); a local
    folder's config (:func:`~mmrag.embedders.detect_family`); the config.json of the Hugging
    Face cache's snapshot; the ``model_type`` the Hub reports (one request, unless offline).
    Raises :class:`~mmrag.errors.ModelNotAvailableError` when none can tell (offline and not
    cached), :class:`~mmrag.errors.ConfigError` for an architecture mmrag cannot embed with.

    Example:
        >>> infer_family("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
        'clip'
    """
    from mmrag.embedders import detect_family
    from mmrag.embedders.catalogue import _BY_NAME
    from mmrag.embedders.families import MODEL_TYPES, family_of_model_type

    if model in _BY_NAME:
        return _BY_NAME[model].family
    if model.startswith(OPEN_CLIP_SCHEMES):
        return "clip"
    path = Path(model).expanduser()
    if not path.is_dir() and (path.is_absolute() or model.startswith(("./", "../", "~"))):
        raise ModelNotAvailableError(f"{model!r}: no such model folder")
    if is_local_model(model) or not is_hub_id(model):
        return detect_family(str(path))
    snapshot = cached_snapshot(model, revision)
    if snapshot is not None and (snapshot / "config.json").is_file():
        return detect_family(str(snapshot))
    tried = [f"the Hugging Face cache ({cached_snapshot_root(model)}: no config.json)"]
    info, why = _hub_part(model, revision, ["config"])
    if info is None:
        from mmrag.embedders.catalogue import FAMILIES

        raise ModelNotAvailableError(
            f"cannot tell the family of {model!r}: it is not in the model catalogue and its "
            f"config cannot be read (tried: {'; '.join([*tried, why])}). To use it, name its "
            f"family (type = one of {', '.join(FAMILIES)}), download it while online (`hf "
            f"download {model}`), or point at a local folder."
        )
    config = getattr(info, "config", None) or {}
    model_type = config.get("model_type") if isinstance(config, dict) else None
    family = family_of_model_type(model_type)
    if family is None:
        raise ConfigError(
            f"{model}: model_type {model_type!r} is not an architecture mmrag can embed with; "
            f"supported: {', '.join(sorted(MODEL_TYPES))} (or name its family: type = ...)"
        )
    return family


@contextmanager
def loading(
    model: str, revision: str | None = None, *, what: str = "the model", check: bool = True
) -> Iterator[None]:
    """Around a model load: check its files can be had first (:func:`check_available`; not
    with ``check=False``), and turn the loader's ``OSError`` (missing files, no connection)
    into :class:`~mmrag.errors.ModelNotAvailableError` with the same advice."""
    if check:
        check_available(model, revision, what=what)
    try:
        yield
    except OSError as error:
        lines = str(error).strip().splitlines()
        detail = f"{type(error).__name__}: {lines[0] if lines else 'no detail'}"
        offline = "" if hub_offline() else " (without Hub access, set HF_HUB_OFFLINE=1)"
        raise ModelNotAvailableError(
            f"{what} {model!r} could not be loaded: {detail}. Check that the folder or cache "
            f"holds the complete checkpoint{offline}, set the model to a local folder, or run "
            "`mmrag init --tiny` for a working offline config on tiny random models."
        ) from error
