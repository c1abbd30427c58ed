"""Answer with any LangChain chat model: the page images go in as multimodal content blocks.

Whatever provider a user already has (OpenAI, Anthropic, Google, Ollama, a local vLLM server …)
answers through its LangChain chat model. The user turn is a list of standard content blocks:
text blocks for the numbered source headers, page text and question, and
``{"type": "image", "base64": …, "mime_type": "image/jpeg"}`` blocks for the page and frame
images (LangChain's provider packages translate these to their API's format).
``image_format="openai"`` sends ``image_url`` data-URL blocks instead, for older integrations.

Built from Python with a chat model object, or from a config with ``model`` (a
``"provider:model"`` string for ``langchain.chat_models.init_chat_model``) or ``chat_class``
(an import path such as ``"langchain_openai.ChatOpenAI"``) plus ``model_kwargs``. API keys stay
in the provider's usual environment variables, or ``api_key`` names an environment variable
(:class:`~mmrag.auth.Secret`); a key never lands in a config file.

Example:
    >>> from langchain_core.language_models import GenericFakeChatModel
    >>> from langchain_core.messages import AIMessage
    >>> from mmrag.generators.langchain import LangChainGenerator
    >>> gen = LangChainGenerator(GenericFakeChatModel(messages=iter([AIMessage("No sources.")])))
    >>> gen.generate("What grew?", []).text
    'No sources.'
"""

from __future__ import annotations

import base64
import importlib
import io
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from mmrag.errors import ConfigError, MissingDependencyError
from mmrag.generators.base import PromptSettings, cited_hits, context_parts

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from PIL import Image

    from mmrag.auth import Secret
    from mmrag.types import Answer, Hit

__all__ = ["LangChainGenerator", "image_block"]


