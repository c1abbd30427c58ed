"""Load a LoRA / DoRA adapter onto a base model, merge it, and prove every tensor was used.

The VLM2Vec adapters (``TIGER-Lab/VLM2Vec-Qwen2VL-2B``, ``VLM2Vec/VLM2Vec-V2.0``) were saved by
peft under transformers 4.x module names (``model.layers.N…``, ``visual.…``) and trained with
DoRA. Under transformers 5.x the same modules live at ``model.language_model.layers.N…`` and
``model.visual.…``; ``PeftModel.from_pretrained`` then matches none of the saved keys, warns
about "missing adapter keys" and runs the *base* model — a silent failure. transformers' own
adapter loading renames the keys but drops DoRA's magnitude vectors.

:func:`load_merged_adapter` therefore:

1. reads ``adapter_config.json`` and the adapter weights (``adapter_model.safetensors``, or a
   ``adapter_model.bin`` read with ``torch.load(weights_only=True)``),
2. renames 4.x module paths with transformers' own 4.x→5.x checkpoint conversion table for the
   model class (only for paths that do not exist in the model as saved),
3. injects the adapter with peft (``use_dora`` honoured) and loads the renamed weights,
4. checks that **every saved tensor landed in the model unchanged and every injected adapter
   parameter was loaded** — otherwise raises :class:`AdapterLoadError`,
5. merges the adapter into the base weights (``merge_and_unload``).

Sources: peft's serialisation format (``peft/utils/save_and_load.py``,
https://github.com/huggingface/peft), transformers' ``conversion_mapping.py``, VLM2Vec's
``MMEBModel.load`` (``src/model/model.py`` in https://github.com/TIGER-AI-Lab/VLM2Vec), which
loads the adapter with ``PeftModel.from_pretrained`` and merges it for inference.

Example:
    >>> from mmrag.embedders._lora import module_path
    >>> module_path("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
    ('model.layers.0.self_attn.q_proj', 'lora_A.weight')
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = [
    "ADAPTER_CONFIG_NAME",
    "AdapterFiles",
    "AdapterLoadError",
    "find_adapter",
    "load_merged_adapter",
    "module_path",
]

logger = logging.getLogger(__name__)

ADAPTER_CONFIG_NAME = "adapter_config.json"
_WEIGHT_NAMES = ("adapter_model.safetensors", "adapter_model.bin")
#: peft's serialised keys start with this (LoRA-style tuners wrap the model twice).
_PEFT_PREFIX = "base_model.model."
#: The parameter names peft's LoRA layers add to a module (``lora_A.weight`` …).
_LORA_PARTS = (
    "lora_A",
    "lora_B",
    "lora_embedding_A",
    "lora_embedding_B",
    "lora_magnitude_vector",
)


class AdapterLoadError(ConfigError):
    """An adapter does not fit its base model: some of its tensors would be silently ignored."""


@dataclass(frozen=True)
class AdapterFiles:
    """Where an adapter's config and weights are on disk (after download)."""

    config: Path
    weights: Path

    def read_config(self) -> dict[str, Any]:
        """The parsed ``adapter_config.json``."""
        return json.loads(self.config.read_text(encoding="utf-8"))


def find_adapter(
    model: str,
    *,
    revision: str | None = None,
    local_files_only: bool | None = None,
) -> AdapterFiles | None:
    """The adapter files of ``model`` (a local folder or a Hub id), or ``None`` if it has none.

    A folder or repository with ``adapter_config.json`` is an adapter; anything else is taken
    to be a full checkpoint.
    """
    from transformers.utils import cached_file

    kwargs: dict[str, Any] = {"revision": revision, "_raise_exceptions_for_missing_entries": False}
    if local_files_only is not None:
        kwargs["local_files_only"] = local_files_only
    config = cached_file(model, ADAPTER_CONFIG_NAME, **kwargs)
    if config is None:
        return None
    for name in _WEIGHT_NAMES:
        weights = cached_file(model, name, **kwargs)
        if weights is not None:
            return AdapterFiles(config=Path(config), weights=Path(weights))
    raise AdapterLoadError(
        f"{model!r} has an {ADAPTER_CONFIG_NAME} but no adapter weights "
        f"({' or '.join(_WEIGHT_NAMES)}); the download may be incomplete."
    )


def module_path(key: str) -> tuple[str, str]:
    """Split a peft-serialised adapter key into (module path in the base model, adapter part).

    Example:
        >>> module_path("base_model.model.visual.blocks.0.attn.qkv.lora_magnitude_vector")
        ('visual.blocks.0.attn.qkv', 'lora_magnitude_vector')
    """
    if not key.startswith(_PEFT_PREFIX):
        raise AdapterLoadError(
            f"adapter key {key!r} does not start with {_PEFT_PREFIX!r}; only LoRA/DoRA adapters "
            "saved by peft are supported"
        )
    path = key[len(_PEFT_PREFIX) :]
    for part in _LORA_PARTS:
        marker = f".{part}"
        index = path.find(marker + ".")
        if index < 0 and path.endswith(marker):
            index = len(path) - len(marker)
        if index >= 0:
            return path[:index], path[index + 1 :]
    raise AdapterLoadError(f"adapter key {key!r} is not a LoRA/DoRA parameter")


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    # adapter_model.bin (e.g. TIGER-Lab/VLM2Vec-Qwen2VL-2B): tensors only, never arbitrary code.
    return torch.load(str(path), map_location="cpu", weights_only=True)


