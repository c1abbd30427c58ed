"""Shared lazy-loading machinery of the Hugging Face-backed stages (embedders, rerankers,
generators).

A component is built cheaply from plain parameters (model id, revision, device, dtype); its
weights load on first use or an explicit :meth:`HFComponent.load`.
:class:`mmrag.embedders.base.ModelEmbedder` builds on it with batching and the embedding API.

Example:
    >>> from mmrag.rerankers.monoqwen import MonoQwenReranker
    >>> reranker = MonoQwenReranker(device="cpu")        # nothing loads yet
    >>> reranker.is_loaded
    False
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

__all__ = ["HFComponent"]


class HFComponent(ABC):
    """A model-backed stage: plain constructor parameters, weights loaded lazily.

    Subclasses implement :meth:`_load` (using :meth:`_hub_kwargs` and :meth:`_torch_dtype`) and
    list their constructor parameters in :meth:`init_parameters`.

    Example:
        >>> from mmrag.generators.transformers_vlm import TransformersGenerator
        >>> TransformersGenerator("HuggingFaceTB/SmolVLM-256M-Instruct").to_dict()["type"]
        'transformers'
    """

    #: the registry short name (``{type, init_parameters}`` serialisation)
    type_name: str = ""

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        trust_remote_code: bool = False,
        local_files_only: bool | None = None,
    ) -> None:
        self.model = model
        self.revision = revision
        self.device = device
        self.dtype = dtype
        self.trust_remote_code = trust_remote_code
        self.local_files_only = local_files_only
        self._loaded = False

    def init_parameters(self) -> dict[str, Any]:
        """The constructor arguments, for ``{type, init_parameters}`` serialisation."""
        return {
            "model": self.model,
            "revision": self.revision,
            "device": self.device,
            "dtype": self.dtype,
            "trust_remote_code": self.trust_remote_code,
            "local_files_only": self.local_files_only,
        }

    def to_dict(self) -> dict[str, Any]:
        """``{"type": ..., "init_parameters": {...}}`` (``None`` values left out)."""
        params = {k: v for k, v in self.init_parameters().items() if v is not None}
        return {"type": self.type_name, "init_parameters": params}

    @property
    def is_loaded(self) -> bool:
        """Whether the weights are in memory."""
        return self._loaded

    def load(self) -> HFComponent:
        """Load the weights now (otherwise this happens on first use)."""
        if not self._loaded:
            from mmrag.device import resolve_device, resolve_dtype

            self.resolved_device = resolve_device(self.device)
            self.resolved_dtype = resolve_dtype(self.dtype, self.resolved_device)
            self._load()
            self._loaded = True
        return self

    def _hub_kwargs(self, revision: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"trust_remote_code": self.trust_remote_code}
        if revision is not None:
            kwargs["revision"] = revision
        if self.local_files_only is not None:
            kwargs["local_files_only"] = self.local_files_only
        return kwargs

    def _torch_dtype(self) -> Any:
        import torch

        return getattr(torch, self.resolved_dtype)

    @abstractmethod
    def _load(self) -> None:
        """Load weights and processor onto ``self.resolved_device`` / ``self.resolved_dtype``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model!r}, device={self.device!r})"
