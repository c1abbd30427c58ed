"""ColPali-family multi-vector embedders: ColPali, ColQwen2 and ColModernVBert.

Each family runs its checkpoint's own transformers model class and processor, so the published
recipe (prompts, query augmentation, image resolution) is the one shipped with the checkpoint:

==================  ===============================  =========================================
family              document prompt                  query prompt
==================  ===============================  =========================================
``colpali``         ``<image>×1024<bos>Describe the  ``<bos>Question: {q}`` + 10 × ``<pad>``
                    image.\\n``                       + ``\\n``
``colqwen2``        ``<|im_start|>user\\n<|vision_   ``Query: {q}`` + 10 × ``<|endoftext|>``
                    start|><|image_pad|>×N<|vision_  + ``\\n``
                    end|>Describe the image.<|im_
                    end|><|endoftext|>``
``colmodernvbert``  ``[CLS]<|begin_of_text|>User:``  ``[CLS]{q}`` + 10 × ``<end_of_utterance>``
                    + image tiles + ``Describe the   + ``[SEP]``
                    image.<end_of_utterance>\\n
                    Assistant:[SEP]``
==================  ===============================  =========================================

The ten trailing tokens of a query are ColPali's *query augmentation* buffer; they are kept in the
query's vectors, as the reference scorer does.

**Document tokens.** The model cards and colpali-engine score a document on every real token of
its prompt (the prompt tokens too), and so does mmrag by default (``document_tokens="all"``): a
document :class:`~mmrag.types.Embedding` holds every real (unpadded) token vector in ``multi``,
the visual tokens first; ``document_tokens="visual"`` keeps the visual tokens only (token
hygiene; what indexes built before this setting hold). Either way ``mask`` marks the visual
tokens (``input_ids == processor.image_token_id``) and ``grid`` is the patch grid they lie on,
so that ``embedding.visual()`` is exactly the page's patch vectors in row-major order, ready for
:class:`~mmrag.embedders.pooling.Pooler` and region citations:

* ColPali: a fixed square grid, ``image_size // patch_size`` of the SigLIP tower (32 x 32 at
  448 px for ``vidore/colpali-v1.3-hf``).
* ColQwen2: ``(h / merge, w / merge)`` from the processor's ``image_grid_thw`` and the image
  processor's ``merge_size``; Qwen2-VL orders merged patches row-major.
* ColModernVBert (Idefics3-style tiling): a page larger than one tile is split into R x C tiles,
  each a k x k block of tokens (``k² = image_seq_len``, pixel-shuffled row-major), followed by a
  downscaled *global* thumbnail of the whole page. The tile tokens are reassembled into one
  ``(R·k, C·k)`` row-major grid over the page, which opens ``multi`` (the set of vectors is
  unchanged). The 64 thumbnail tokens are left out of ``mask`` by default (the tiles already
  cover the page at full resolution, and ModernBERT's bidirectional attention lets every tile
  token see the thumbnail): with ``document_tokens="all"`` they are stored and scored among the
  prompt's tokens, with ``"visual"`` not at all. Pass ``keep_global_image=True`` to count them
  as visual tokens, in which case no exact grid exists and ``grid`` is ``None`` (only the
  ``global``, ``hier`` and ``muvera`` pooled views are then available). A page that fits in one
  tile has no thumbnail: its k x k tokens are the grid.

Every token vector is L2-normalised by the model itself; MaxSim scoring lives in
:mod:`mmrag.scoring`. The loading, batching and mask/grid bookkeeping shared by the three families
live in :mod:`mmrag.embedders.colvision`; this module holds each family's recipe and grid layout,
and each family's facts (name, ``model_type``, catalogue) are in its spec in
:mod:`mmrag.embedders.families`.

Queries are text or an image, not both: ColPali-family models were trained on text queries
against page images; an image query is embedded exactly like a document page (same prompt, mask
and grid).

Sources of the recipes:

* ColPali — https://huggingface.co/vidore/colpali-v1.3-hf and transformers'
  ``models/colpali/processing_colpali.py``
  (https://github.com/huggingface/transformers/blob/main/src/transformers/models/colpali/processing_colpali.py);
  Faysse et al., "ColPali: Efficient Document Retrieval with Vision Language Models",
  arXiv:2407.01449.
* ColQwen2 — https://huggingface.co/vidore/colqwen2-v1.0-hf and transformers'
  ``models/colqwen2/processing_colqwen2.py``; the image budget (at most 768 merged 28 x 28
  patches, at least 4) is colpali-engine's ``ColQwen2Processor``
  (https://github.com/illuin-tech/colpali/blob/main/colpali_engine/models/qwen2/colqwen2/processing_colqwen2.py)
  and the model card of https://huggingface.co/vidore/colqwen2-v1.0.
* ColModernVBert — https://huggingface.co/ModernVBERT/colmodernvbert-merged (the
  transformers-native weights of ModernVBERT/colmodernvbert) and transformers'
  ``models/colmodernvbert/processing_colmodernvbert.py``; Teiletche et al., "ModernVBERT:
  Towards Smaller Visual Document Retrievers", arXiv:2510.01149.

Example:
    >>> from mmrag.embedders.colpali import ColQwen2Embedder
    >>> embedder = ColQwen2Embedder("vidore/colqwen2-v1.0-hf")   # cheap: nothing loads yet
    >>> embedder.kind, embedder.family, embedder.is_loaded
    ('multi', 'colqwen2', False)
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any, ClassVar

import numpy as np

from mmrag.embedders.colvision import ColVisionEmbedder
from mmrag.embedders.families.colmodernvbert import COLMODERNVBERT
from mmrag.embedders.families.colpali import COLPALI
from mmrag.embedders.families.colqwen2 import COLQWEN2
from mmrag.errors import ConfigError

__all__ = ["ColModernVBertEmbedder", "ColPaliEmbedder", "ColQwen2Embedder"]

logger = logging.getLogger(__name__)

#: The tokens that open a ColModernVBert image tile (``<row_2_col_3>``).
_TILE_TAG = re.compile(r"^<row_(\d+)_col_(\d+)>$")


def _runs(positions: np.ndarray) -> list[np.ndarray]:
    """Split sorted token positions into runs of consecutive positions."""
    if positions.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    return np.split(positions, breaks)


def tiles_to_page_order(tiles: np.ndarray) -> np.ndarray:
    """Row-major page order of tile tokens: ``(R, C, k, k)`` → ``(R·k · C·k,)``.

    ``tiles[r, c, y, x]`` is whatever belongs to token ``(y, x)`` of tile ``(r, c)``; the result
    lists them by page row ``r·k + y``, then page column ``c·k + x``.

    Example:
        >>> import numpy as np
        >>> tiles = np.arange(8).reshape(1, 2, 2, 2)   # two 2x2 tiles side by side
        >>> tiles_to_page_order(tiles).tolist()
        [0, 1, 4, 5, 2, 3, 6, 7]
    """
    _rows, _cols, k, k2 = tiles.shape
    if k != k2:
        raise ValueError(f"tiles must be square blocks of tokens, got {k}x{k2}")
    return tiles.transpose(0, 2, 1, 3).reshape(-1)  # (R, k, C, k) → row-major page


class ColPaliEmbedder(ColVisionEmbedder):
    """ColPali (PaliGemma): 1,024 patch vectors per page on a 32 x 32 grid.

    Pages are resized to the processor's square (448 x 448 for ``vidore/colpali-v1.3-hf``);
    prompts and the query augmentation come from ``ColPaliProcessor`` (see the module docstring
    for the strings and their sources).

    Example:
        >>> from mmrag.embedders.colpali import ColPaliEmbedder
        >>> commit = "0" * 40        # pinned; without it, main's commit from the cache or Hub
        >>> embedder = ColPaliEmbedder("vidore/colpali-v1.3-hf", revision=commit, batch_size=4)
        >>> embedder.id.startswith(f"colpali:vidore/colpali-v1.3-hf@{commit}#")  # + its settings
        True
        >>> # embedder.embed_documents(items)[0].grid  -> (32, 32)
    """

    spec = COLPALI
    model_class = "ColPaliForRetrieval"

    def _visual_layout(
        self, tokens: np.ndarray, inputs: Any, index: int
    ) -> tuple[np.ndarray, tuple[int, int] | None]:
        positions = self._image_positions(tokens)
        vision = self._model.config.vlm_config.vision_config
        side = int(vision.image_size) // int(vision.patch_size)  # SigLIP patches per side
        if side * side != positions.size:
            raise RuntimeError(
                f"{self.model}: {positions.size} image tokens do not form the {side}x{side} patch "
                "grid of the vision tower; the processor's image_seq_length does not match it"
            )
        return positions, (side, side)


class ColQwen2Embedder(ColVisionEmbedder):
    """ColQwen2 (Qwen2-VL): dynamic-resolution pages, one vector per merged 28 x 28 patch.

    The image budget is colpali-engine's recipe for ColQwen2 v1.0: at most 768 merged patches
    (``max_pixels = 768·28·28``) and at least 4 (``min_pixels = 4·28·28``). Pass other values to
    trade quality for memory, or ``None`` to keep the checkpoint processor's own value; both enter
    :attr:`id`, since they change the vectors.

    Example:
        >>> from mmrag.embedders.colpali import ColQwen2Embedder
        >>> embedder = ColQwen2Embedder("vidore/colqwen2-v1.0-hf", max_pixels=512 * 28 * 28)
        >>> embedder.id_settings()
        {'document_tokens': 'all', 'max_pixels': 401408, 'min_pixels': 3136}
    """

    spec = COLQWEN2
    model_class = "ColQwen2ForRetrieval"

    #: colpali-engine ColQwen2Processor: ``num_image_tokens=768`` → ``max_pixels``; ``4·28·28``.
    DEFAULT_MAX_PIXELS: ClassVar[int] = 768 * 28 * 28
    DEFAULT_MIN_PIXELS: ClassVar[int] = 4 * 28 * 28

    def __init__(
        self,
        model: str,
        *,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        min_pixels: int | None = DEFAULT_MIN_PIXELS,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        for name, value in (("max_pixels", max_pixels), ("min_pixels", min_pixels)):
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be a positive number of pixels, got {value}")
        if max_pixels is not None and min_pixels is not None and min_pixels > max_pixels:
            raise ConfigError(
                f"min_pixels ({min_pixels}) is larger than max_pixels ({max_pixels}); lower "
                "min_pixels or raise max_pixels"
            )
        self.max_pixels = max_pixels
        self.min_pixels = min_pixels

    def init_parameters(self) -> dict[str, Any]:
        """The constructor arguments, including the image budget."""
        return {
            **super().init_parameters(),
            "max_pixels": self.max_pixels,
            "min_pixels": self.min_pixels,
        }

    def id_settings(self) -> dict[str, Any]:
        """The image budget changes the number (and values) of the page vectors."""
        return {
            **super().id_settings(),
            "max_pixels": self.max_pixels,
            "min_pixels": self.min_pixels,
        }

    def _configure_processor(self, processor: Any) -> None:
        image_processor = processor.image_processor
        size = {
            "shortest_edge": image_processor.size["shortest_edge"],
            "longest_edge": image_processor.size["longest_edge"],
        }
        if self.min_pixels is not None:
            size["shortest_edge"] = self.min_pixels
        if self.max_pixels is not None:
            size["longest_edge"] = self.max_pixels
        image_processor.size = size
        logger.debug("%s: image budget %s pixels", self.model, size)

    def _visual_layout(
        self, tokens: np.ndarray, inputs: Any, index: int
    ) -> tuple[np.ndarray, tuple[int, int] | None]:
        positions = self._image_positions(tokens)
        t, h, w = (int(v) for v in inputs["image_grid_thw"][index])  # patches (time, rows, cols)
        merge = int(self._processor.image_processor.merge_size)  # merge x merge patches → 1 token
        rows, cols = h // merge, w // merge
        if t != 1 or rows * cols != positions.size:
            raise RuntimeError(
                f"{self.model}: image_grid_thw {(t, h, w)} with merge size {merge} does not match "
                f"the {positions.size} image tokens of the prompt"
            )
        return positions, (rows, cols)


class ColModernVBertEmbedder(ColVisionEmbedder):
    """ColModernVBert (ModernBERT + SigLIP, 250M parameters): fast late interaction on CPU.

    Pages are resized to a longest edge of 2,048 px and split into 512 px tiles of 8 x 8 tokens
    plus a global thumbnail (the processor's Idefics3-style recipe). ``grid`` covers the page:
    ``(rows·8, cols·8)`` for ``rows x cols`` tiles; the thumbnail's tokens are off the grid
    (stored among the prompt's tokens with ``document_tokens="all"``, not at all with
    ``"visual"``) unless ``keep_global_image=True`` (then ``grid`` is ``None``). See the module
    docstring.

    Example:
        >>> from mmrag.embedders.colpali import ColModernVBertEmbedder
        >>> embedder = ColModernVBertEmbedder("ModernVBERT/colmodernvbert-merged", device="cpu")
        >>> embedder.keep_global_image
        False
    """

    spec = COLMODERNVBERT
    model_class = "ColModernVBertForRetrieval"

    def __init__(self, model: str, *, keep_global_image: bool = False, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.keep_global_image = keep_global_image

    def init_parameters(self) -> dict[str, Any]:
        """The constructor arguments, including ``keep_global_image``."""
        return {**super().init_parameters(), "keep_global_image": self.keep_global_image}

    def id_settings(self) -> dict[str, Any]:
        """Keeping the thumbnail's vectors changes what is stored."""
        kept = {"keep_global_image": True} if self.keep_global_image else {}
        return {**super().id_settings(), **kept}

    def _wrong_checkpoint_hint(self, found: str | None) -> str:
        if found == "modernvbert":
            return (
                " This is the colpali-engine release; its transformers-native weights are "
                "'ModernVBERT/colmodernvbert-merged'."
            )
        return super()._wrong_checkpoint_hint(found)

    def _tile_of(self, token_id: int) -> tuple[int, int] | None:
        token = self._processor.tokenizer.convert_ids_to_tokens(int(token_id))
        match = _TILE_TAG.match(token or "")
        return (int(match.group(1)), int(match.group(2))) if match else None

    def _visual_layout(
        self, tokens: np.ndarray, inputs: Any, index: int
    ) -> tuple[np.ndarray, tuple[int, int] | None]:
        positions = self._image_positions(tokens)
        per_tile = int(self._processor.image_seq_len)
        k = math.isqrt(per_tile)
        runs = _runs(positions)
        if k * k != per_tile or any(run.size != per_tile for run in runs):
            raise RuntimeError(
                f"{self.model}: image tokens come in runs of {[r.size for r in runs]}, not the "
                f"{per_tile} (a square) per tile that the processor declares"
            )
        if len(runs) == 1:  # the page fits in one tile: no thumbnail, its k x k tokens are the page
            return positions, (k, k)
        *tiles, _thumbnail = runs
        where = [self._tile_of(tokens[run[0] - 1]) for run in tiles]  # the tag before each tile
        if any(w is None for w in where):
            raise RuntimeError(f"{self.model}: cannot read the tile layout of the prompt")
        n_rows, n_cols = where[-1]  # type: ignore[misc]
        expected = [(r + 1, c + 1) for r in range(n_rows) for c in range(n_cols)]
        if where != expected:
            raise RuntimeError(f"{self.model}: tiles {where} are not a row-major {n_rows}x{n_cols}")
        if self.keep_global_image:
            return positions, None
        per_tile_grid = np.stack(tiles).reshape(n_rows, n_cols, k, k)  # (R, C, k, k) positions
        return tiles_to_page_order(per_tile_grid), (n_rows * k, n_cols * k)
