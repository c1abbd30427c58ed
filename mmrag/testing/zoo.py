"""The catalogue of tiny models, as data, and the functions that build them.

Each entry names a builder (``"module:function"``, imported only when used), the architecture
it builds and the real checkpoint it stands in for. Nothing here imports torch or transformers
until a model is made.

Example:
    >>> [spec.name for spec in list_tiny_models()][:3]
    ['qwen2vl', 'colqwen2', 'colpali']
    >>> get_spec("colpali").stands_in_for
    'vidore/colpali-v1.3-hf'
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from mmrag.testing.bundle import TinyModel
from mmrag.testing.manifest import TinyManifest, write_manifest

logger = logging.getLogger(__name__)

#: Seed used when none is given.
DEFAULT_SEED = 0


@dataclass(frozen=True)
class TinyModelSpec:
    """One tiny model of the zoo.

    Attributes:
        name: Zoo name, also the directory name under ``build_all``'s output.
        architecture: Class name of the model it builds.
        stands_in_for: The real checkpoint id it imitates.
        description: One line on what it is for.
        factory: ``"module:function"`` returning a ``TinyModel`` for a seed.
        notes: How to load and use it (copied into the manifest).
        requires: Python modules it needs beyond mmrag's dependencies.

    Example:
        >>> get_spec("open_clip").architecture
        'CLIP'
    """

    name: str
    architecture: str
    stands_in_for: str
    description: str
    factory: str
    notes: str = ""
    requires: tuple[str, ...] = ()

    def missing_requirements(self) -> list[str]:
        """The modules in ``requires`` that cannot be imported here."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    @property
    def available(self) -> bool:
        """Whether this model can be built in the current environment."""
        return not self.missing_requirements()


_TINY_MODELS: tuple[TinyModelSpec, ...] = (
    TinyModelSpec(
        name="qwen2vl",
        architecture="Qwen2VLForConditionalGeneration",
        stands_in_for="Qwen/Qwen2-VL-2B-Instruct",
        description="Qwen2-VL generator / VLM2Vec embedder backbone / MonoQwen2-VL reranker base.",
        factory="mmrag.testing.qwen2vl:make_qwen2vl",
        notes=(
            "Load with AutoProcessor.from_pretrained and Qwen2VLForConditionalGeneration (or "
            "AutoModelForImageTextToText).from_pretrained. Tiny vocabulary: read special ids "
            "from the tokenizer; 'True' and 'False' are single tokens. Real Qwen2-VL chat "
            "template. Image budget min_pixels=3136, max_pixels=12544 (a 100x80 image is "
            "grid [1, 8, 6], 12 image tokens). Greedy generation config, eos <|im_end|> or "
            "<|endoftext|>, pad <|endoftext|>."
        ),
    ),
    TinyModelSpec(
        name="colqwen2",
        architecture="ColQwen2ForRetrieval",
        stands_in_for="vidore/colqwen2-v1.0-hf",
        description="ColQwen2 multi-vector document embedder (128-d per token).",
        factory="mmrag.testing.qwen2vl:make_colqwen2",
        notes=(
            "Load with AutoProcessor.from_pretrained and ColQwen2ForRetrieval.from_pretrained "
            "(the class, not AutoModel). Same tiny Qwen2-VL backbone and image budget as "
            "qwen2vl: image tokens = prod(image_grid_thw) / 4."
        ),
    ),
    TinyModelSpec(
        name="colpali",
        architecture="ColPaliForRetrieval",
        stands_in_for="vidore/colpali-v1.3-hf",
        description="ColPali multi-vector document embedder on a tiny PaliGemma.",
        factory="mmrag.testing.colpali:make_colpali",
        notes=(
            "Load with AutoProcessor.from_pretrained and ColPaliForRetrieval.from_pretrained. "
            "Pages are resized to 56x56: a 4x4 grid, 16 image tokens (the real model: 32x32, "
            "1024)."
        ),
    ),
    TinyModelSpec(
        name="colmodernvbert",
        architecture="ColModernVBertForRetrieval",
        stands_in_for="ModernVBERT/colmodernvbert-merged",
        description="ColModernVBert multi-vector document embedder (ModernBERT + SigLIP).",
        factory="mmrag.testing.colmodernvbert:make_colmodernvbert",
        notes=(
            "Load with AutoProcessor.from_pretrained and "
            "ColModernVBertForRetrieval.from_pretrained (transformers-native weights of the "
            "real model: ModernVBERT/colmodernvbert-merged). Idefics3-style tiling: longest "
            "edge 128, 64x64 tiles of 4 image tokens, up to 2x2 tiles plus a global view."
        ),
    ),
    TinyModelSpec(
        name="idefics3",
        architecture="Idefics3ForConditionalGeneration",
        stands_in_for="HuggingFaceTB/SmolVLM-256M-Instruct",
        description="SmolVLM (v1) generator; SmolVLM v1 checkpoints are Idefics3 models.",
        factory="mmrag.testing.idefics3:make_idefics3",
        notes=(
            "Load with AutoProcessor.from_pretrained and AutoModelForImageTextToText (or "
            "Idefics3ForConditionalGeneration).from_pretrained. SmolVLM chat template; greedy "
            "generation config stopping at <end_of_utterance>. Longest edge 128, 64x64 tiles "
            "of 4 image tokens, up to 2x2 tiles plus a global view."
        ),
    ),
    TinyModelSpec(
        name="smolvlm",
        architecture="SmolVLMForConditionalGeneration",
        stands_in_for="HuggingFaceTB/SmolVLM2-256M-Video-Instruct",
        description="SmolVLM2 generator (SmolVLMProcessor with image and video processors).",
        factory="mmrag.testing.idefics3:make_smolvlm",
        notes=(
            "Load with AutoProcessor.from_pretrained and AutoModelForImageTextToText (or "
            "SmolVLMForConditionalGeneration).from_pretrained; SmolVLMProcessor needs the "
            "num2words package. Same sizes and generation config as idefics3."
        ),
        requires=("num2words",),
    ),
    TinyModelSpec(
        name="llava_next",
        architecture="LlavaNextForConditionalGeneration",
        stands_in_for="royokong/e5-v",
        description="LLaVA-NeXT with a Llama-3-style tokenizer: the E5-V embedder.",
        factory="mmrag.testing.llava_next:make_llava_next",
        notes=(
            "Load with AutoProcessor.from_pretrained and AutoModelForImageTextToText (or "
            "LlavaNextForConditionalGeneration).from_pretrained, then set "
            "processor.tokenizer.padding_side = 'left': save_pretrained does not keep the "
            "padding side, and E5-V pools the last token. Tiles of 56x56 (16 patches + CLS), "
            "grid pinpoints 56/112."
        ),
    ),
    TinyModelSpec(
        name="open_clip",
        architecture="CLIP",
        stands_in_for="ViT-B-32/laion2b_s34b_b79k",
        description="OpenCLIP dual encoder in open_clip's hub layout.",
        factory="mmrag.testing.open_clip:make_open_clip",
        notes=(
            "Load with open_clip.create_model_and_transforms('local-dir:' + path) and "
            "open_clip.get_tokenizer('local-dir:' + path) (the hf-hub: code path). 32x32 "
            "images, 32-d embeddings, SimpleTokenizer with context length 77."
        ),
    ),
)

