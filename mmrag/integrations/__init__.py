"""Integrations, above the pipeline: they only call it, and nothing below imports them.

==================  ==========================================================================
package             what
==================  ==========================================================================
``langchain/``      ``MmragRetriever`` (a LangChain ``BaseRetriever``) and the agent tool
``server/``         the HTTP API (FastAPI, OpenAPI) and its document-QA web page (``static/``)
``ray/``            the indexing steps spread over a Ray cluster (``mmrag index --engine ray``)
==================  ==========================================================================

The CLI (:mod:`mmrag.cli`) sits at the same level. Importing this package imports none of
LangChain, FastAPI or Ray.
"""
