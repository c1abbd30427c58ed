"""Secrets: env-var references are saved by name, tokens are never serialised."""

from __future__ import annotations

import pytest

from mmrag.auth import Secret
from mmrag.errors import ConfigError

pytestmark = pytest.mark.unit


def test_env_secret_resolves_first_set_variable(monkeypatch):
    monkeypatch.delenv("MMRAG_T_A", raising=False)
    monkeypatch.setenv("MMRAG_T_B", "value-b")
    secret = Secret.from_env_var(["MMRAG_T_A", "MMRAG_T_B"])
    assert secret.resolve_value() == "value-b"
    assert secret.to_dict() == {
        "type": "env_var",
        "env_vars": ["MMRAG_T_A", "MMRAG_T_B"],
        "strict": True,
    }
    assert Secret.coerce(secret.to_dict()) == secret


def test_strict_secret_names_missing_variables(monkeypatch):
    monkeypatch.delenv("MMRAG_T_MISSING", raising=False)
    with pytest.raises(ConfigError, match="MMRAG_T_MISSING"):
        Secret.from_env_var("MMRAG_T_MISSING").resolve_value()
    assert Secret.from_env_var("MMRAG_T_MISSING", strict=False).resolve_value() is None


def test_token_secret_works_but_never_serialises():
    secret = Secret.from_token("sk-live-123")
    assert secret.resolve_value() == "sk-live-123"
    assert "sk-live" not in repr(secret)
    with pytest.raises(ConfigError, match="cannot be saved"):
        secret.to_dict()


def test_coerce_accepts_env_prefix_and_refuses_plain_values():
    assert Secret.coerce("env:MY_KEY").env_vars == ("MY_KEY",)
    with pytest.raises(ConfigError, match="never stored as values"):
        Secret.coerce("hunter2")
