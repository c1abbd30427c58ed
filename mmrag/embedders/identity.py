"""What an embedder's id says about its model: the weights' content, never a folder path.

An index records the id of the embedder that built it and refuses any other, so the id must
change exactly when the vectors could change:

* a **local folder** is named by its content: ``local@<16 hex>``, a hash of its configuration
  files and, for every weight file, its relative path, size and the hashes of its first and last
  MiB. Moving or copying the folder keeps the id; other weights change it. Only a few MiB are
  read, however large the checkpoint.
* a **Hugging Face id** is named by the commit its weights come from: ``org/name@<40 hex>``.
  A branch or tag (``main``) is resolved to its commit through the local cache, else by asking
  the Hub once; the model is then loaded at that commit, so an update on the Hub can never mix
  two versions into one index.

Example:
    >>> from mmrag.embedders.identity import model_fingerprint
    >>> model_fingerprint("vidore/colpali-v1.3-hf", "0" * 40, local_files_only=True)
    'vidore/colpali-v1.3-hf@0000000000000000000000000000000000000000'
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

from mmrag.errors import ModelNotAvailableError

__all__ = [
    "LOCAL_PREFIX",
    "commit_of",
    "folder_fingerprint",
    "hub_offline",
    "is_local_model",
    "model_fingerprint",
    "resolve_hub_commit",
]

logger = logging.getLogger(__name__)

#: How the fingerprint of a local folder starts.
LOCAL_PREFIX = "local@"
#: Configuration files hashed whole, when present at the top of the folder.
CONFIG_NAMES = ("config.json", "adapter_config.json", "open_clip_config.json")
#: Suffixes of weight files (sampled: size, first and last MiB).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
#: Suffix of sharded weight indexes (``model.safetensors.index.json``), hashed whole.
INDEX_SUFFIX = ".index.json"
#: Bytes hashed at each end of a weight file.
EDGE_BYTES = 1 << 20
#: Seconds to wait for the Hub when resolving a branch to its commit.
HUB_TIMEOUT_S = 10.0

_COMMIT = re.compile(r"[0-9a-f]{40}")
_TRUE = {"1", "ON", "YES", "TRUE"}


def is_local_model(model: str) -> bool:
    """Whether ``model`` names a local folder (after ``~`` expansion).

    Example:
        >>> import tempfile
        >>> is_local_model(tempfile.gettempdir()), is_local_model("org/name")
        (True, False)
    """
    return Path(model).expanduser().is_dir()


def commit_of(fingerprint: str) -> str | None:
    """The Hub commit a fingerprint pins, or ``None`` (a local folder, an open_clip tag).

    Example:
        >>> commit_of("org/name@" + "a" * 40) == "a" * 40
        True
        >>> commit_of("local@0123456789abcdef") is None
        True
    """
    if fingerprint.startswith(LOCAL_PREFIX):
        return None
    _, sep, tail = fingerprint.rpartition("@")
    return tail if sep and _COMMIT.fullmatch(tail) else None


def _file_sample(path: Path) -> tuple[int, str, str]:
    """``(size, sha256 of the first MiB, sha256 of the last MiB)`` of a file."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = hashlib.sha256(handle.read(EDGE_BYTES)).hexdigest()
        handle.seek(max(0, size - EDGE_BYTES))
        tail = hashlib.sha256(handle.read(EDGE_BYTES)).hexdigest()
    return size, head, tail


