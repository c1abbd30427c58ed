"""ColPali-family embedders on the seeded tiny checkpoints, loaded by path via from_pretrained.

Covers: shapes and unit norms, document tokens (every token by default, the visual ones on their
grid; ``document_tokens="visual"``: the patches only), the rendered prompts against the
published strings, MaxSim parity with the processors' own ``score_retrieval``, batched ==
single, Items from the ingest stage, pooling of the result, and canonical reference values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmrag.config import PoolingConfig
from mmrag.embedders import load_embedder
from mmrag.embedders.colpali import ColModernVBertEmbedder, ColPaliEmbedder, ColQwen2Embedder
from mmrag.embedders.colvision import ColVisionEmbedder
from mmrag.embedders.pooling import Pooler
from mmrag.errors import ConfigError
from mmrag.scoring import maxsim
from mmrag.testing.inputs import sample_image
from mmrag.types import Embedding, Item, Modality

pytestmark = pytest.mark.integration

FAMILIES = ("colpali", "colqwen2", "colmodernvbert")
CLASSES = {c.family: c for c in (ColPaliEmbedder, ColQwen2Embedder, ColModernVBertEmbedder)}
QUERY = "what is the revenue?"

#: Canonical values on the seeded tiny checkpoints (``mmrag.testing``, seed 0) for
#: ``sample_image()`` (100 x 80) and ``QUERY``: the grid, the number of real tokens of the page
#: and of the query, the first 4 values of the first visual vector and of the first query vector,
#: and the MaxSim score over the visual tokens (``score``) and over every stored token
#: (``score_all``, the recipe). They guard the recipe (prompt, mask, grid, dtype) against silent
#: drift.
#: Regenerate only after a deliberate change, by printing the same quantities as
#: ``test_canonical_values`` (e.g. ``e.embed_images([sample_image()])[0].visual()[0, :4]``) and
#: pasting them here.
CANONICAL = {
    "colpali": {
        "grid": (4, 4),
        "tokens": (37, 42),
        "visual0": [-0.154757, 0.018988, -0.145699, -0.010652],
        "query0": [0.170597, -0.144604, 0.128791, -0.018857],
        "score": 12.72424,
        "score_all": 29.18397,
    },
    "colqwen2": {
        "grid": (4, 3),
        "tokens": (41, 38),
        "visual0": [-0.013389, 0.09179, 0.05651, -0.113196],
        "query0": [-0.06181, 0.10612, 0.00912, 0.051303],
        "score": 14.98653,
        "score_all": 30.71651,
    },
    "colmodernvbert": {
        "grid": (4, 4),
        "tokens": (73, 32),
        "visual0": [-0.027124, -0.045437, -0.094407, -0.072455],
        "query0": [-0.035373, -0.05994, 0.055893, -0.235548],
        "score": 10.32581,
        "score_all": 29.79392,
    },
}


@pytest.fixture(scope="module")
def paths(tiny_models_dir: Path) -> dict[str, Path]:
    return {family: tiny_models_dir / family for family in FAMILIES}


@pytest.fixture(scope="module")
def embedders(paths: dict[str, Path]) -> dict[str, ColVisionEmbedder]:
    """One loaded embedder per family, shared by the tests of this module."""
    return {f: CLASSES[f](str(paths[f]), device="cpu", batch_size=4).load() for f in FAMILIES}


def images() -> list:
    """Three pages of different sizes and aspect ratios."""
    return [sample_image(100, 80, seed=0), sample_image(200, 60, seed=1), sample_image(40, 130, 2)]


def decode(embedder: ColVisionEmbedder, ids: torch.Tensor) -> str:
    return embedder._processor.tokenizer.decode(ids)


# -- loading ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_load_embedder_detects_the_family_of_a_local_checkpoint(paths, family):
    embedder = load_embedder(str(paths[family]), device="cpu")
    assert type(embedder) is CLASSES[family]
    assert embedder.dim == 128 and not embedder.is_loaded  # read from config.json
    embedder.load()
    assert embedder.is_loaded and embedder.dim == 128
    assert next(embedder._model.parameters()).dtype == torch.float32  # auto dtype on the CPU


def test_a_checkpoint_of_another_family_is_a_clear_error(paths):
    with pytest.raises(ConfigError, match=r"is a 'colpali' checkpoint.*model_type 'colqwen2'"):
        ColQwen2Embedder(str(paths["colpali"]), device="cpu").load()


def test_the_colpali_engine_colmodernvbert_release_points_to_the_native_weights(tmp_path):
    from transformers import ModernVBertConfig

    ModernVBertConfig().save_pretrained(tmp_path)  # what ModernVBERT/colmodernvbert declares
    with pytest.raises(ConfigError, match="ModernVBERT/colmodernvbert-merged"):
        ColModernVBertEmbedder(str(tmp_path), device="cpu").load()


# -- shapes, norms, token hygiene ------------------------------------------------------------------


def model_tokens(embedder: ColVisionEmbedder, page) -> tuple[np.ndarray, np.ndarray]:
    """The reference: the model's own output for one page (no padding), and the token ids."""
    inputs = embedder.document_inputs([page])
    with torch.inference_mode():
        vectors = embedder._model(**inputs).embeddings[0].float().numpy()  # (t, d)
    return vectors, inputs["input_ids"][0].numpy()


