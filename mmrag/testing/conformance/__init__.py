"""Conformance suites for mmrag's extension points: one pytest base class per contract.

A third-party store, embedder, reranker or generator subclasses the suite of its contract in
its own tests and overrides one fixture that builds the implementation; every behaviour check
then runs against it, exactly as they run against mmrag's own implementations (in the manner
of Haystack's ``haystack/testing/document_store.py`` and LangChain's ``langchain_tests``).

=============  ==========================  ==============================================
module         base class                  the fixture a subclass overrides
=============  ==========================  ==============================================
``store``      ``StoreConformance``        ``open_store``: a factory of open stores
``embedder``   ``EmbedderConformance``     ``embedder``: the embedder under test
``reranker``   ``RerankerConformance``     ``reranker`` (and ``case``: query, hits, context)
``generator``  ``GeneratorConformance``    ``generator``: the generator under test
``corpus``     (helpers)                   the seeded multi-vector corpus the store suite uses
=============  ==========================  ==============================================

These modules import pytest. ``import mmrag`` and ``import mmrag.testing`` never import them;
import the one you need in a test module::

    from mmrag.testing.conformance.store import StoreConformance
"""

import pytest

# The checks live in this package, not in the caller's test files: ask pytest to rewrite their
# asserts (as it does for test modules) so that a failure shows the values compared. This must
# run before the modules are imported, hence here (as langchain_tests does).
for _module in ("corpus", "store", "embedder", "reranker", "generator"):
    pytest.register_assert_rewrite(f"{__name__}.{_module}")
