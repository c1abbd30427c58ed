"""Generators: answer a question from the retrieved pages, with citations.

- :class:`~mmrag.generators.transformers_vlm.TransformersGenerator` – a local VLM (Qwen2-VL,
  SmolVLM / Idefics3 …) shown the page and frame images.
- :class:`~mmrag.generators.langchain.LangChainGenerator` – any LangChain chat model, images as
  multimodal content blocks.
- :class:`~mmrag.generators.extractive.ExtractiveGenerator` – no model: quotes the retrieved
  pages' sentences that best match the question (BM25), with their citations.

Importing this package is cheap; the backends import torch / langchain when used.

Example:
    >>> from mmrag.generators import DEFAULT_SYSTEM_PROMPT
    >>> "[1]" in DEFAULT_SYSTEM_PROMPT
    True
"""

from __future__ import annotations

from mmrag.generators.base import (
    DEFAULT_SYSTEM_PROMPT,
    ContextPart,
    Generator,
    PromptSettings,
    cited_hits,
    context_parts,
)

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "ContextPart",
    "Generator",
    "PromptSettings",
    "cited_hits",
    "context_parts",
]