_BY_NAME: dict[str, TinyModelSpec] = {spec.name: spec for spec in _TINY_MODELS}


def list_tiny_models() -> list[TinyModelSpec]:
    """All tiny models of the zoo, in build order.

    Example:
        >>> "llava_next" in [spec.name for spec in list_tiny_models()]
        True
    """
    return list(_TINY_MODELS)


def get_spec(name: str) -> TinyModelSpec:
    """The spec of the tiny model called ``name``.

    Raises:
        ValueError: ``name`` is not in the zoo; the message lists the names that are.

    Example:
        >>> get_spec("qwen2vl").architecture
        'Qwen2VLForConditionalGeneration'
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(
            f"Unknown tiny model {name!r}. Supported: {', '.join(_BY_NAME)}."
        ) from None


def _require(spec: TinyModelSpec) -> None:
    missing = spec.missing_requirements()
    if missing:
        raise ModuleNotFoundError(
            f"Tiny model {spec.name!r} needs {', '.join(missing)}: "
            f"install it with `pip install {' '.join(missing)}`."
        )


def make(name: str, seed: int = DEFAULT_SEED) -> TinyModel:
    """Build the tiny model ``name`` in memory (nothing is written).

    The same ``name`` and ``seed`` always give bit-identical weights; the caller's torch RNG
    state is left untouched.

    Example:
        >>> tiny = make("colqwen2")
        >>> type(tiny.model).__name__
        'ColQwen2ForRetrieval'
    """
    spec = get_spec(name)
    _require(spec)
    module_name, _, function_name = spec.factory.partition(":")
    factory = getattr(importlib.import_module(module_name), function_name)
    return factory(seed=seed)


def build(name: str, out_dir: Path, seed: int = DEFAULT_SEED) -> Path:
    """Build the tiny model ``name`` and save it, with its manifest, into ``out_dir`` itself.

    Returns ``out_dir``, ready for ``from_pretrained`` (or open_clip's ``local-dir:``).

    Example:
        >>> import tempfile
        >>> path = build("colpali", Path(tempfile.mkdtemp()) / "colpali")
        >>> (path / "mmrag_tiny.json").is_file()
        True
    """
    spec = get_spec(name)
    tiny = make(name, seed=seed)
    out_dir = tiny.save(Path(out_dir))
    manifest = TinyManifest(
        name=spec.name,
        architecture=spec.architecture,
        stands_in_for=spec.stands_in_for,
        seed=seed,
        notes=spec.notes,
    )
    write_manifest(out_dir, manifest)
    logger.info("Built tiny model %s into %s", name, out_dir)
    return out_dir


def build_all(
    out_dir: Path, names: list[str] | None = None, seed: int = DEFAULT_SEED
) -> dict[str, Path]:
    """Build tiny models into ``out_dir/<name>/`` and return ``{name: directory}``.

    With ``names=None`` every model whose requirements are installed is built (the others are
    skipped with a warning); names given explicitly must all be buildable.

    Example:
        >>> import tempfile
        >>> built = build_all(Path(tempfile.mkdtemp()), names=["open_clip"])
        >>> sorted(built)
        ['open_clip']
    """
    out_dir = Path(out_dir)
    if names is None:
        specs = []
        for spec in _TINY_MODELS:
            if spec.available:
                specs.append(spec)
            else:
                logger.warning(
                    "Skipping tiny model %s: missing %s",
                    spec.name,
                    ", ".join(spec.missing_requirements()),
                )
    else:
        specs = [get_spec(name) for name in names]
        for spec in specs:
            _require(spec)
    return {spec.name: build(spec.name, out_dir / spec.name, seed=seed) for spec in specs}
