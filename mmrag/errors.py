"""The exceptions mmrag raises.

Every error names what was wrong, with which input, and (where there is one) what to do about it
(STYLE.md point 7). Catch :class:`MmragError` to handle any of them.

Example:
    >>> from mmrag.errors import IngestError
    >>> err = IngestError("scan.pdf", "the file is empty (0 bytes)")
    >>> str(err)
    'scan.pdf: the file is empty (0 bytes)'
"""

from __future__ import annotations

from os import PathLike
from typing import Any

__all__ = [
    "ConfigError",
    "FeatureNotAvailableError",
    "IndexStoppedError",
    "IngestError",
    "MissingDependencyError",
    "MmragError",
    "ModelNotAvailableError",
]


class MmragError(Exception):
    """Base class of every error raised by mmrag."""


class ConfigError(MmragError, ValueError):
    """A configuration value is invalid; the message names the key and the allowed values."""


class ModelNotAvailableError(ConfigError):
    """A model's files can be had neither from a local folder, nor the Hugging Face cache, nor
    the Hub (offline, unreachable, or no such model). The message says what was tried and how
    to point at a local copy; ``mmrag`` exits with status 68 (EX_NOHOST).

    Example:
        >>> from mmrag.errors import ConfigError, ModelNotAvailableError
        >>> isinstance(ModelNotAvailableError("org/name: not cached"), ConfigError)
        True
    """


class FeatureNotAvailableError(MmragError):
    """The requested feature is not part of this build of mmrag (yet)."""


class MissingDependencyError(MmragError, ImportError):
    """An optional dependency is not installed; the message says which extra to install."""


class IngestError(MmragError):
    """A source could not be read; carries the source and a human-readable reason.

    Subclasses narrow the reason (see :mod:`mmrag.pipeline.ingest`); a batch job records the
    error in its :class:`~mmrag.types.IndexReport` and carries on with the other sources.
    """

    def __init__(self, source: str | PathLike[str], reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Keep the two-argument constructor picklable (errors cross process boundaries when
        # rendering runs in worker processes).
        return (type(self), (self.source, self.reason))


class IndexStoppedError(MmragError):
    """An indexing job stopped before the end (e.g. the store stayed unreachable).

    Everything written so far is kept; running the same job again resumes it. ``report`` is
    the partial :class:`~mmrag.types.IndexReport`.
    """

    def __init__(self, message: str, report: Any) -> None:
        super().__init__(message)
        self.report = report
