"""Secrets that are resolved from the environment and never written to a file.

A :class:`Secret` is either a reference to environment variables (serialisable: the variable
*names* are saved) or a token given in code (usable, but refused by every serialiser).

Example:
    >>> import os
    >>> from mmrag.auth import Secret
    >>> os.environ["MY_QDRANT_KEY"] = "s3cr3t"
    >>> key = Secret.from_env_var("MY_QDRANT_KEY")
    >>> key.resolve_value()
    's3cr3t'
    >>> key.to_dict()
    {'type': 'env_var', 'env_vars': ['MY_QDRANT_KEY'], 'strict': True}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from mmrag.errors import ConfigError

__all__ = ["Secret", "is_secret_dict"]


def is_secret_dict(value: Any) -> bool:
    """True if ``value`` is the serialised form of an env-var :class:`Secret`."""
    return isinstance(value, Mapping) and value.get("type") == "env_var" and "env_vars" in value


class Secret:
    """An API key or password: an env-var reference (saved by name) or an in-code token.

    Example:
        >>> from mmrag.auth import Secret
        >>> Secret.from_token("abc").resolve_value()
        'abc'
        >>> Secret.from_env_var(["MISSING_A", "MISSING_B"], strict=False).resolve_value() is None
        True
    """

    __slots__ = ("_env_vars", "_strict", "_token")

    def __init__(
        self,
        *,
        token: str | None = None,
        env_vars: tuple[str, ...] = (),
        strict: bool = True,
    ) -> None:
        if (token is None) == (not env_vars):
            raise ValueError("a Secret is either a token or a list of environment variables")
        self._token = token
        self._env_vars = tuple(env_vars)
        self._strict = strict

    @classmethod
    def from_token(cls, token: str) -> Secret:
        """A secret given in code. It can be used but never serialised."""
        return cls(token=token)

    @classmethod
    def from_env_var(
        cls, env_vars: str | list[str] | tuple[str, ...], strict: bool = True
    ) -> Secret:
        """A secret read from the first of ``env_vars`` that is set, when it is needed."""
        names = (env_vars,) if isinstance(env_vars, str) else tuple(env_vars)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"env_vars must be non-empty variable names, got {env_vars!r}")
        return cls(env_vars=names, strict=strict)

    @classmethod
    def coerce(cls, value: Any) -> Secret:
        """Build a Secret from a Secret, its dict form, or ``"env:NAME"``.

        A bare string is refused: a key typed into a config file would end up in version control.
        """
        if isinstance(value, Secret):
            return value
        if is_secret_dict(value):
            return cls.from_env_var(list(value["env_vars"]), strict=bool(value.get("strict", True)))
        if isinstance(value, str) and value.startswith("env:") and len(value) > 4:
            return cls.from_env_var(value[4:])
        raise ConfigError(
            "secrets are never stored as values; reference an environment variable instead, "
            'e.g. {type = "env_var", env_vars = ["QDRANT_API_KEY"]} or "env:QDRANT_API_KEY"'
        )

    @property
    def env_vars(self) -> tuple[str, ...]:
        """The variable names looked up, in order (empty for a token secret)."""
        return self._env_vars

    def resolve_value(self) -> str | None:
        """The secret's value now: the token, or the first set variable (None if not strict)."""
        if self._token is not None:
            return self._token
        for name in self._env_vars:
            value = os.environ.get(name)
            if value:
                return value
        if self._strict:
            raise ConfigError(
                f"none of the environment variables {', '.join(self._env_vars)} is set; "
                "set one of them to the secret's value"
            )
        return None

    def to_dict(self) -> dict[str, Any]:
        """The serialised form. Raises :class:`ConfigError` for a token secret."""
        if self._token is not None:
            raise ConfigError(
                "a secret given as a token cannot be saved; use Secret.from_env_var(...) so "
                "only the variable's name is written"
            )
        return {"type": "env_var", "env_vars": list(self._env_vars), "strict": self._strict}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return (self._token, self._env_vars, self._strict) == (
            other._token,
            other._env_vars,
            other._strict,
        )

    def __hash__(self) -> int:
        return hash((self._token, self._env_vars, self._strict))

    def __repr__(self) -> str:
        if self._token is not None:
            return "Secret(token=***)"
        return f"Secret(env_vars={list(self._env_vars)!r})"
