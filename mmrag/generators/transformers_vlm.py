"""A local vision-language model answers from the retrieved page and frame images.

Any transformers image-text-to-text checkpoint with a chat template works through the same
path (``AutoProcessor`` + ``AutoModelForImageTextToText``); tested on the Qwen2-VL and
Idefics3 / SmolVLM families. The chat messages carry the images inline (``{"type": "image",
"image": <PIL>}``) and the processor's own chat template places each family's image tokens, so
no family-specific prompt code is needed. Greedy decoding by default; ``temperature > 0``
samples. ``on_token`` streams the text as it is generated (transformers' ``TextIteratorStreamer``).

Example:
    >>> from mmrag.generators.transformers_vlm import TransformersGenerator
    >>> gen = TransformersGenerator("HuggingFaceTB/SmolVLM-256M-Instruct", max_new_tokens=128)
    >>> gen.to_dict()["init_parameters"]["max_new_tokens"]
    128
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mmrag.config import DEFAULT_GENERATOR_MODEL
from mmrag.errors import ConfigError
from mmrag.generators.base import PromptSettings, cited_hits, context_parts
from mmrag.hf import HFComponent

if TYPE_CHECKING:
    from mmrag.types import Answer, Hit

__all__ = ["DEFAULT_GENERATOR_MODEL", "TransformersGenerator"]

logger = logging.getLogger(__name__)


class TransformersGenerator(HFComponent):
    """Answer with a local VLM (Qwen2-VL, SmolVLM / Idefics3, …) shown the cited pages.

    Example:
        >>> from mmrag.generators.transformers_vlm import TransformersGenerator
        >>> gen = TransformersGenerator("Qwen/Qwen2-VL-2B-Instruct", max_images=3,
        ...                             temperature=0.2)
        >>> gen.settings.max_images, gen.do_sample
        (3, True)
    """

    type_name = "transformers"

    def __init__(
        self,
        model: str = DEFAULT_GENERATOR_MODEL,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float | None = None,
        repetition_penalty: float | None = None,
        max_images: int = 4,
        image_max_side: int | None = 1024,
        include_text: bool = True,
        max_text_chars: int = 1500,
        system_prompt: str | None = None,
        revision: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        trust_remote_code: bool = False,
        local_files_only: bool | None = None,
    ) -> None:
        super().__init__(
            model,
            revision=revision,
            device=device,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            local_files_only=local_files_only,
        )
        if max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {temperature}")
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.repetition_penalty = repetition_penalty
        self.settings = PromptSettings(
            max_images=max_images,
            image_max_side=image_max_side,
            include_text=include_text,
            max_text_chars=max_text_chars,
            system_prompt=system_prompt,
        )

    @property
    def do_sample(self) -> bool:
        """Whether decoding samples (``temperature > 0``) or is greedy."""
        return self.temperature > 0

    def init_parameters(self) -> dict[str, Any]:
        s = self.settings
        return {
            **super().init_parameters(),
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "repetition_penalty": self.repetition_penalty,
            "max_images": s.max_images,
            "image_max_side": s.image_max_side,
            "include_text": s.include_text,
            "max_text_chars": s.max_text_chars,
            "system_prompt": s.system_prompt,
        }

    def _load(self) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        kwargs = self._hub_kwargs(self.revision)
        self._processor = AutoProcessor.from_pretrained(self.model, **kwargs)
        if getattr(self._processor, "chat_template", None) is None:
            raise ConfigError(
                f"{self.model!r} has no chat template; use an instruction-tuned VLM "
                "(e.g. HuggingFaceTB/SmolVLM-256M-Instruct, Qwen/Qwen2-VL-2B-Instruct)"
            )
        model = AutoModelForImageTextToText.from_pretrained(
            self.model, dtype=self._torch_dtype(), **kwargs
        )
        self._model = model.to(self.resolved_device).eval()
        logger.info("loaded generator %s on %s", self.model, self.resolved_device)

    # -- prompting --------------------------------------------------------------------------------

    def messages(self, question: str, hits: Sequence[Hit]) -> list[dict[str, Any]]:
        """The chat messages for ``question`` over ``hits`` (system turn, then the user turn
        with the numbered sources, their images inline, and the question)."""
        content: list[dict[str, Any]] = []
        for part in context_parts(question, hits, self.settings):
            if part.kind == "image":
                content.append({"type": "image", "image": part.image})
            else:
                content.append({"type": "text", "text": part.text})
        system = {"role": "system", "content": [{"type": "text", "text": self.settings.system}]}
        return [system, {"role": "user", "content": content}]

    def prompt_text(self, question: str, hits: Sequence[Hit]) -> str:
        """The templated prompt as text (image placeholders unexpanded), for inspection."""
        self.load()
        return self._processor.apply_chat_template(
            self.messages(question, hits), add_generation_prompt=True, tokenize=False
        )

    # -- generation -------------------------------------------------------------------------------

    def _generation_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": self.do_sample,
        }
        if self.do_sample:
            kwargs["temperature"] = self.temperature
            if self.top_p is not None:
                kwargs["top_p"] = self.top_p
        if self.repetition_penalty is not None:
            kwargs["repetition_penalty"] = self.repetition_penalty
        return kwargs

    def generate(
        self,
        question: str,
        hits: Sequence[Hit],
        *,
        on_token: Callable[[str], None] | None = None,
    ) -> Answer:
        """Answer ``question`` from the best ``max_images`` hits; stream text to ``on_token``."""
        import torch

        from mmrag.types import Answer

        self.load()
        shown = list(hits[: self.settings.max_images])
        inputs = self._processor.apply_chat_template(
            self.messages(question, shown),
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
        )
        device = self.resolved_device
        inputs = {k: v.to(device) if hasattr(v, "to") else v for k, v in inputs.items()}
        prompt_tokens = int(inputs["input_ids"].shape[1])
        kwargs = {**inputs, **self._generation_kwargs()}
        if on_token is None:
            with torch.inference_mode():
                output = self._model.generate(**kwargs)
            new_tokens = output[0, prompt_tokens:]
            text = self._processor.decode(new_tokens, skip_special_tokens=True)
            completion_tokens = int(new_tokens.shape[0])
        else:
            text, completion_tokens = self._stream(kwargs, on_token)
        text = text.strip()
        return Answer(
            text=text,
            citations=cited_hits(text, shown),
            sources=shown,
            usage={"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
        )

    def _stream(self, kwargs: dict[str, Any], on_token: Callable[[str], None]) -> tuple[str, int]:
        """Generate in a thread, handing each decoded piece to ``on_token`` as it arrives."""
        import torch
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(
            self._processor.tokenizer, skip_prompt=True, skip_special_tokens=True
        )
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                with torch.inference_mode():
                    result["output"] = self._model.generate(**kwargs, streamer=streamer)
            except BaseException as error:  # re-raised in the caller's thread below
                result["error"] = error
                streamer.end()

        worker = threading.Thread(target=run, name="mmrag-generate", daemon=True)
        worker.start()
        pieces = []
        for piece in streamer:
            if piece:
                pieces.append(piece)
                on_token(piece)
        worker.join()
        if "error" in result:
            raise result["error"]
        completion = int(result["output"].shape[1] - kwargs["input_ids"].shape[1])
        return "".join(pieces), completion