def _walk(folder: Path) -> list[Path]:
    """Every file under ``folder``, skipping hidden folders (``.git``, ``.cache`` …)."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(root) / name for name in files)
    return found


def folder_fingerprint(folder: str | os.PathLike[str]) -> str:
    """``local@<16 hex>``: the content of a checkpoint folder (or one weight file), not its path.

    Hashes the bytes of ``config.json``, ``adapter_config.json``, ``open_clip_config.json`` and
    every ``*.index.json`` weight index, plus the relative path, size and first/last MiB of every
    ``*.safetensors``, ``*.bin``, ``*.pt``, ``*.pth`` and ``*.ckpt`` file (sorted; hidden folders
    skipped). Copies of a folder share the fingerprint wherever they are.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> a, b = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
        >>> for folder in (a, b):
        ...     _ = (folder / "model.safetensors").write_bytes(b"weights")
        >>> folder_fingerprint(a) == folder_fingerprint(b)
        True
        >>> folder_fingerprint(a).startswith("local@")
        True
    """
    path = Path(folder).expanduser()
    digest = hashlib.sha256()
    if path.is_file():  # a single weights file (e.g. an open_clip ``ARCH/path.pt``)
        size, head, tail = _file_sample(path)
        digest.update(f"weights\0{size}\0{head}\0{tail}\n".encode())
        return LOCAL_PREFIX + digest.hexdigest()[:16]
    files = sorted(_walk(path), key=lambda p: p.relative_to(path).as_posix())
    for name in CONFIG_NAMES:
        config = path / name
        if config.is_file():
            data = config.read_bytes()
            digest.update(f"config\0{name}\0{len(data)}\0".encode() + data + b"\n")
    weights = 0
    for file in files:
        relative = file.relative_to(path).as_posix()
        if relative.endswith(INDEX_SUFFIX):
            data = file.read_bytes()
            digest.update(f"index\0{relative}\0{len(data)}\0".encode() + data + b"\n")
        elif file.suffix in WEIGHT_SUFFIXES:
            size, head, tail = _file_sample(file)
            digest.update(f"weights\0{relative}\0{size}\0{head}\0{tail}\n".encode())
            weights += 1
    if not weights:
        logger.warning(
            "%s holds no weight file (%s); its id covers its config only",
            path,
            ", ".join(WEIGHT_SUFFIXES),
        )
    return LOCAL_PREFIX + digest.hexdigest()[:16]


def hub_offline() -> bool:
    """Whether Hugging Face Hub access is switched off (``HF_HUB_OFFLINE``).

    Example:
        >>> isinstance(hub_offline(), bool)
        True
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in _TRUE:
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _cache_ref(model: str, revision: str | None) -> Path:
    from huggingface_hub import constants

    folder = "models--" + model.replace("/", "--")
    return Path(constants.HF_HUB_CACHE) / folder / "refs" / (revision or "main")


def _ask_hub(model: str, revision: str | None) -> tuple[str | None, str]:
    """``(commit, "")`` from the Hub's model info, or ``(None, why)``; one request, no retry."""
    try:
        from huggingface_hub import HfApi

        info = HfApi().model_info(model, revision=revision, timeout=HUB_TIMEOUT_S, expand=["sha"])
    except Exception as error:
        lines = str(error).strip().splitlines()
        return None, f"{type(error).__name__}: {lines[0] if lines else 'no detail'}"
    sha = getattr(info, "sha", None)
    if isinstance(sha, str) and _COMMIT.fullmatch(sha):
        return sha, ""
    return None, f"the Hub gave no commit ({sha!r})"


def resolve_hub_commit(
    model: str, revision: str | None = None, *, local_files_only: bool | None = None
) -> str:
    """The 40-hex commit that ``revision`` (default ``main``) of Hub model ``model`` names.

    A commit is used as given; otherwise the Hugging Face cache's ``refs/<revision>`` answers,
    else (unless offline: ``HF_HUB_OFFLINE`` or ``local_files_only=True``) one request to the
    Hub with a short timeout. Raises :class:`~mmrag.errors.ModelNotAvailableError` (a
    :class:`~mmrag.errors.ConfigError`) naming what was tried.

    Example:
        >>> resolve_hub_commit("org/name", "A" * 40) == "a" * 40
        True
    """
    if revision is not None and _COMMIT.fullmatch(revision.lower()):
        return revision.lower()
    ref = _cache_ref(model, revision)
    if ref.is_file():
        cached = ref.read_text(encoding="utf-8").strip()
        if _COMMIT.fullmatch(cached):
            return cached
    tried = [f"the Hugging Face cache ({ref} is missing)"]
    offline = hub_offline()
    if offline:
        tried.append("not the Hub: HF_HUB_OFFLINE is set")
    elif local_files_only:
        tried.append("not the Hub: local_files_only=True")
    else:
        commit, why = _ask_hub(model, revision)
        if commit is not None:
            return commit
        tried.append(f"the Hub ({why})")
    raise ModelNotAvailableError(
        f"cannot tell which commit of {model!r} (revision {revision or 'main'!r}) to use, so "
        f"the embedder has no stable id. Tried: {'; '.join(tried)}. Download it first (e.g. "
        f"`hf download {model}` while online), pass revision='<40-hex commit>', or point at a "
        'local folder: embedder.model = "/path/to/checkpoint".'
    )


def model_fingerprint(
    model: str, revision: str | None = None, *, local_files_only: bool | None = None
) -> str:
    """The model part of an embedder id (what follows ``family:``), without loading anything.

    A local folder gives ``local@<16 hex>`` (its content, see :func:`folder_fingerprint`);
    anything else is a Hugging Face id and gives ``<model>@<40-hex commit>`` (see
    :func:`resolve_hub_commit`).

    Example:
        >>> model_fingerprint("org/name", "b" * 40) == "org/name@" + "b" * 40
        True
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return folder_fingerprint(path)
    if path.is_absolute() or model.startswith(("./", "../", "~")):
        raise ModelNotAvailableError(f"{model!r}: no such model folder")
    return f"{model}@{resolve_hub_commit(model, revision, local_files_only=local_files_only)}"