def image_block(
    image: Image.Image, *, image_format: Literal["standard", "openai"] = "standard"
) -> dict[str, Any]:
    """A LangChain content block holding ``image`` as base64 JPEG.

    Example:
        >>> from PIL import Image
        >>> image_block(Image.new("RGB", (4, 4)))["mime_type"]
        'image/jpeg'
    """
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=90)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    if image_format == "openai":
        return {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{data}"}}
    return {"type": "image", "base64": data, "mime_type": "image/jpeg"}


class LangChainGenerator:
    """Answer through a LangChain chat model shown the retrieved page images.

    Example:
        >>> from mmrag.generators.langchain import LangChainGenerator
        >>> gen = LangChainGenerator(model="openai:gpt-4o-mini", max_images=3)
        >>> gen.to_dict()
        {'type': 'langchain', 'init_parameters': {'model': 'openai:gpt-4o-mini', 'max_images': 3}}
    """

    type_name = "langchain"

    def __init__(
        self,
        chat_model: BaseChatModel | None = None,
        *,
        model: str | None = None,
        chat_class: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        api_key: Secret | None = None,
        image_format: Literal["standard", "openai"] = "standard",
        max_images: int = 4,
        image_max_side: int | None = 1024,
        include_text: bool = True,
        max_text_chars: int = 1500,
        system_prompt: str | None = None,
    ) -> None:
        if chat_model is None and model is None and chat_class is None:
            raise ConfigError(
                "the langchain generator needs a chat model: pass chat_model=<BaseChatModel>, "
                "model='provider:model' (e.g. 'openai:gpt-4o-mini'), or "
                "chat_class='langchain_openai.ChatOpenAI' with model_kwargs"
            )
        if image_format not in ("standard", "openai"):
            raise ConfigError(f"image_format must be 'standard' or 'openai', got {image_format!r}")
        self._chat_model = chat_model
        self.model = model
        self.chat_class = chat_class
        self.model_kwargs = dict(model_kwargs or {})
        self.api_key = api_key
        self.image_format = image_format
        self.settings = PromptSettings(
            max_images=max_images,
            image_max_side=image_max_side,
            include_text=include_text,
            max_text_chars=max_text_chars,
            system_prompt=system_prompt,
        )

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "langchain", "init_parameters": {...}}`` (settings that differ from the
        defaults; a chat model object passed in Python is not serialisable and is left out)."""
        params: dict[str, Any] = {
            "model": self.model,
            "chat_class": self.chat_class,
            "model_kwargs": self.model_kwargs or None,
            "api_key": self.api_key.to_dict() if self.api_key is not None else None,
            "image_format": None if self.image_format == "standard" else self.image_format,
        }
        defaults = PromptSettings()
        for name in ("max_images", "image_max_side", "include_text", "max_text_chars"):
            value = getattr(self.settings, name)
            params[name] = None if value == getattr(defaults, name) else value
        params["system_prompt"] = self.settings.system_prompt
        return {
            "type": self.type_name,
            "init_parameters": {k: v for k, v in params.items() if v is not None},
        }

    @property
    def chat_model(self) -> BaseChatModel:
        """The chat model (built from ``model`` / ``chat_class`` on first use)."""
        if self._chat_model is None:
            self._chat_model = self._build()
        return self._chat_model

    def _build(self) -> BaseChatModel:
        if self.chat_class is not None:
            module_name, _, attr = self.chat_class.replace(":", ".").rpartition(".")
            try:
                cls = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as error:
                raise MissingDependencyError(
                    f"cannot import chat model class {self.chat_class!r} ({error}); install "
                    f"its package, e.g. pip install {module_name.split('.')[0].replace('_', '-')}"
                ) from error
            kwargs = self._kwargs()
            if self.model is not None:
                kwargs.setdefault("model", self.model)
            return cls(**kwargs)
        try:
            from langchain.chat_models import init_chat_model
        except ImportError as error:
            raise MissingDependencyError(
                f"model={self.model!r} needs langchain's init_chat_model: pip install langchain "
                "plus the provider package (e.g. langchain-openai), or set chat_class="
                "'langchain_openai.ChatOpenAI'"
            ) from error
        return init_chat_model(self.model, **self._kwargs())

    def _kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.model_kwargs)
        if self.api_key is not None:
            kwargs["api_key"] = self.api_key.resolve_value()
        return kwargs

    def messages(self, question: str, hits: Sequence[Hit]) -> list[Any]:
        """The system message and the multimodal user message for ``question`` over ``hits``."""
        from langchain_core.messages import HumanMessage, SystemMessage

        content: list[dict[str, Any]] = []
        for part in context_parts(question, hits, self.settings):
            if part.kind == "image":
                assert part.image is not None
                content.append(image_block(part.image, image_format=self.image_format))
            elif content and content[-1]["type"] == "text":
                content[-1] = {"type": "text", "text": content[-1]["text"] + part.text}
            else:
                content.append({"type": "text", "text": part.text})
        return [SystemMessage(self.settings.system), HumanMessage(content=content)]

    def generate(
        self,
        question: str,
        hits: Sequence[Hit],
        *,
        on_token: Callable[[str], None] | None = None,
    ) -> Answer:
        """Answer ``question`` from the best ``max_images`` hits; stream text to ``on_token``."""
        from mmrag.types import Answer

        shown = list(hits[: self.settings.max_images])
        messages = self.messages(question, shown)
        if on_token is None:
            response = self.chat_model.invoke(messages)
        else:
            response = None
            for chunk in self.chat_model.stream(messages):
                piece = chunk.text
                if piece:
                    on_token(piece)
                response = chunk if response is None else response + chunk
            if response is None:
                raise RuntimeError(f"{type(self.chat_model).__name__} streamed no output")
        text = response.text.strip()
        usage = getattr(response, "usage_metadata", None) or {}
        return Answer(
            text=text,
            citations=cited_hits(text, shown),
            sources=shown,
            usage={
                "prompt_tokens": int(usage.get("input_tokens", 0)),
                "completion_tokens": int(usage.get("output_tokens", 0)),
            },
        )

    def __repr__(self) -> str:
        target = self.model or self.chat_class or type(self._chat_model).__name__
        return f"LangChainGenerator({target!r})"
