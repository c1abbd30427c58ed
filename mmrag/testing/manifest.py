"""The ``mmrag_tiny.json`` manifest written beside every tiny model.

It says what a directory holds and what real checkpoint it stands in for, so a test or a loader
can check it was handed the model it expects, and read the notes on loading it.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> d = Path(tempfile.mkdtemp())
    >>> m = TinyManifest("qwen2vl", "Qwen2VLForConditionalGeneration",
    ...                  "Qwen/Qwen2-VL-2B-Instruct", seed=0, notes="")
    >>> read_manifest(write_manifest(d, m)) == m
    True
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

#: File name of the manifest inside a tiny model's directory.
MANIFEST_NAME = "mmrag_tiny.json"


@dataclass(frozen=True)
class TinyManifest:
    """What a tiny model directory holds.

    Attributes:
        name: The zoo name (``qwen2vl``, ``colpali``, ...).
        architecture: The model class name (``Qwen2VLForConditionalGeneration``, ``CLIP``).
        stands_in_for: The real checkpoint id it imitates (``Qwen/Qwen2-VL-2B-Instruct``).
        seed: The seed its weights were drawn with.
        notes: Loading notes (e.g. a padding side that ``save_pretrained`` does not keep).

    Example:
        >>> TinyManifest("open_clip", "CLIP", "ViT-B-32/laion2b_s34b_b79k", 0, "").name
        'open_clip'
    """

    name: str
    architecture: str
    stands_in_for: str
    seed: int
    notes: str


def write_manifest(model_dir: Path, manifest: TinyManifest) -> Path:
    """Write ``manifest`` to ``model_dir/mmrag_tiny.json`` and return the directory."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(asdict(manifest), indent=2, sort_keys=False) + "\n"
    (model_dir / MANIFEST_NAME).write_text(text, encoding="utf-8")
    return model_dir


def read_manifest(model_dir: Path) -> TinyManifest:
    """Read the manifest of a tiny model directory.

    Raises:
        FileNotFoundError: ``model_dir`` has no manifest (it was not built by ``mmrag.testing``).
    """
    path = Path(model_dir) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: {model_dir} is not a tiny model directory. "
            "Build one with `python -m mmrag.testing build DIR`."
        )
    return TinyManifest(**json.loads(path.read_text(encoding="utf-8")))
