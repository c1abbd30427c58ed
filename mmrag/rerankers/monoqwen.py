"""MonoQwen2-VL: a pointwise True/False reranker on Qwen2-VL.

``lightonai/MonoQwen2-VL-v0.1`` is a LoRA adapter on Qwen2-VL-2B-Instruct trained with the MonoT5
objective. The page image and the model card's prompt "Assert the relevance of the previous image
document to the following query, answer True or False. The query is: {query}" go through the
Qwen2-VL chat template with the generation prompt; the score is the softmax over the ``True`` /
``False`` logits at the last position, i.e. the probability of "True". Batching, the image budget
and the hit bookkeeping are :class:`~mmrag.rerankers.mllm.ImageReranker`'s.

Source: https://huggingface.co/lightonai/MonoQwen2-VL-v0.1 (model card: prompt, token scoring).

Example:
    >>> from mmrag.rerankers.monoqwen import MonoQwenReranker, monoqwen_prompt
    >>> monoqwen_prompt("What is ColPali?")
    'Assert the relevance of the previous image document to the following query, answer True or False. The query is: What is ColPali?'
    >>> MonoQwenReranker(top_n=3).stage
    'monoqwen'
"""  # noqa: E501

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mmrag.errors import ConfigError
from mmrag.rerankers.mllm import ImageReranker

if TYPE_CHECKING:
    from PIL import Image

    from mmrag.embedders.base import Query

__all__ = ["MONOQWEN_PROMPT", "MonoQwenReranker", "monoqwen_prompt"]

logger = logging.getLogger(__name__)

#: The MonoQwen2-VL model card's prompt, verbatim.
MONOQWEN_PROMPT = (
    "Assert the relevance of the previous image document to the following query, "
    "answer True or False. The query is: {query}"
)


def monoqwen_prompt(query: str) -> str:
    """The MonoQwen2-VL user prompt for ``query`` (after the image in the chat turn)."""
    return MONOQWEN_PROMPT.format(query=query)


class MonoQwenReranker(ImageReranker):
    """Pointwise MLLM reranker: P("True") of a Qwen2-VL judging page image vs. query.

    ``model`` is the adapter (default ``lightonai/MonoQwen2-VL-v0.1``) or a merged checkpoint;
    ``base_model`` overrides the adapter config's base (Qwen2-VL-2B-Instruct); ``processor``
    defaults to the base model's, as on the model card.

    Example:
        >>> from mmrag.rerankers.monoqwen import MonoQwenReranker
        >>> reranker = MonoQwenReranker(batch_size=8, top_n=5)      # cheap: nothing loads yet
        >>> reranker.to_dict()["init_parameters"]["model"]
        'lightonai/MonoQwen2-VL-v0.1'
    """

    type_name = "monoqwen"
    stage = "monoqwen"
    #: None: the processor's own image budget, as on the model card (no cap). A cap such as
    #: colpali-engine's 768 merged patches (602,112 px) is a speed setting (``max_pixels=``): on a
    #: test page it moved P("True") from 0.46 to 0.05.
    default_max_pixels = None

    def __init__(
        self,
        model: str = "lightonai/MonoQwen2-VL-v0.1",
        *,
        base_model: str | None = None,
        processor: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        self.base_model = base_model
        self.processor = processor

    def init_parameters(self) -> dict[str, Any]:
        return {
            **super().init_parameters(),
            "base_model": self.base_model,
            "processor": self.processor,
        }

    def _load(self) -> None:
        from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

        from mmrag.embedders._lora import find_adapter, load_merged_adapter

        kwargs = self._hub_kwargs()
        load = {"dtype": self._torch_dtype(), **kwargs}
        adapter = find_adapter(
            self.model, revision=self.revision, local_files_only=self.local_files_only
        )
        if adapter is None:
            model = Qwen2VLForConditionalGeneration.from_pretrained(
                self.model, **load, **self._revision(self.revision)
            )
            base = self.model
        else:
            base = self.base_model or adapter.read_config().get("base_model_name_or_path")
            if not base:
                raise ConfigError(
                    f"{self.model!r} is a LoRA adapter without a base model: pass "
                    "base_model='Qwen/Qwen2-VL-2B-Instruct'"
                )
            logger.info("loading base model %s for adapter %s", base, self.model)
            model = load_merged_adapter(
                Qwen2VLForConditionalGeneration.from_pretrained(base, **load),
                adapter,
                source=self.model,
            )
        self._model = model.to(self.resolved_device).eval()
        self._processor = AutoProcessor.from_pretrained(self.processor or base, **kwargs)
        self._processor.tokenizer.padding_side = "left"
        tokenizer = self._processor.tokenizer
        self._true_id, self._false_id = (
            tokenizer.convert_tokens_to_ids(token) for token in ("True", "False")
        )
        unknown = tokenizer.unk_token_id
        if None in (self._true_id, self._false_id) or unknown in (self._true_id, self._false_id):
            raise ConfigError(f"{base!r}: 'True' / 'False' are not single tokens of its tokenizer")

    @staticmethod
    def _revision(revision: str | None) -> dict[str, Any]:
        return {} if revision is None else {"revision": revision}

    def chat_text(self, query: str) -> str:
        """The full chat-template text of one (image, query) pair, generation prompt included."""
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "image"},
                    {"type": "text", "text": monoqwen_prompt(query)},
                ],
            }
        ]
        return self._processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )

    def _score(self, query: Query, images: Sequence[Image.Image]) -> list[float]:
        assert query.text is not None
        text = self.chat_text(query.text)
        batch = self._processor(
            text=[text] * len(images),
            images=list(images),
            padding=True,
            return_tensors="pt",
            **self._processor_kwargs(),
        )
        logits = self._model(**self._to_device(batch)).logits[:, -1, :]  # (batch, vocab)
        pair = logits[:, [self._true_id, self._false_id]].float()  # (batch, 2)
        return pair.softmax(dim=-1)[:, 0].cpu().tolist()
