"""What a family is, as data: :class:`FamilySpec` and the :class:`ModelDescription` it lists.

A family's facts are written once, in its spec (one small module per family in
:mod:`mmrag.embedders.families`): its name, its vector kind, the embedder class that runs it, the
``model_type`` values of the checkpoints it loads, and its catalogue entries. Everything else is
derived from the specs: the registry's embedder names, the catalogue, family detection and each
class's ``family`` / ``kind``. This module imports nothing heavy.

Example:
    >>> from mmrag.embedders.families.spec import FamilySpec, ModelDescription
    >>> spec = FamilySpec(
    ...     name="toy",
    ...     kind="multi",
    ...     target="my_pkg.toy:ToyEmbedder",
    ...     model_types=("toy",),
    ...     catalogue=(
    ...         ModelDescription(name="me/toy", dim=8, params="1M", license="MIT", source="-"),
    ...     ),
    ... )
    >>> spec.catalogue[0].family, spec.catalogue[0].kind
    ('toy', 'multi')
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from mmrag.embedders.base import ModelEmbedder

__all__ = ["FamilySpec", "ModelDescription"]


@dataclass(frozen=True, kw_only=True)
class ModelDescription:
    """One catalogue entry.

    ``name`` is what users pass (a Hugging Face id, or ``ARCH/PRETRAINED`` for open_clip);
    ``base_model`` is set for adapters (LoRA) that load on top of another checkpoint.
    ``family`` and ``kind`` are filled in by the :class:`FamilySpec` that lists the entry; they
    are never written in the entry itself.
    """

    name: str
    family: str = ""
    kind: Literal["single", "multi"] | None = None
    dim: int
    params: str
    license: str
    source: str
    base_model: str | None = None
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for ``mmrag info`` and JSON output)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class FamilySpec:
    """The single definition of an embedder family.

    Attributes:
        name: The family name: the registry name (``[embedder] type``) and the prefix of
            every embedder id.
        kind: ``single`` (one vector per item) or ``multi`` (one vector per token / patch).
        target: The embedder class, ``"module:Class"``, imported only when it is needed.
        model_types: The ``model_type`` values in the ``config.json`` of the checkpoints the
            family loads (how :func:`mmrag.embedders.detect_family` recognises a local folder).
        marker_files: Files whose presence marks a local checkpoint folder of this family
            (for checkpoints without a transformers ``config.json``, e.g. open_clip's).
        catalogue: The family's published checkpoints.
    """

    name: str
    kind: Literal["single", "multi"]
    target: str
    model_types: tuple[str, ...] = ()
    marker_files: tuple[str, ...] = ()
    catalogue: tuple[ModelDescription, ...] = ()

    def __post_init__(self) -> None:
        module, _, attr = self.target.partition(":")
        if not module or not attr:
            raise ValueError(
                f"family {self.name!r}: target must be 'module:Class', got {self.target!r}"
            )
        entries = []
        for entry in self.catalogue:
            if entry.family or entry.kind is not None:
                raise ValueError(
                    f"catalogue entry {entry.name!r} of family {self.name!r} names its own family "
                    "or kind; leave both out, the FamilySpec fills them in"
                )
            entries.append(dataclasses.replace(entry, family=self.name, kind=self.kind))
        object.__setattr__(self, "catalogue", tuple(entries))

    def model_types_text(self) -> str:
        """The accepted ``model_type`` values, for messages: ``'colpali'`` (``'a' or 'b'``)."""
        return " or ".join(repr(model_type) for model_type in self.model_types) or "none"

    def load_class(self) -> type[ModelEmbedder]:
        """Import and return the family's embedder class (this may import heavy modules)."""
        module, _, attr = self.target.partition(":")
        cls: type[ModelEmbedder] = getattr(importlib.import_module(module), attr)
        return cls
