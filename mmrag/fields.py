"""The user's own fields on indexed items (metadata): what they may hold, and how the command
line types them (``--meta year=2024`` stores the integer 2024, which ``--filter year=2024``
matches).

Example:
    >>> from mmrag.fields import parse_assignments
    >>> parse_assignments(["dept=hr", "year=2024"])
    {'dept': 'hr', 'year': 2024}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["METADATA_KEY", "check_metadata", "parse_assignments", "parse_value"]

#: What a user metadata key looks like (it becomes the payload key ``metadata.<key>``).
METADATA_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


def check_metadata(metadata: Mapping[str, Any], where: str = "metadata") -> dict[str, Any]:
    """``metadata`` checked for storing: keys are identifiers (letters, digits, ``_``, ``-``),
    values are strings, numbers, booleans or lists of them. Returns a plain dict.

    Example:
        >>> check_metadata({"dept": "finance", "year": 2024, "tags": ["q1", "audit"]})
        {'dept': 'finance', 'year': 2024, 'tags': ['q1', 'audit']}
    """
    if not isinstance(metadata, Mapping):
        raise ValueError(f"{where}: metadata must be a mapping, got {type(metadata).__name__}")
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not METADATA_KEY.match(key):
            raise ValueError(
                f"{where}: metadata key {key!r} must start with a letter or _ and hold only "
                "letters, digits, _ and - (at most 64 characters)"
            )
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            if not isinstance(v, str | int | float | bool) or v != v:
                raise ValueError(
                    f"{where}: metadata {key!r} must be a string, number, boolean or a list of "
                    f"them; got {v!r}"
                )
        out[key] = list(value) if isinstance(value, list | tuple) else value
    return out


def parse_value(text: str) -> str | int | float | bool:
    """A metadata value typed on the command line: ``2024`` → int, ``1.5`` → float,
    ``true`` / ``false`` → bool, anything else the string itself (the same rule for
    ``--meta`` and ``--filter``, so what is stored is what a filter matches).

    Example:
        >>> [parse_value(v) for v in ("2024", "1.5", "true", "finance", "007x")]
        [2024, 1.5, True, 'finance', '007x']
    """
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if re.fullmatch(r"[+-]?\d{1,18}", text.strip()):
        return int(text)
    if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?", text.strip()):
        return float(text)
    return text


def parse_assignments(pairs: Iterable[str], what: str = "--meta") -> dict[str, Any]:
    """``["dept=hr", "year=2024", "tag=a", "tag=b"]`` → ``{"dept": "hr", "year": 2024,
    "tag": ["a", "b"]}`` (a repeated key gives a list), checked by :func:`check_metadata`.

    Example:
        >>> parse_assignments(["dept=hr", "year=2024", "tag=a", "tag=b"])
        {'dept': 'hr', 'year': 2024, 'tag': ['a', 'b']}
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} {pair!r}: expected key=value")
        key, parsed = key.strip(), parse_value(value)
        if key in out:
            previous = out[key]
            out[key] = [*previous, parsed] if isinstance(previous, list) else [previous, parsed]
        else:
            out[key] = parsed
    return check_metadata(out, what)