def _renamer(model: Any) -> Any:
    """A function renaming transformers-4.x module paths of ``model``'s class to 5.x ones."""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import (
            WeightConverter,
            WeightRenaming,
            rename_source_key,
        )
    except ImportError:  # pragma: no cover - transformers < 5 has no conversion table
        return lambda path: path
    conversions = get_model_conversion_mapping(model, add_legacy=False)
    renamings = [c for c in conversions if isinstance(c, WeightRenaming)]
    converters = [c for c in conversions if isinstance(c, WeightConverter)]
    return lambda path: rename_source_key(path, renamings, converters)[0]


def rename_adapter_keys(model: Any, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rewrite saved adapter keys so that their module paths exist in ``model``.

    A path that already names a module of ``model`` is kept; any other goes through
    transformers' 4.x→5.x conversion table for the model class. Paths that still match no module
    are kept as they are (the caller's verification reports them).
    """
    modules = {name for name, _ in model.named_modules()}
    rename = _renamer(model)
    renamed: dict[str, torch.Tensor] = {}
    moved = 0
    for key, tensor in state_dict.items():
        path, part = module_path(key)
        if path not in modules:
            candidate = rename(path)
            if candidate in modules:
                path = candidate
                moved += 1
        renamed[f"{_PEFT_PREFIX}{path}.{part}"] = tensor
    if moved:
        logger.info("renamed %d adapter tensors from transformers 4.x module names", moved)
    return renamed


def _normalise(internal_key: str, adapter_name: str) -> str:
    """peft's in-memory key → its serialised form (drop the adapter name, DoRA's ``.weight``)."""
    key = internal_key.replace(f".{adapter_name}.", ".")
    if key.endswith(f".{adapter_name}"):
        key = key[: -len(adapter_name) - 1]
    if key.endswith(".lora_magnitude_vector.weight"):
        key = key[: -len(".weight")]
    return key


def _verify_loaded(
    peft_model: Any, state_dict: dict[str, torch.Tensor], adapter_name: str, source: str
) -> None:
    """Raise unless every saved tensor is in the model unchanged and nothing was left at init."""
    import torch

    internal = {
        _normalise(key, adapter_name): value
        for key, value in peft_model.state_dict().items()
        if any(f".{part}" in key for part in _LORA_PARTS)
    }
    unused = [key for key in state_dict if key not in internal]
    mismatched = [
        key
        for key, tensor in state_dict.items()
        if key in internal
        and (
            internal[key].shape != tensor.shape
            or not torch.equal(internal[key].detach().cpu(), tensor.to(internal[key].dtype).cpu())
        )
    ]
    not_loaded = sorted(set(internal) - set(state_dict))
    problems = []
    if unused:
        problems.append(
            f"{len(unused)} of its {len(state_dict)} tensors match no module of the base model "
            f"(e.g. {unused[0]!r})"
        )
    if mismatched:
        problems.append(f"{len(mismatched)} tensors did not load as saved (e.g. {mismatched[0]!r})")
    if not_loaded:
        problems.append(
            f"{len(not_loaded)} adapter parameters injected by its config have no saved tensor "
            f"(e.g. {not_loaded[0]!r})"
        )
    if problems:
        raise AdapterLoadError(
            f"adapter {source!r} does not fit the base model "
            f"({type(peft_model.base_model.model).__name__}): "
            + "; ".join(problems)
            + ". Check that the base model is the one the adapter was trained on (base_model=…)."
        )


def load_merged_adapter(
    base_model: Any,
    files: AdapterFiles,
    *,
    source: str = "",
    adapter_name: str = "default",
) -> Any:
    """Apply the adapter in ``files`` to ``base_model``, verify it, merge it and return the model.

    Raises:
        AdapterLoadError: the adapter is not LoRA/DoRA, or any of its tensors (or any parameter
            its config injects) would not be used.
    """
    from peft import LoraConfig, get_peft_model
    from peft.utils import set_peft_model_state_dict

    source = source or str(files.config.parent)
    raw = files.read_config()
    if raw.get("peft_type", "LORA") != "LORA":
        raise AdapterLoadError(
            f"adapter {source!r} is a {raw.get('peft_type')!r} adapter; only LoRA/DoRA adapters "
            "are supported"
        )
    config = LoraConfig.from_pretrained(str(files.config.parent))
    config.inference_mode = True
    state_dict = rename_adapter_keys(base_model, _read_weights(files.weights))
    try:
        with warnings.catch_warnings():  # transformers' deprecation noise from inside peft
            warnings.filterwarnings(
                "ignore", message=".*is_gradient_checkpointing", category=FutureWarning
            )
            peft_model = get_peft_model(base_model, config, adapter_name=adapter_name)
    except ValueError as error:  # peft: "Target modules … not found in the base model"
        raise AdapterLoadError(f"adapter {source!r} does not fit the base model: {error}") from None
    try:
        set_peft_model_state_dict(peft_model, state_dict, adapter_name=adapter_name)
    except RuntimeError as error:  # torch: "size mismatch for …"
        raise AdapterLoadError(f"adapter {source!r} does not fit the base model: {error}") from None
    _verify_loaded(peft_model, state_dict, adapter_name, source)
    logger.info(
        "loaded adapter %s (%d tensors, r=%s, dora=%s); merging",
        source,
        len(state_dict),
        config.r,
        config.use_dora,
    )
    return peft_model.merge_and_unload()
