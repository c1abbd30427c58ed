"""Tiny reranker checkpoints in the published layouts, built on the tiny Qwen2-VL.

- :func:`build_monoqwen_adapter`: a LoRA adapter saved by peft, like
  ``lightonai/MonoQwen2-VL-v0.1`` (``adapter_config.json`` naming its base model), with non-zero
  ``lora_B`` so the adapter visibly changes the model.
- :func:`build_score_head_checkpoint`: a jina-reranker-m0-style checkpoint: Qwen2-VL weights in
  the transformers-4.x key layout (``visual.…``, ``model.…``, no ``lm_head``), the two-layer
  ``score.0`` / ``score.2`` head, ``architectures: ["JinaVLForRanking"]`` and the processor.
  ``head_bias`` (with ``zero_head_weight``) sets the head's output to a known value.

Example:
    >>> from mmrag.testing.rerankers import build_monoqwen_adapter      # doctest: +SKIP
    >>> build_monoqwen_adapter(tiny_qwen2vl_dir, tmp / "monoqwen")      # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

from mmrag.testing.bundle import seeded
from mmrag.testing.manifest import TinyManifest, write_manifest

__all__ = ["MONOQWEN_TARGETS", "build_monoqwen_adapter", "build_score_head_checkpoint"]

#: The language model's attention projections (the vision tower's are named qkv / proj).
MONOQWEN_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def build_monoqwen_adapter(
    base_dir: Path, out_dir: Path, *, seed: int = 0, judge_scale: float | None = 3.0
) -> Path:
    """Save a LoRA adapter on the tiny Qwen2-VL at ``base_dir`` into ``out_dir``.

    With ``judge_scale``, the adapter's base is first saved as ``out_dir/base``: the tiny
    Qwen2-VL with untied LM-head rows for "True" and "False" set to ``±judge_scale`` times one
    random unit direction, so P("True") spreads over (0, 1) instead of sitting near 0.5 as a
    random model's does (reranking tests then see clearly different scores).
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

    base = Qwen2VLForConditionalGeneration.from_pretrained(base_dir)
    if judge_scale is not None:
        processor = AutoProcessor.from_pretrained(base_dir)
        true_id, false_id = (
            processor.tokenizer.convert_tokens_to_ids(t) for t in ("True", "False")
        )
        base.config.tie_word_embeddings = False
        base.config.get_text_config().tie_word_embeddings = False
        weight = base.get_input_embeddings().weight.detach().clone()
        with seeded(seed + 2):
            direction = torch.randn(weight.shape[1])
        direction = direction / direction.norm()
        weight[true_id] = judge_scale * direction
        weight[false_id] = -judge_scale * direction
        base.lm_head = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        base.lm_head.weight = torch.nn.Parameter(weight)
        base_dir = out_dir / "base"
        base.save_pretrained(base_dir)
        processor.save_pretrained(base_dir)
        base = Qwen2VLForConditionalGeneration.from_pretrained(base_dir)
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=MONOQWEN_TARGETS)
    with seeded(seed), torch.no_grad():  # a trained-looking adapter: B is not zero
        model = get_peft_model(base, config)
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(0.1 * torch.randn(param.shape))
    model.save_pretrained(out_dir)
    adapter_config = json.loads((out_dir / "adapter_config.json").read_text(encoding="utf-8"))
    assert adapter_config["base_model_name_or_path"] == str(base_dir)
    manifest = TinyManifest(
        "monoqwen",
        "PeftModel(Qwen2VLForConditionalGeneration)",
        "lightonai/MonoQwen2-VL-v0.1",
        seed,
        "a LoRA adapter on the tiny Qwen2-VL",
    )
    write_manifest(out_dir, manifest)
    return out_dir


def build_score_head_checkpoint(
    base_dir: Path,
    out_dir: Path,
    *,
    seed: int = 0,
    head_bias: float | None = None,
    zero_head_weight: bool = False,
) -> Path:
    """Save a jina-reranker-m0-layout checkpoint of the tiny Qwen2-VL at ``base_dir``."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

    model = Qwen2VLForConditionalGeneration.from_pretrained(base_dir)
    hidden = model.config.get_text_config().hidden_size
    tensors = {}
    for key, value in model.state_dict().items():
        if key.startswith("lm_head."):
            continue  # the reranker replaces the LM head by its score head
        key = key.replace("model.visual.", "visual.", 1)
        key = key.replace("model.language_model.", "model.", 1)
        tensors[key] = value.detach().clone().contiguous()
    with seeded(seed + 1):
        head = torch.nn.Sequential(
            torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )
    with torch.no_grad():
        if zero_head_weight:
            head[2].weight.zero_()
        if head_bias is not None:
            head[2].bias.fill_(head_bias)
    for name, value in head.state_dict().items():
        tensors[f"score.{name}"] = value.detach().clone().contiguous()
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    config = model.config.to_dict()
    config["architectures"] = ["JinaVLForRanking"]
    (out_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    AutoProcessor.from_pretrained(base_dir).save_pretrained(out_dir)
    return out_dir
