"""CLIP-style single-vector embedder on open_clip: the image tower for pages, the text tower for
queries.

The recipe is open_clip's own (https://github.com/mlfoundations/open_clip, README "Usage";
``open_clip.create_model_from_pretrained`` and ``open_clip.get_tokenizer``): the checkpoint's eval
transform (resize, centre crop, mean/std from its ``preprocess_cfg``) for images, its tokenizer
(context length from the model config) for text, ``encode_image`` / ``encode_text`` with
``normalize=True``. No prompt template is added to queries: the text is embedded as given (the
"a photo of a {}" templates of the CLIP paper are for zero-shot classification, not retrieval).

Model names:

* ``ARCH/PRETRAINED`` — an open_clip architecture and pretrained tag, e.g.
  ``ViT-B-32/laion2b_s34b_b79k`` (``create_model_from_pretrained("ViT-B-32",
  pretrained="laion2b_s34b_b79k")``; https://huggingface.co/laion/CLIP-ViT-B-32-laion2B-s34B-b79K).
* ``hf-hub:org/name`` — an open_clip repository on the Hugging Face Hub (``revision`` pins it;
  without one, the commit of ``main`` is resolved once and the weights load from that commit).
* a local folder holding ``open_clip_config.json`` and the weights (loaded as
  ``local-dir:PATH``, the same code path as ``hf-hub:`` ids).

The id names the weights: ``clip:ARCH/PRETRAINED`` for a pretrained tag (fixed weights),
``clip:hf-hub:org/name@<commit>`` for a Hub repository and ``clip:local@<hash>`` for a local
folder (its content, not its path; see :mod:`mmrag.embedders.identity`).

A query with text *and* an image is embedded as the L2-normalised sum of the two normalised tower
outputs — the common "sum of modalities" composed-query baseline (e.g. the CLIP baselines of
Baldrati et al., "Effective Conditioned and Composed Image Retrieval Combining CLIP-Based
Features", CVPR 2022). It lies between the text and image embeddings on the unit sphere.

Example:
    >>> from mmrag.embedders.clip import ClipEmbedder
    >>> embedder = ClipEmbedder("ViT-B-32/laion2b_s34b_b79k")   # cheap: nothing loads yet
    >>> embedder.kind, embedder.dim, embedder.id
    ('single', 512, 'clip:ViT-B-32/laion2b_s34b_b79k')
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.embedders.base import ModelEmbedder, Query
from mmrag.embedders.families.clip import CLIP
from mmrag.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from mmrag.types import Embedding

__all__ = ["ClipEmbedder", "open_clip_name"]

logger = logging.getLogger(__name__)

_HF_HUB = "hf-hub:"
_LOCAL_DIR = "local-dir:"
#: File open_clip looks for in a hub repository or local folder.
_CONFIG_NAME = "open_clip_config.json"
#: The files of an open_clip repository worth downloading for a pinned revision.
_REPO_FILES = [
    _CONFIG_NAME,
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.bin",
    "tokenizer*",
    "vocab*",
    "merges.txt",
    "special_tokens_map.json",
    "spiece.model",
]
#: mmrag dtype → open_clip ``precision``.
_PRECISION = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def open_clip_name(model: str) -> tuple[str, str | None]:
    """``(model_name, pretrained)`` for open_clip's factory, from an mmrag model name.

    Example:
        >>> open_clip_name("ViT-B-32/laion2b_s34b_b79k")
        ('ViT-B-32', 'laion2b_s34b_b79k')
        >>> open_clip_name("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
        ('hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K', None)
    """
    if model.startswith((_HF_HUB, _LOCAL_DIR)):
        return model, None
    if (Path(model) / _CONFIG_NAME).is_file():
        return _LOCAL_DIR + str(Path(model)), None
    arch, sep, pretrained = model.partition("/")
    if not sep or not arch or not pretrained:
        raise ConfigError(
            f"{model!r} is not an open_clip model name: use ARCH/PRETRAINED (e.g. "
            "'ViT-B-32/laion2b_s34b_b79k'; see open_clip.list_pretrained()), 'hf-hub:org/name', "
            f"or a local folder with {_CONFIG_NAME}"
        )
    return arch, pretrained


def _check_pretrained(arch: str, pretrained: str, model: str) -> None:
    """Name the fix when ``ARCH/PRETRAINED`` is not a pair open_clip knows."""
    import open_clip

    if arch not in open_clip.list_models():
        raise ConfigError(
            f"{model!r}: {arch!r} is not an open_clip architecture (see open_clip.list_models()); "
            f"for an open_clip repository on the Hugging Face Hub use 'hf-hub:{model}'"
        )
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if pretrained not in tags and not Path(pretrained).is_file():
        raise ConfigError(
            f"{model!r}: open_clip has no pretrained weights {pretrained!r} for {arch!r}; "
            f"available: {', '.join(tags) or 'none'}"
        )


class ClipEmbedder(ModelEmbedder):
    """open_clip CLIP: one L2-normalised vector per page (image tower) or query (text tower).

    ``trust_remote_code`` has no meaning for open_clip checkpoints (they are config + weights)
    and is ignored. ``revision`` applies to ``hf-hub:`` ids only.

    Example:
        >>> from mmrag.embedders.clip import ClipEmbedder
        >>> ClipEmbedder("ViT-L-14/laion2b_s32b_b82k").dim
        768
    """

    spec = CLIP

    _model: Any
    _preprocess: Any
    _tokenizer: Any

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 32,
        trust_remote_code: bool = False,
        local_files_only: bool | None = None,
    ) -> None:
        super().__init__(
            model,
            revision=revision,
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            trust_remote_code=trust_remote_code,
            local_files_only=local_files_only,
        )
        open_clip_name(model)  # validate the name early (no I/O beyond a stat)
        if revision is not None and not model.startswith(_HF_HUB):
            raise ConfigError(
                f"revision={revision!r} applies only to 'hf-hub:' open_clip ids; {model!r} is an "
                "open_clip pretrained tag or a local folder, which name fixed weights"
            )
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        """The shared embedding dimension of the two towers (``embed_dim``)."""
        if self._dim is None:
            from mmrag.embedders.catalogue import _BY_NAME

            if self.model in _BY_NAME and not self._loaded:
                return _BY_NAME[self.model].dim
            self.load()
        assert self._dim is not None
        return self._dim

    # -- identity ---------------------------------------------------------------------------------

    def _compute_fingerprint(self) -> str:
        """``ARCH/PRETRAINED`` as is (fixed weights; a weights file by content),
        ``hf-hub:org/name@<commit>``, or ``local@<hash>`` for a local folder."""
        from mmrag.embedders.identity import folder_fingerprint, resolve_hub_commit

        name, pretrained = open_clip_name(self.model)
        if name.startswith(_HF_HUB):
            repo = name[len(_HF_HUB) :]
            commit = resolve_hub_commit(repo, self.revision, local_files_only=self.local_files_only)
            return f"{_HF_HUB}{repo}@{commit}"
        if name.startswith(_LOCAL_DIR):
            return folder_fingerprint(name[len(_LOCAL_DIR) :])
        if pretrained is not None and Path(pretrained).expanduser().is_file():
            return f"{name}/{folder_fingerprint(pretrained)}"
        return self.model

    # -- loading ----------------------------------------------------------------------------------

    def _resolve_name(self) -> tuple[str, str | None]:
        from mmrag.embedders.identity import commit_of

        name, pretrained = open_clip_name(self.model)
        if name.startswith(_HF_HUB):  # load the commit the id names: fetch that snapshot
            from huggingface_hub import snapshot_download

            folder = snapshot_download(
                name[len(_HF_HUB) :],
                revision=commit_of(self.model_fingerprint()),
                allow_patterns=_REPO_FILES,
                local_files_only=bool(self.local_files_only),
            )
            name = _LOCAL_DIR + folder
        return name, pretrained

    def _load(self) -> None:
        import open_clip
        import torch

        name, pretrained = self._resolve_name()
        if pretrained is not None:
            _check_pretrained(name, pretrained, self.model)
        model, preprocess = open_clip.create_model_from_pretrained(
            name,
            pretrained=pretrained,
            precision=_PRECISION[self.resolved_dtype],
            device=self.resolved_device,
        )
        self._model = model.eval()
        self._preprocess = preprocess
        self._tokenizer = open_clip.get_tokenizer(name)
        output_dim = getattr(model.visual, "output_dim", None)
        if output_dim is None:  # towers without the attribute: measure it
            with torch.inference_mode():
                output_dim = model.encode_text(self._tokenize([""])).shape[-1]
        self._dim = int(output_dim)
        logger.info(
            "loaded open_clip %s (pretrained=%s) on %s as %s",
            name,
            pretrained,
            self.resolved_device,
            self.resolved_dtype,
        )

    # -- embedding --------------------------------------------------------------------------------

    def _tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        return self._tokenizer(list(texts)).to(self.resolved_device)

    def _image_features(self, images: Sequence[Image.Image]) -> torch.Tensor:
        import torch

        pixels = torch.stack([self._preprocess(image.convert("RGB")) for image in images])
        pixels = pixels.to(self.resolved_device, self._torch_dtype())
        return self._model.encode_image(pixels, normalize=True).float()  # (batch, dim)

    def _text_features(self, texts: Sequence[str]) -> torch.Tensor:
        return self._model.encode_text(self._tokenize(texts), normalize=True).float()

    @staticmethod
    def _to_embeddings(vectors: torch.Tensor) -> list[Embedding]:
        import numpy as np

        from mmrag.types import Embedding

        array = vectors.cpu().numpy()
        return [Embedding(dense=np.ascontiguousarray(v, dtype=np.float32)) for v in array]

    def _embed_images(self, images: Sequence[Image.Image]) -> list[Embedding]:
        return self._to_embeddings(self._image_features(images))

    def _embed_queries(self, queries: Sequence[Query]) -> list[Embedding]:
        import torch
        import torch.nn.functional as F

        out = torch.zeros(len(queries), self.dim, device=self.resolved_device)
        with_text = [i for i, q in enumerate(queries) if q.text is not None]
        with_image = [i for i, q in enumerate(queries) if q.image is not None]
        if with_text:
            out[with_text] += self._text_features([queries[i].text or "" for i in with_text])
        if with_image:
            images = [queries[i].image for i in with_image]
            out[with_image] += self._image_features([im for im in images if im is not None])
        # text + image: normalised sum of the two unit vectors; one modality: unchanged.
        return self._to_embeddings(F.normalize(out, dim=-1))
