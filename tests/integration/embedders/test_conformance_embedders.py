"""The embedder conformance suite on mmrag's own embedders, over the tiny offline models.

Each class only says how to build its embedder (and which optional query kinds it takes);
:class:`~mmrag.testing.conformance.embedder.EmbedderConformance` holds every check.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.embedders.clip import ClipEmbedder
from mmrag.embedders.colpali import ColModernVBertEmbedder, ColPaliEmbedder, ColQwen2Embedder
from mmrag.embedders.e5v import E5VEmbedder
from mmrag.embedders.vlm2vec import VLM2VecEmbedder
from mmrag.testing.conformance.embedder import EmbedderConformance

pytestmark = pytest.mark.integration

COLPALI_FAMILY = {
    "colpali": ColPaliEmbedder,
    "colqwen2": ColQwen2Embedder,
    "colmodernvbert": ColModernVBertEmbedder,
}


class TestClipEmbedder(EmbedderConformance):
    text_image_queries = True  # the normalised sum of the two towers

    @pytest.fixture(scope="class")
    @classmethod
    def embedder(cls, tiny_open_clip: Path) -> ClipEmbedder:
        return ClipEmbedder(str(tiny_open_clip), device="cpu", batch_size=2)


class TestColPaliFamilyEmbedders(EmbedderConformance):
    """ColPali, ColQwen2 and ColModernVBert: multi-vector pages with a mask and a grid; an
    image query is embedded as a page; text + image queries are refused."""

    @pytest.fixture(scope="class", params=sorted(COLPALI_FAMILY))
    @classmethod
    def embedder(cls, request, tiny_models_dir: Path):
        path = tiny_models_dir / request.param
        return COLPALI_FAMILY[request.param](str(path), device="cpu", batch_size=4)


class TestVLM2VecEmbedder(EmbedderConformance):
    text_image_queries = True

    @pytest.fixture(scope="class")
    @classmethod
    def embedder(cls, tiny_qwen2vl: Path) -> VLM2VecEmbedder:
        return VLM2VecEmbedder(str(tiny_qwen2vl), device="cpu", batch_size=2)


class TestE5VEmbedder(EmbedderConformance):
    text_image_queries = True

    @pytest.fixture(scope="class")
    @classmethod
    def embedder(cls, tiny_llava_next: Path) -> E5VEmbedder:
        return E5VEmbedder(str(tiny_llava_next), device="cpu", batch_size=2)
