"""Tiny text cross-encoders (random weights), in the layouts of the published rerankers.

- ``bert``: ``BertForSequenceClassification`` with one label and a WordPiece ``BertTokenizerFast``
  (stands in for ``cross-encoder/ms-marco-MiniLM-L-6-v2``).
- ``xlm-roberta``: ``XLMRobertaForSequenceClassification`` with one label and a byte-level
  tokenizer with ``<s> A </s></s> B </s>`` pair templates (stands in for
  ``BAAI/bge-reranker-v2-m3``).

Both are saved with ``save_pretrained`` (model and tokenizer) and load back through
``AutoModelForSequenceClassification`` / ``AutoTokenizer`` from the folder, as the real ones do
from the Hub.

Example:
    >>> from mmrag.testing.cross_encoder import build_cross_encoder      # doctest: +SKIP
    >>> build_cross_encoder(tmp / "xenc", architecture="bert")           # doctest: +SKIP
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any, Literal

from mmrag.testing.bundle import seeded
from mmrag.testing.manifest import TinyManifest, write_manifest

__all__ = ["build_cross_encoder"]

_BERT_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_CHARS = string.ascii_lowercase + string.digits + string.punctuation


def _bert_tokenizer() -> Any:
    from transformers import BertTokenizerFast

    tokens = [*_BERT_SPECIAL, *_CHARS, *(f"##{c}" for c in _CHARS)]
    vocab = {token: i for i, token in enumerate(tokens)}
    return BertTokenizerFast(vocab=vocab, do_lower_case=True, model_max_length=512)


def _xlm_roberta_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    from mmrag.testing.tokenizers import byte_level_vocab

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    vocab, merges = byte_level_vocab()
    vocab = {token: i for i, token in enumerate([*specials, *vocab])}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", vocab["<s>"]), ("</s>", vocab["</s>"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=512,
        model_input_names=["input_ids", "attention_mask"],
    )


def build_cross_encoder(
    out_dir: Path,
    *,
    architecture: Literal["bert", "xlm-roberta"] = "bert",
    seed: int = 0,
    num_labels: int = 1,
) -> Path:
    """Save a tiny random cross-encoder (model + tokenizer) into ``out_dir``; returns it."""
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        XLMRobertaConfig,
        XLMRobertaForSequenceClassification,
    )

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, Any] = {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 512,
        "num_labels": num_labels,
        "initializer_range": 0.3,  # wide random weights: clearly different scores per text
    }
    if architecture == "bert":
        tokenizer = _bert_tokenizer()
        config = BertConfig(vocab_size=len(tokenizer), pad_token_id=0, **sizes)
        model_class, stands_in_for = (
            BertForSequenceClassification,
            "cross-encoder/ms-marco-MiniLM-L-6-v2",
        )
    elif architecture == "xlm-roberta":
        tokenizer = _xlm_roberta_tokenizer()
        config = XLMRobertaConfig(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **{**sizes, "max_position_embeddings": 514},  # positions start after padding_idx
        )
        model_class, stands_in_for = XLMRobertaForSequenceClassification, "BAAI/bge-reranker-v2-m3"
    else:
        raise ValueError(f"unknown architecture {architecture!r}; allowed: bert, xlm-roberta")
    with seeded(seed):
        model = model_class(config)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    write_manifest(
        out_dir,
        TinyManifest(
            f"cross_encoder_{architecture}",
            model_class.__name__,
            stands_in_for,
            seed,
            "a text cross-encoder reranker; random weights",
        ),
    )
    return out_dir
