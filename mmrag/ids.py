"""Identity: the deterministic point ids, content ids and canonical sources.

A point is one (canonical source, locator) under one embedder (and one tenant on a
multi-tenant server); a byte-identical copy of a file at another path is another source whose
pages share a *content* id, so their embeddings are computed once.

Example:
    >>> from mmrag.ids import canonical_source, item_id
    >>> item_id("/docs/a.pdf", "00" * 32, "page=1", "clip") == item_id(
    ...     canonical_source("/docs/./a.pdf"), "00" * 32, "page=1", "clip")
    True
"""

from __future__ import annotations

import os
import re
import uuid

__all__ = ["ITEM_NAMESPACE", "canonical_source", "content_id", "item_id"]

#: Namespace of the UUIDv5 point ids. Changing it changes every id: never do.
ITEM_NAMESPACE = uuid.UUID("5f0b2c1e-7d3a-5c4e-9a61-6d6d7261672e")


def content_id(source_sha256: str, locator: str, embedder_id: str = "") -> str:
    """The id of a unit of *content*: UUIDv5 of (content sha256, locator, embedder id).

    Byte-identical files at two paths share it (their points do not: see :func:`item_id`), so
    an indexing job finds the embeddings of a copy already stored and reuses them.

    Example:
        >>> content_id("00" * 32, "page=1", "clip") == content_id("00" * 32, "page=1", "clip")
        True
    """
    if not source_sha256:
        raise ValueError("content_id needs the source's sha256; got an empty string")
    return str(uuid.uuid5(ITEM_NAMESPACE, f"{source_sha256}\x1f{locator}\x1f{embedder_id}"))


def item_id(
    source: str,
    source_sha256: str,
    locator: str,
    embedder_id: str = "",
    tenant: str | None = None,
) -> str:
    """The deterministic point id: UUIDv5 of (tenant, canonical source, content sha256,
    locator, embedder id).

    A point is one (source, locator) under one embedder (and, on a multi-tenant server, one
    tenant): the same page of the same file embedded by the same embedder always gets the same
    id, so re-running a job overwrites instead of duplicating, and a copy of the file at another
    path is a distinct, separately deletable point. The content hash is part of the id so a
    changed file's new version can be written beside the old one, which stays searchable until
    the new one is complete (then it is deleted: one point per (source, locator) at rest).

    Example:
        >>> a = item_id("/docs/a.pdf", "00" * 32, "page=1", "clip")
        >>> a == item_id("/docs/a.pdf", "00" * 32, "page=1", "clip")
        True
        >>> a != item_id("/docs/b.pdf", "00" * 32, "page=1", "clip")
        True
    """
    if not source_sha256:
        raise ValueError("item_id needs the source's sha256; got an empty string")
    if not source:
        raise ValueError("item_id needs the source; got an empty string")
    key = "\x1f".join((tenant or "", source, source_sha256, locator, embedder_id))
    return str(uuid.uuid5(ITEM_NAMESPACE, key))


_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def canonical_source(source: str | os.PathLike[str]) -> str:
    """The one spelling of a source that the index stores: a URI (``https://…``,
    ``s3://…``, ``upload://…``) as given, a path made absolute and normalised with symlinks
    resolved, so ``docs/a.pdf``, ``./docs/a.pdf`` and ``/home/me/docs/a.pdf`` are one source.

    Example:
        >>> import os
        >>> canonical_source("docs/../docs/a.pdf") == os.path.realpath("docs/a.pdf")
        True
        >>> canonical_source("https://example.com/a.pdf")
        'https://example.com/a.pdf'
    """
    text = os.fspath(source)
    if _URI.match(text) and not os.path.exists(text):
        return text
    return os.path.realpath(os.path.expanduser(text))