def same_rows(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` hold the same vectors, in any order."""
    if a.shape != b.shape:
        return False
    distance = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)  # (n, n)
    match = distance.argmin(axis=1)
    return bool(np.all(distance.min(axis=1) < 1e-4) and len(set(match.tolist())) == len(a))


@pytest.mark.parametrize("family", FAMILIES)
def test_documents_keep_every_token_with_the_visual_ones_on_their_grid(embedders, family):
    """document_tokens="all" (the recipe): every real token, visual ones first, unit norms."""
    embedder = embedders[family]
    assert embedder.document_tokens == "all"
    pages = images()
    for page, doc in zip(pages, embedder.embed_images(pages), strict=True):
        tokens, ids = model_tokens(embedder, page)
        assert doc.kind == "multi" and doc.dim == 128 and doc.multi.dtype == np.float32
        assert same_rows(doc.multi, tokens)  # every real token of the prompt, once
        np.testing.assert_allclose(np.linalg.norm(doc.multi, axis=1), 1.0, atol=1e-5)
        assert doc.mask.dtype == bool and doc.grid is not None
        rows, cols = doc.grid
        visual = int(doc.mask.sum())
        assert rows * cols == visual == doc.visual().shape[0]
        assert doc.mask[:visual].all()  # the patches first: region citations read them there
        image = ids == embedder._image_token_id
        prompt = doc.multi[visual:]  # the prompt's tokens (and ColModernVBert's thumbnail)
        distance = np.linalg.norm(tokens[~image][:, None] - prompt[None], axis=-1)
        assert np.all(distance.min(axis=1) < 1e-4)
        assert doc.multi.shape[0] > visual  # the prompt's own tokens are kept


@pytest.mark.parametrize("family", FAMILIES)
def test_visual_document_tokens_keep_the_patches_only(embedders, paths, family):
    every = embedders[family]
    visual = CLASSES[family](str(paths[family]), device="cpu", document_tokens="visual").load()
    assert visual.id != every.id
    pages = images()
    for page, patches, doc in zip(
        pages, visual.embed_images(pages), every.embed_images(pages), strict=True
    ):
        tokens, ids = model_tokens(visual, page)
        assert patches.grid == doc.grid and patches.mask.all()
        np.testing.assert_allclose(patches.multi, doc.visual(), atol=1e-5)  # same grid order
        np.testing.assert_array_equal(patches.visual(), patches.multi)
        image = tokens[ids == visual._image_token_id]
        # Only image-token vectors (ColModernVBert leaves its thumbnail's out of the grid).
        distance = np.linalg.norm(patches.multi[:, None] - image[None], axis=-1)
        assert np.all(distance.min(axis=1) < 1e-4)


def test_colpali_grid_is_the_vision_tower_patch_grid(embedders):
    embedder = embedders["colpali"]
    vision = embedder._model.config.vlm_config.vision_config
    side = vision.image_size // vision.patch_size
    assert [d.grid for d in embedder.embed_images(images())] == [(side, side)] * 3


def test_colqwen2_grid_comes_from_image_grid_thw(embedders):
    embedder = embedders["colqwen2"]
    pages = images()
    thw = embedder.document_inputs(pages)["image_grid_thw"].tolist()
    merge = embedder._processor.image_processor.merge_size
    expected = [(h // merge, w // merge) for _, h, w in thw]
    assert [d.grid for d in embedder.embed_images(pages)] == expected
    assert expected[0] == (4, 3)  # 100 x 80 → 8 x 6 patches → 4 x 3 merged tokens


def test_colqwen2_image_budget_sets_the_number_of_page_vectors(paths):
    page = sample_image(300, 300)
    default = ColQwen2Embedder(str(paths["colqwen2"]), device="cpu")  # at most 768 tokens
    small = ColQwen2Embedder(str(paths["colqwen2"]), device="cpu", max_pixels=20 * 28 * 28)
    assert default.embed_images([page])[0].grid == (11, 11)  # 308 x 308 px
    assert small.embed_images([page])[0].grid == (4, 4)  # 112 x 112 px: within 20 tokens
    assert default.id != small.id


def test_colqwen2_merged_patches_are_row_major(embedders):
    """The processor lists merged 28 x 28 patches row by row (what ``grid`` assumes)."""
    from PIL import Image

    processor = embedders["colqwen2"]._processor
    rows, cols = 4, 3  # 112 x 84 px: a multiple of 28, within the budget, so not resized
    pixels = np.zeros((rows * 28, cols * 28, 3), dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            pixels[r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28] = 10 + 20 * (r * cols + c)
    inputs = processor.process_images([Image.fromarray(pixels)])
    assert inputs["image_grid_thw"][0].tolist() == [1, rows * 2, cols * 2]
    per_token = inputs["pixel_values"][0].reshape(rows * cols, 4, -1).mean(dim=(1, 2))
    assert torch.all(per_token[1:] > per_token[:-1])  # increasing = row-major block order


def test_colmodernvbert_tiles_and_pixel_shuffle_are_row_major(embedders):
    """Tiles come row-major, then the thumbnail; pixel shuffle keeps blocks row-major."""
    from PIL import Image

    embedder = embedders["colmodernvbert"]
    pixels = np.zeros((128, 128, 3), dtype=np.uint8)
    for r in range(2):
        for c in range(2):
            pixels[r * 64 : (r + 1) * 64, c * 64 : (c + 1) * 64] = 40 + 50 * (2 * r + c)
    tiles = embedder.document_inputs([Image.fromarray(pixels)])["pixel_values"][0]  # (5, 3, h, w)
    means = tiles[:4].mean(dim=(1, 2, 3))
    assert tiles.shape[0] == 5 and torch.all(means[1:] > means[:-1])

    connector = embedder._model.vlm.connector
    side, factor = 4, connector.pixel_shuffle_factor
    assert factor == 2
    labels = torch.arange(side * side, dtype=torch.float32).reshape(1, side * side, 1)
    shuffled = connector.pixel_shuffle(labels, factor)[0]  # (side²/f², f²): one row per token
    for token, block in enumerate(shuffled.tolist()):
        y, x = divmod(token, side // factor)
        expected = [(y * factor + dy) * side + x * factor + dx for dy in (0, 1) for dx in (0, 1)]
        assert sorted(block) == expected


def test_colmodernvbert_page_grid_spans_the_tiles(embedders, paths):
    embedder = embedders["colmodernvbert"]
    k = int(np.sqrt(embedder._processor.image_seq_len))
    tall, wide = sample_image(200, 60, 1), sample_image(40, 130, 2)
    docs = embedder.embed_images([tall, wide])
    assert [d.grid for d in docs] == [(2 * k, k), (k, 2 * k)]
    # keep_global_image: the thumbnail's k*k vectors are stored too, and no exact grid exists.
    keep = ColModernVBertEmbedder(str(paths["colmodernvbert"]), keep_global_image=True)
    (kept,) = keep.embed_images([tall])
    assert kept.grid is None and int(kept.mask.sum()) == 3 * k * k
    # The stored tile vectors are the same set, reordered into the page grid.
    tile_slots = np.flatnonzero(kept.mask)[: 2 * k * k]
    np.testing.assert_allclose(
        np.sort(docs[0].visual(), axis=0), np.sort(kept.multi[tile_slots], axis=0), atol=1e-6
    )


def test_colmodernvbert_unsplit_page_is_its_own_grid(paths):
    """Without tiling (one image, no thumbnail) the k x k tokens are the page grid."""
    embedder = ColModernVBertEmbedder(str(paths["colmodernvbert"]), device="cpu").load()
    embedder._processor.image_processor.do_image_splitting = False
    k = int(np.sqrt(embedder._processor.image_seq_len))
    (doc,) = embedder.embed_images([sample_image()])
    assert doc.grid == (k, k) and int(doc.mask.sum()) == k * k


@pytest.mark.parametrize("family", FAMILIES)
def test_pooled_views_work_on_every_family(embedders, family):
    pooler = Pooler(PoolingConfig(views=["global", "rows", "cols", "hier", "muvera"]))
    for doc in embedders[family].embed_images(images()):
        views = pooler.document_views(doc.visual(), doc.grid)
        assert views["global"].shape == (1, 128)
        assert views["rows"].shape == (doc.grid[0], 128)
        assert views["cols"].shape == (doc.grid[1], 128)
        assert views["muvera"].shape == (pooler.muvera_dim(),)


# -- queries ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_text_queries_keep_every_real_token_with_unit_norms(embedders, family):
    embedder = embedders[family]
    texts = ["chart", "a much longer question about quarterly revenue growth"]
    queries = embedder.embed_queries(texts)
    inputs = embedder.query_inputs(texts)
    for i, query in enumerate(queries):
        assert query.mask is None and query.grid is None
        assert query.multi.shape == (int(inputs["attention_mask"][i].sum()), 128)
        np.testing.assert_allclose(np.linalg.norm(query.multi, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_an_image_query_is_embedded_like_a_page(embedders, family):
    embedder = embedders[family]
    page = sample_image(seed=5)
    text, image_query = embedder.embed_queries(["revenue", page])
    (as_page,) = embedder.embed_images([page])
    assert text.grid is None
    assert image_query.grid == as_page.grid
    np.testing.assert_allclose(image_query.multi, as_page.multi, atol=1e-5)


# -- published prompts -----------------------------------------------------------------------------


def test_colpali_prompts_are_the_published_strings(embedders):
    embedder = embedders["colpali"]
    doc = embedder.document_inputs([sample_image()])["input_ids"][0]
    query = embedder.query_inputs([QUERY])["input_ids"][0]
    assert decode(embedder, doc) == "<image>" * 16 + "<bos>Describe the image.\n"
    assert decode(embedder, query) == "<bos>Question: what is the revenue?" + "<pad>" * 10 + "\n"


def test_colqwen2_prompts_are_the_published_strings(embedders):
    embedder = embedders["colqwen2"]
    doc = embedder.document_inputs([sample_image()])["input_ids"][0]
    query = embedder.query_inputs([QUERY])["input_ids"][0]
    assert decode(embedder, doc) == (
        "<|im_start|>user\n<|vision_start|>"
        + "<|image_pad|>" * 12
        + "<|vision_end|>Describe the image.<|im_end|><|endoftext|>"
    )
    assert decode(embedder, query) == "Query: what is the revenue?" + "<|endoftext|>" * 10 + "\n"


def test_colmodernvbert_prompts_are_the_published_strings(embedders):
    embedder = embedders["colmodernvbert"]
    doc = embedder.document_inputs([sample_image()])["input_ids"][0]
    query = embedder.query_inputs([QUERY])["input_ids"][0]
    tile = "<image>" * 4
    assert decode(embedder, doc) == (
        "[CLS]<|begin_of_text|>User:"
        f"<fake_token_around_image><row_1_col_1>{tile}<fake_token_around_image><row_1_col_2>{tile}\n"
        f"<fake_token_around_image><row_2_col_1>{tile}<fake_token_around_image><row_2_col_2>{tile}\n"
        f"\n<fake_token_around_image><global-img>{tile}<fake_token_around_image>"
        "Describe the image.<end_of_utterance>\nAssistant:[SEP]"
    )
    augmentation = "<end_of_utterance>" * 10
    assert decode(embedder, query) == "[CLS]what is the revenue?" + augmentation + "[SEP]"


# -- scoring parity, batching, Items ---------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_maxsim_equals_the_processor_score_retrieval(embedders, paths, family):
    """The stored document tokens score as the reference: the processor's ``score_retrieval``
    over the model's own output for every real token of each page (colpali-engine's recipe)."""
    from transformers import AutoProcessor

    reference = AutoProcessor.from_pretrained(paths[family])
    embedder = embedders[family]
    queries = [q.multi for q in embedder.embed_queries(["revenue", "a longer question on costs"])]
    pages = [d.multi for d in embedder.embed_images(images())]
    theirs_pages = [torch.from_numpy(model_tokens(embedder, page)[0]) for page in images()]
    ours = maxsim(queries, pages)  # (2, 3)
    # batch_size=1: the reference pads a batch with zero vectors, which would win the max
    # whenever every real similarity of a query token is negative; pair by pair it never pads.
    theirs = reference.score_retrieval(
        [torch.from_numpy(q) for q in queries], theirs_pages, batch_size=1
    )
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_batch_gives_the_same_vectors_as_one_at_a_time(embedders, family):
    embedder = embedders[family]
    pages = images()
    together = embedder.embed_images(pages)
    for page, batched in zip(pages, together, strict=True):
        (alone,) = embedder.embed_images([page])
        assert batched.grid == alone.grid
        np.testing.assert_array_equal(batched.mask, alone.mask)
        np.testing.assert_allclose(batched.multi, alone.multi, atol=1e-5)
    texts = ["x", "revenue by quarter", "what was the total revenue growth in the last fiscal year"]
    for text, batched in zip(texts, embedder.embed_queries(texts), strict=True):
        (alone,) = embedder.embed_queries([text])
        np.testing.assert_allclose(batched.multi, alone.multi, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_documents_embed_from_ingest_items(embedders, family):
    embedder = embedders[family]
    pages = images()
    loads: list[int] = []

    def loader(i: int):
        def load():
            loads.append(i)
            return pages[i]

        return load

    items = [
        Item(
            source="report.pdf",
            source_sha256="ab" * 32,
            modality=Modality.PDF_PAGE,
            page=i + 1,
            image_loader=loader(i),
        )
        for i in range(len(pages))
    ]
    from_items = embedder.embed_documents(iter(items))
    assert sorted(loads) == [0, 1, 2]  # each page image loaded once
    for got, expected in zip(from_items, embedder.embed_images(pages), strict=True):
        assert isinstance(got, Embedding) and got.grid == expected.grid
        np.testing.assert_allclose(got.visual(), expected.visual(), atol=1e-5)


# -- canonical values ------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_canonical_values(embedders, family):
    embedder, expected = embedders[family], CANONICAL[family]
    (doc,) = embedder.embed_images([sample_image()])
    (query,) = embedder.embed_queries([QUERY])
    assert doc.grid == expected["grid"]
    assert (doc.multi.shape[0], query.multi.shape[0]) == expected["tokens"]
    np.testing.assert_allclose(doc.visual()[0, :4], expected["visual0"], atol=1e-4)
    np.testing.assert_allclose(query.multi[0, :4], expected["query0"], atol=1e-4)
    assert maxsim([query.multi], [doc.visual()])[0, 0] == pytest.approx(expected["score"], abs=1e-4)
    all_tokens = maxsim([query.multi], [doc.multi])[0, 0]  # what is stored and scored
    assert all_tokens == pytest.approx(expected["score_all"], abs=1e-4)
