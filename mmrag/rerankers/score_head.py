"""A VLM with a scoring head: jina-reranker-m0 on Qwen2-VL.

The backbone's last hidden state at an appended score token (id 100) goes through a two-layer MLP
(``score.0`` → ReLU → ``score.2``); the score is ``sigmoid(logit - 2.65)``. The prompt is
``"**Document**:\\n<image>\\n**Query**:\\n{query}"``. The head is run natively (backbone through
transformers, head weights read from the checkpoint); ``trust_remote_code=True`` runs the model's
own ``compute_score`` instead, only when the user opts in. Batching, the image budget and the hit
bookkeeping are :class:`~mmrag.rerankers.mllm.ImageReranker`'s.

Sources: https://huggingface.co/jinaai/jina-reranker-m0 (``modeling.py``: prompt, score token,
head, logit bias; vLLM's ``JinaVLForSequenceClassification`` is the same head).

Example:
    >>> from mmrag.rerankers.score_head import JINA_LOGIT_BIAS, ScoreHeadReranker
    >>> JINA_LOGIT_BIAS, ScoreHeadReranker(top_n=3).stage
    (2.65, 'score_head')
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mmrag.errors import ConfigError
from mmrag.rerankers.mllm import ImageReranker

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from mmrag.embedders.base import Query

__all__ = ["JINA_LOGIT_BIAS", "JINA_SCORE_TOKEN_ID", "ScoreHeadReranker", "jina_prompt"]

logger = logging.getLogger(__name__)

#: jina-reranker-m0's score token and the bias subtracted before the sigmoid (``modeling.py``).
JINA_SCORE_TOKEN_ID = 100
JINA_LOGIT_BIAS = 2.65
_VISION = "<|vision_start|><|image_pad|><|vision_end|>"


def jina_prompt(query: str | None, *, image_query: bool = False) -> str:
    """jina-reranker-m0's prompt for an image document and a text (or image) query.

    Example:
        >>> print(jina_prompt("slm markdown"))
        **Document**:
        <|vision_start|><|image_pad|><|vision_end|>
        **Query**:
        slm markdown
    """
    query_part = _VISION if image_query else (query or "")
    return f"**Document**:\n{_VISION}\n**Query**:\n{query_part}"


class ScoreHeadReranker(ImageReranker):
    """A VLM with a scoring head (jina-reranker-m0): ``sigmoid(head(h_last) - 2.65)``.

    Runs natively by default: the Qwen2-VL backbone through transformers and the head's weights
    (``score.0`` / ``score.2``) read from the checkpoint, so no remote code runs.
    ``trust_remote_code=True`` uses the checkpoint's own ``compute_score`` instead.

    Example:
        >>> from mmrag.rerankers.score_head import ScoreHeadReranker
        >>> ScoreHeadReranker(top_n=5).to_dict()["init_parameters"]["model"]
        'jinaai/jina-reranker-m0'
    """

    type_name = "score_head"
    stage = "score_head"
    #: jina-reranker-m0's own processor setting.
    default_max_pixels = 602112

    def __init__(
        self,
        model: str = "jinaai/jina-reranker-m0",
        *,
        score_token_id: int = JINA_SCORE_TOKEN_ID,
        logit_bias: float = JINA_LOGIT_BIAS,
        max_length: int = 2048,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        self.score_token_id = score_token_id
        self.logit_bias = logit_bias
        self.max_length = max_length

    def init_parameters(self) -> dict[str, Any]:
        return {
            **super().init_parameters(),
            "score_token_id": self.score_token_id,
            "logit_bias": self.logit_bias,
            "max_length": self.max_length,
        }

    def _check_query(self, query: Query) -> None:
        if not query.text and query.image is None:
            raise ConfigError("the score_head reranker needs a text or image query")
        if query.text and query.image is not None:
            raise ConfigError("the score_head reranker takes a text or an image query, not both")

    def _load(self) -> None:
        from transformers import AutoProcessor

        kwargs = self._hub_kwargs(self.revision)
        if self.trust_remote_code:
            from transformers import AutoModel

            logger.warning("running %s with its own remote code (trust_remote_code)", self.model)
            self._model = AutoModel.from_pretrained(self.model, dtype=self._torch_dtype(), **kwargs)
            self._model = self._model.to(self.resolved_device).eval()
            return
        from transformers import Qwen2VLForConditionalGeneration
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the score.* tensors are "unexpected" to the backbone
        try:
            model, info = Qwen2VLForConditionalGeneration.from_pretrained(
                self.model, dtype=self._torch_dtype(), output_loading_info=True, **kwargs
            )
        finally:
            hf_logging.set_verbosity(verbosity)
        unexpected = [k for k in info.get("unexpected_keys") or [] if not k.startswith("score.")]
        if unexpected:
            raise ConfigError(
                f"{self.model!r}: {len(unexpected)} tensors do not fit a Qwen2-VL backbone "
                f"(e.g. {unexpected[0]!r}); is it a jina-reranker-m0-style checkpoint?"
            )
        missing = [k for k in info.get("missing_keys") or [] if not k.startswith("lm_head")]
        if missing:
            raise ConfigError(
                f"{self.model!r}: {len(missing)} Qwen2-VL weights are missing from the "
                f"checkpoint (e.g. {missing[0]!r}); it would run with random weights"
            )
        self._backbone = model.model.to(self.resolved_device).eval()
        self._head = self._load_head(model.config).to(self.resolved_device).eval()
        self._processor = AutoProcessor.from_pretrained(self.model, **kwargs)
        self._processor.tokenizer.padding_side = "left"

    def _load_head(self, config: Any) -> torch.nn.Module:
        """The two-layer head, with the checkpoint's ``score.0.*`` / ``score.2.*`` tensors."""
        import torch

        hidden = config.get_text_config().hidden_size
        head = torch.nn.Sequential(
            torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )
        tensors = _read_prefixed(self.model, "score.", self._hub_kwargs(self.revision))
        aliases = {"dense.": "0.", "out_proj.": "2."}  # vLLM's names for the same layers
        state = {}
        for key, value in tensors.items():
            for alias, index in aliases.items():
                key = key.replace(alias, index) if key.startswith(alias) else key
            state[key] = value
        try:
            head.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise ConfigError(
                f"{self.model!r} has no usable score head (score.0 / score.2 tensors): {error}"
            ) from error
        return head.to(self._torch_dtype())

    def _score(self, query: Query, images: Sequence[Image.Image]) -> list[float]:
        import torch

        if self.trust_remote_code:
            image_query = query.image is not None
            pairs = [[query.image if image_query else query.text, image] for image in images]
            scores = self._model.compute_score(
                pairs,
                max_length=self.max_length,
                query_type="image" if image_query else "text",
                doc_type="image",
            )
            return [float(s) for s in (scores if isinstance(scores, list) else [scores])]
        image_query = query.image is not None
        prompts = [jina_prompt(query.text, image_query=image_query)] * len(images)
        batch_images: list[Any] = (
            [[image, self._rgb(query.image)] for image in images] if image_query else list(images)
        )
        batch = self._processor(
            text=prompts,
            images=batch_images,
            padding=True,
            truncation=True,
            max_length=self.max_length - 1,
            return_tensors="pt",
            **self._processor_kwargs(),
        )
        # Append the score token to every row (padding is on the left, so it is last in each).
        shape = tuple(batch["input_ids"].shape)  # (batch, tokens)
        for key, value in list(batch.items()):
            if not hasattr(value, "shape") or tuple(value.shape) != shape:
                continue
            if key == "input_ids":
                column = torch.full((shape[0], 1), self.score_token_id, dtype=value.dtype)
            elif key == "attention_mask":
                column = torch.ones((shape[0], 1), dtype=value.dtype)
            else:  # token type ids (mm_token_type_ids): the score token is text
                column = torch.zeros((shape[0], 1), dtype=value.dtype)
            batch[key] = torch.cat([value, column], dim=1)
        hidden = self._backbone(**self._to_device(batch)).last_hidden_state  # (b, tokens, h)
        logits = self._head(hidden[:, -1]).squeeze(-1).float()  # (b,)
        return torch.sigmoid(logits - self.logit_bias).cpu().tolist()


def _read_prefixed(model: str, prefix: str, hub_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The tensors of a safetensors checkpoint whose names start with ``prefix`` (prefix cut)."""
    import json
    from pathlib import Path

    from safetensors import safe_open
    from transformers.utils import cached_file

    kwargs = {k: v for k, v in hub_kwargs.items() if k != "trust_remote_code"}
    index = cached_file(
        model, "model.safetensors.index.json", _raise_exceptions_for_missing_entries=False, **kwargs
    )
    if index is not None:
        weight_map = json.loads(Path(index).read_text(encoding="utf-8"))["weight_map"]
        files = sorted({f for name, f in weight_map.items() if name.startswith(prefix)})
    else:
        files = ["model.safetensors"]
    tensors: dict[str, Any] = {}
    for name in files:
        path = cached_file(model, name, **kwargs)
        with safe_open(path, framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                if key.startswith(prefix):
                    tensors[key[len(prefix) :]] = handle.get_tensor(key)
    return tensors
