"""Shared pytest setup: offline Hugging Face access and the tiny-model fixtures."""

import os

# Tests never reach a model hub: everything they load is a tiny model built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest_plugins = ["mmrag.testing.fixtures"]
