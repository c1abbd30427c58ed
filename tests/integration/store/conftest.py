"""The data of the store tests: the conformance suite's seeded corpus, for the modules here.

The store conformance suite lives in :mod:`mmrag.testing.conformance.store` (its fixtures are
methods of ``StoreConformance``); ``test_conformance.py`` runs it on every backend.
"""

from __future__ import annotations

from mmrag.testing.conformance.corpus import make_corpus, schema_for

__all__ = ["make_corpus", "schema_for"]
