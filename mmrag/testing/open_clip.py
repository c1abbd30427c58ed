"""Tiny OpenCLIP model (``open_clip``) saved in open_clip's hub/local-dir layout.

Stands in for ``ViT-B-32`` / ``laion2b_s34b_b79k``
(``hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K``).
The directory holds ``open_clip_config.json`` (``{"model_cfg", "preprocess_cfg"}``) and
``open_clip_model.safetensors``, the layout of open_clip repositories on the Hugging Face Hub,
and loads with ``open_clip.create_model_and_transforms("local-dir:" + path)`` and
``open_clip.get_tokenizer("local-dir:" + path)``: the code path ``hf-hub:`` ids take, minus the
download. The tokenizer is open_clip's bundled ``SimpleTokenizer`` (offline), so the text tower
keeps the real vocabulary size (49408) and context length (77).

Example:
    >>> tiny = make_open_clip()
    >>> tiny.config["model_cfg"]["embed_dim"]
    32
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmrag.testing.bundle import TinyModel, seeded

#: File names open_clip looks for in a hub repository or a ``local-dir:`` folder.
CONFIG_NAME = "open_clip_config.json"
WEIGHTS_NAME = "open_clip_model.safetensors"

#: A ViT-B-32-shaped CLIP at width 32: 32x32 images of 16-pixel patches, 2+2 layers.
TINY_MODEL_CFG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}

#: Preprocessing of the LAION ViT-B-32 checkpoints (OpenAI CLIP mean/std, bicubic, shortest).
TINY_PREPROCESS_CFG: dict[str, Any] = {
    "mean": [0.48145466, 0.4578275, 0.40821073],
    "std": [0.26862954, 0.26130258, 0.27577711],
    "interpolation": "bicubic",
    "resize_mode": "shortest",
}


@dataclass
class OpenClipTinyModel(TinyModel):
    """A tiny ``open_clip.CLIP``: ``processor`` is its tokenizer, ``preprocess`` its transform.

    Example:
        >>> import tempfile
        >>> tiny = make_open_clip()
        >>> sorted(p.name for p in tiny.save(tempfile.mkdtemp()).iterdir())
        ['open_clip_config.json', 'open_clip_model.safetensors']
    """

    preprocess: Callable[[Any], Any]
    config: dict[str, Any]

    def save(self, model_dir: Path) -> Path:
        """Write ``open_clip_config.json`` and ``open_clip_model.safetensors`` to ``model_dir``."""
        from safetensors.torch import save_file

        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.config, indent=2) + "\n"
        (model_dir / CONFIG_NAME).write_text(text, encoding="utf-8")
        state = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, model_dir / WEIGHTS_NAME)
        return model_dir


def make_open_clip(seed: int = 0) -> OpenClipTinyModel:
    """Build a tiny ``open_clip.CLIP`` with its eval transform and ``SimpleTokenizer``.

    Example:
        >>> tiny = make_open_clip()
        >>> tuple(tiny.processor(["a cat"]).shape)
        (1, 77)
    """
    import open_clip
    from open_clip.transform import PreprocessCfg, image_transform_v2

    with seeded(seed):
        model = open_clip.CLIP(**TINY_MODEL_CFG).eval()
    image_size = TINY_MODEL_CFG["vision_cfg"]["image_size"]
    preprocess = image_transform_v2(
        PreprocessCfg(size=image_size, **TINY_PREPROCESS_CFG), is_train=False
    )
    tokenizer = open_clip.SimpleTokenizer(
        context_length=TINY_MODEL_CFG["text_cfg"]["context_length"]
    )
    config = {"model_cfg": TINY_MODEL_CFG, "preprocess_cfg": TINY_PREPROCESS_CFG}
    return OpenClipTinyModel(model=model, processor=tokenizer, preprocess=preprocess, config=config)
