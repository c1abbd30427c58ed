"""The user's own fields on indexed items: metadata (from the call, a function of the path, or
a JSON sidecar beside the file) and the tenant that owns them.

A sidecar is ``<file>.meta.json`` (``report.pdf`` → ``report.pdf.meta.json``), a JSON object of
fields; it is the most specific source of metadata, so its fields win over the call's. A
sidecar that cannot be read fails its file (reported, the job carries on).

Example:
    >>> from mmrag.pipeline.indexing.labels import Labels
    >>> labels = Labels({"dept": "finance"}, tenant="acme")
    >>> labels.metadata_of("/nowhere/a.pdf")
    {'dept': 'finance'}
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from mmrag.errors import IngestError
from mmrag.fields import check_metadata
from mmrag.pipeline.ingest.discovery import SIDECAR_SUFFIX
from mmrag.types import IndexReport, Item

__all__ = ["TENANT_KEY", "Labels", "MetadataArg", "MetadataError"]

logger = logging.getLogger(__name__)

#: ``metadata=`` of an indexing call: fields for every file, or a function of the file's path.
MetadataArg = Mapping[str, Any] | Callable[[str], Mapping[str, Any] | None] | None

#: The payload field holding an item's tenant (keyword index with ``is_tenant``).
TENANT_KEY = "tenant"


class MetadataError(IngestError):
    """A file's metadata (its sidecar, or what the metadata function returned) is invalid."""


class Labels:
    """What an indexing job attaches to each item: user metadata and the tenant.

    ``metadata``: a mapping applied to every file, or a function ``path -> mapping`` called once
    per file; ``sidecars``: read ``<file>.meta.json`` too (its fields win).
    """

    def __init__(
        self,
        metadata: MetadataArg = None,
        *,
        tenant: str | None = None,
        sidecars: bool = True,
    ) -> None:
        if metadata is not None and not callable(metadata):
            metadata = check_metadata(metadata)
        if tenant is not None and (not isinstance(tenant, str) or not tenant):
            raise ValueError(f"tenant must be a non-empty string, got {tenant!r}")
        self.metadata = metadata
        self.tenant = tenant
        self.sidecars = sidecars
        self._cache: tuple[str, dict[str, Any]] | None = None

    @property
    def is_plain(self) -> bool:
        """Nothing to attach (items are indexed as read)."""
        return self.metadata is None and self.tenant is None and not self.sidecars

    def metadata_of(self, source: str) -> dict[str, Any]:
        """The metadata of ``source`` (raises :class:`MetadataError` naming the file)."""
        if self._cache is not None and self._cache[0] == source:
            return self._cache[1]
        fields: dict[str, Any] = {}
        if callable(self.metadata):
            try:
                found = self.metadata(source)
            except Exception as error:
                raise MetadataError(source, f"the metadata function failed: {error}") from error
            if found:
                fields.update(self._checked(found, source, "the metadata function"))
        elif self.metadata:
            fields.update(self.metadata)
        if self.sidecars:
            fields.update(self._sidecar(source))
        self._cache = (source, fields)
        return fields

    def rejects(self, source: str, report: IndexReport) -> bool:
        """Whether ``source``'s metadata is invalid; then the failure is added to ``report``
        (once per source) and logged, and its file is to be passed over."""
        try:
            self.metadata_of(source)
        except MetadataError as error:
            if not any(f.source == error.source for f in report.failed):
                report.add_failure(error.source, error)
                logger.warning("Skipping %s: %s", error.source, error.reason)
            return True
        return False

    def apply(self, item: Item) -> Item:
        """``item`` with its source's metadata and the tenant."""
        if self.is_plain:
            return item
        return dataclasses.replace(
            item, metadata=self.metadata_of(item.source), tenant=self.tenant or item.tenant
        )

    def _sidecar(self, source: str) -> dict[str, Any]:
        path = source + SIDECAR_SUFFIX
        if "://" in source or not os.path.isfile(path):
            return {}
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise MetadataError(
                source, f"cannot read its metadata sidecar {path}: {error}"
            ) from error
        if not isinstance(data, dict):
            raise MetadataError(source, f"its metadata sidecar {path} must hold a JSON object")
        return self._checked(data, source, f"the sidecar {path}")

    @staticmethod
    def _checked(fields: Mapping[str, Any], source: str, origin: str) -> dict[str, Any]:
        try:
            return check_metadata(fields, origin)
        except ValueError as error:
            raise MetadataError(source, str(error)) from error
