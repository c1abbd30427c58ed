"""User metadata fields get a payload index of their value's type the first time they are
written; the tenant field is a keyword index flagged ``is_tenant``."""

from __future__ import annotations

import dataclasses

import pytest

from mmrag.store.embedded import EmbeddedStore
from mmrag.testing.conformance.corpus import make_corpus, schema_for

pytestmark = pytest.mark.integration


def test_metadata_fields_are_indexed_on_first_write(tmp_path):
    corpus = make_corpus(8)
    with EmbeddedStore(tmp_path, "docs", schema_for()) as store:
        schema = store._shard.info().payload_schema
        assert schema["tenant"].params.is_tenant
        assert not any(key.startswith("metadata.") for key in schema)
        tagged = [
            (
                dataclasses.replace(
                    d.item, metadata={**d.item.metadata, "score": 0.5, "ok": True, "tags": ["a"]}
                ),
                d.embedding,
            )
            for d in corpus
        ]
        store.upsert(tagged)
        schema = store._shard.info().payload_schema
        kinds = {key: str(info.data_type) for key, info in schema.items()}
    assert kinds["metadata.lang"].endswith("Keyword")
    assert kinds["metadata.batch"].endswith("Integer")
    assert kinds["metadata.score"].endswith("Float")
    assert kinds["metadata.ok"].endswith("Bool")
    assert kinds["metadata.tags"].endswith("Keyword")
    # reopened: the indexes are known, not created again (and still there)
    with EmbeddedStore(tmp_path, "docs") as store:
        store.upsert(tagged[:1])
        assert "metadata.tags" in store._shard.info().payload_schema
