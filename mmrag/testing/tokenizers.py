"""Offline byte-level tokenizers, one per model family, for the tiny test models.

Every tokenizer here is built from nothing on disk: a vocabulary of the 256 byte symbols
(``tokenizers.pre_tokenizers.ByteLevel.alphabet()``, or byte-fallback pieces for Gemma) plus the
family's special tokens, wrapped in the tokenizer class the real checkpoint's
``tokenizer_config.json`` names, so ``AutoTokenizer``/``AutoProcessor`` resolve it the same way.
Any string is encodable; a few whole words can be given BPE merges so they encode as one token
(the MonoQwen2-VL reranker reads the logits of ``True`` and ``False``).

Token ids differ from the real checkpoints': always read special ids from the tokenizer.

Example:
    >>> tok = qwen2_tokenizer()
    >>> tok.convert_ids_to_tokens(tok.encode("True"))
    ['True']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import (
        GemmaTokenizer,
        GPT2Tokenizer,
        PreTrainedTokenizerFast,
        Qwen2Tokenizer,
    )

#: Special tokens of Qwen2 / Qwen2-VL (``Qwen/Qwen2-VL-2B-Instruct`` ``tokenizer.json``).
QWEN2_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: Words that encode as a single token in the tiny Qwen2 tokenizer (MonoQwen2-VL's answer words).
QWEN2_WHOLE_WORDS: tuple[str, ...] = ("True", "False")

#: Idefics3 image-splitting tokens (``Idefics3Processor``): 6x6 tile positions.
IDEFICS3_IMAGE_TOKENS: tuple[str, ...] = (
    "<fake_token_around_image>",
    "<image>",
    "<global-img>",
    *(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)),
)

#: Special tokens of SmolLM2 (the text backbone of SmolVLM) plus the Idefics3 image tokens.
SMOLVLM_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<end_of_utterance>",
    *IDEFICS3_IMAGE_TOKENS,
)

#: Llama-3 special tokens used by E5-V's prompt, plus LLaVA-NeXT's ``<image>`` and ``<pad>``.
LLAMA3_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<image>",
    "<pad>",
)

#: ModernBERT's special tokens plus those ColModernVBert's processor and prompts use.
MODERNBERT_SPECIAL_TOKENS: tuple[str, ...] = (
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[PAD]",
    "[MASK]",
    "<|begin_of_text|>",
    "<end_of_utterance>",
    *IDEFICS3_IMAGE_TOKENS,
)


def byte_level_vocab(
    special_tokens: Sequence[str] = (), whole_words: Sequence[str] = ()
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Return a byte-level BPE vocabulary and merges.

    The vocabulary holds the 256 byte symbols, then each prefix of every word in
    ``whole_words`` (with the merges that build it, so the word encodes as one token), then the
    special tokens.

    Example:
        >>> vocab, merges = byte_level_vocab(["<s>"], whole_words=["ab"])
        >>> len(vocab), merges
        (258, [('a', 'b')])
    """
    from tokenizers import pre_tokenizers

    vocab = {symbol: i for i, symbol in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    merges: list[tuple[str, str]] = []
    for word in whole_words:
        for end in range(2, len(word) + 1):
            if word[:end] not in vocab:
                merges.append((word[: end - 1], word[end - 1]))
                vocab[word[:end]] = len(vocab)
    for token in special_tokens:
        vocab.setdefault(token, len(vocab))
    return vocab, merges


def _special(tokens: Sequence[str]) -> list:
    from tokenizers import AddedToken

    return [AddedToken(t, special=True, normalized=False) for t in tokens]


def qwen2_tokenizer() -> Qwen2Tokenizer:
    """Tiny ``Qwen2Tokenizer`` (Qwen2-VL, ColQwen2) with ``True``/``False`` as single tokens.

    Mirrors ``Qwen/Qwen2-VL-2B-Instruct``: eos ``<|im_end|>``, pad ``<|endoftext|>``, no bos.

    Example:
        >>> tok = qwen2_tokenizer()
        >>> tok.pad_token, tok.eos_token
        ('<|endoftext|>', '<|im_end|>')
    """
    from transformers import Qwen2Tokenizer

    vocab, merges = byte_level_vocab(QWEN2_SPECIAL_TOKENS, QWEN2_WHOLE_WORDS)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab, merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.add_tokens(_special(QWEN2_SPECIAL_TOKENS), special_tokens=True)
    return tokenizer


def gemma_tokenizer() -> GemmaTokenizer:
    """Tiny ``GemmaTokenizer`` (PaliGemma / ColPali): byte-fallback pieces, no merges.

    ``ColPaliProcessor`` adds ``<image>`` and the ``<locXXXX>``/``<segXXX>`` tokens itself.

    Example:
        >>> tok = gemma_tokenizer()
        >>> tok.bos_token, tok.pad_token
        ('<bos>', '<pad>')
    """
    from transformers import GemmaTokenizer

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4}
    for byte in range(256):  # byte-fallback pieces: every string is encodable
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    vocab["▁"] = len(vocab)
    return GemmaTokenizer(vocab=vocab, merges=[])


def smolvlm_tokenizer() -> GPT2Tokenizer:
    """Tiny ``GPT2Tokenizer`` like SmolVLM's (SmolLM2 vocabulary and Idefics3 image tokens).

    Mirrors ``HuggingFaceTB/SmolVLM-256M-Instruct``: bos ``<|im_start|>``,
    eos ``<end_of_utterance>``, pad ``<|im_end|>``, unk ``<|endoftext|>``.

    Example:
        >>> tok = smolvlm_tokenizer()
        >>> tok.eos_token
        '<end_of_utterance>'
    """
    from transformers import GPT2Tokenizer

    vocab, merges = byte_level_vocab(SMOLVLM_SPECIAL_TOKENS)
    tokenizer = GPT2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token="<|endoftext|>",
        bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        pad_token="<|im_end|>",
    )
    tokenizer.add_tokens(_special(SMOLVLM_SPECIAL_TOKENS), special_tokens=True)
    return tokenizer


def llama3_tokenizer() -> PreTrainedTokenizerFast:
    """Tiny Llama-3-style tokenizer (LLaVA-NeXT / E5-V): prepends ``<|begin_of_text|>``.

    Mirrors ``royokong/e5-v``: a ``PreTrainedTokenizerFast`` with bos ``<|begin_of_text|>``,
    eos ``<|eot_id|>`` and pad ``<pad>``.

    Example:
        >>> tok = llama3_tokenizer()
        >>> tok.convert_ids_to_tokens(tok("hi")["input_ids"])
        ['<|begin_of_text|>', 'h', 'i']
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab, merges = byte_level_vocab(LLAMA3_SPECIAL_TOKENS)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    bos = "<|begin_of_text|>"
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])]
    )
    backend.add_special_tokens(_special(LLAMA3_SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=bos, eos_token="<|eot_id|>", pad_token="<pad>"
    )


def modernbert_tokenizer() -> PreTrainedTokenizerFast:
    """Tiny ModernBERT-style tokenizer (ModernVBert / ColModernVBert): ``[CLS] text [SEP]``.

    Example:
        >>> tok = modernbert_tokenizer()
        >>> tok.convert_ids_to_tokens(tok("hi")["input_ids"])
        ['[CLS]', 'h', 'i', '[SEP]']
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab, merges = byte_level_vocab(MODERNBERT_SPECIAL_TOKENS)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    backend.add_special_tokens(_special(MODERNBERT_SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
    )
