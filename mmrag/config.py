"""One pydantic model for the whole pipeline, loaded from TOML / JSON / dict, overridden by env.

Sections: ``[ingest]``, ``[embedder]``, ``[pooling]``, ``[store]``, ``[retrieval]``,
``[reranker]``, ``[generator]``, ``[ray]``. Components (embedder, reranker, generator) are
written as ``{type, init_parameters}``; secrets as environment-variable references, never as
values.

Environment variables prefixed ``MMRAG_`` override any value, with ``__`` between nested keys,
e.g. ``MMRAG_STORE__URL=http://qdrant:6333`` or ``MMRAG_INGEST__DPI=200``. They take precedence
over files and keyword arguments, so a deployment can change a setting without editing files.

Example:
    >>> from mmrag.config import PipelineConfig
    >>> cfg = PipelineConfig.from_dict({"store": {"path": "my_index"},
    ...                                 "retrieval": {"plan": "global@100 -> full@5"}})
    >>> cfg.store.backend, cfg.retrieval.plan
    ('embedded', 'global@100 -> full@5')
    >>> PipelineConfig.from_toml_string(cfg.to_toml()) == cfg
    True
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

import tomli_w
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mmrag.auth import Secret, is_secret_dict
from mmrag.errors import ConfigError
from mmrag.pipeline.ingest.options import IngestConfig
from mmrag.registry import resolve, validate_type
from mmrag.store.codecs import CODECS_HELP, FULL_POOL_HELP, merged_codecs
from mmrag.store.plan import parse_plan
from mmrag.store.token_index import TOKEN_INDEX_HELP

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "POOLING_VIEWS",
    "ComponentSpec",
    "IngestConfig",
    "PipelineConfig",
    "PoolingConfig",
    "RayConfig",
    "RetrievalConfig",
    "SecretField",
    "StoreConfig",
]

SecretField = Annotated[
    Secret,
    PlainValidator(Secret.coerce),
    PlainSerializer(lambda s: s.to_dict() if s.env_vars else _REDACTED, return_type=dict),
    WithJsonSchema(
        {
            "type": "object",
            "properties": {"type": {"const": "env_var"}, "env_vars": {"type": "array"}},
            "description": "An environment-variable reference; never a secret value.",
        }
    ),
]

#: Training-free pooling views of a multi-vector page (see ``mmrag/embedders/pooling.py``).
PoolingView = Literal[
    "global", "rows", "cols", "tiles", "smooth_rows", "hier", "distinct", "muvera"
]
POOLING_VIEWS: tuple[str, ...] = get_args(PoolingView)

#: The default answer model: a small VLM that reads page images and runs on a laptop CPU.
DEFAULT_GENERATOR_MODEL = "HuggingFaceTB/SmolVLM-256M-Instruct"

_REDACTED = {"type": "token", "value": "***"}
_SECRET_KEY = re.compile(r"(api_?key|token|password|passwd|secret)$", re.IGNORECASE)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ComponentSpec(_Section):
    """A component as data: ``{type, init_parameters}``.

    ``type`` is a registered short name (see :mod:`mmrag.registry`) or a dotted import path.

    Example:
        >>> from mmrag.config import ComponentSpec
        >>> spec = ComponentSpec(type="colqwen2",
        ...                      init_parameters={"model": "vidore/colqwen2-v1.0-hf"})
        >>> spec.model_dump()
        {'type': 'colqwen2', 'init_parameters': {'model': 'vidore/colqwen2-v1.0-hf'}}
    """

    kind: ClassVar[str] = ""
    type: str
    init_parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str | None) -> str | None:
        return validate_type(cls.kind, value) if cls.kind and value is not None else value

    def resolved_type(self) -> str:
        """The registry name (or import path) of the class :meth:`build` constructs."""
        assert self.type is not None
        return self.type

    def build(self) -> Any:
        """Import the component class and construct it (cheap: models load lazily)."""
        params = {
            k: Secret.coerce(v) if is_secret_dict(v) else v for k, v in self.init_parameters.items()
        }
        return resolve(self.kind, self.resolved_type())(**params)


class EmbedderSpec(ComponentSpec):
    """The ``[embedder]`` section: a ``type`` (family) and its ``init_parameters``, or just a
    ``model`` (a catalogue name, Hugging Face id or local folder) whose family is read from the
    checkpoint when the embedder is built (:func:`mmrag.embedders.infer_family`).

    Example:
        >>> from mmrag.config import EmbedderSpec
        >>> spec = EmbedderSpec.model_validate({"model": "vidore/colqwen2-v1.0-hf"})
        >>> spec.type, spec.init_parameters, spec.resolved_type()
        (None, {'model': 'vidore/colqwen2-v1.0-hf'}, 'colqwen2')
    """

    kind: ClassVar[str] = "embedder"
    type: str | None = None  # type: ignore[assignment]

    @model_validator(mode="before")
    @classmethod
    def _model_shorthand(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "model" not in data:
            return data
        data = dict(data)
        model = data.pop("model")
        params = dict(data.get("init_parameters") or {})
        if params.get("model", model) != model:
            raise ValueError("give the model once: [embedder] model or init_parameters.model")
        data["init_parameters"] = {**params, "model": model}
        return data

    @model_validator(mode="after")
    def _type_or_model(self) -> EmbedderSpec:
        if self.type is None and not self.init_parameters.get("model"):
            raise ValueError(
                "give the embedder's model (a catalogue name, Hugging Face id or local folder; "
                "its family is read from the checkpoint) or its type"
            )
        return self

    def resolved_type(self) -> str:
        """``type``, else the family read from the model's checkpoint (catalogue, local folder,
        Hugging Face cache, or one Hub request; offline and uncached raises
        :class:`~mmrag.errors.ModelNotAvailableError`)."""
        if self.type is not None:
            return self.type
        from mmrag.embedders import infer_family

        params = self.init_parameters
        return infer_family(str(params["model"]), params.get("revision"))


class RerankerSpec(ComponentSpec):
    """The ``[reranker]`` section."""

    kind: ClassVar[str] = "reranker"


class GeneratorSpec(ComponentSpec):
    """The ``[generator]`` section."""

    kind: ClassVar[str] = "generator"


class MuveraConfig(_Section):
    """MUVERA fixed-dimensional encoding parameters (fastembed's ``Muvera``)."""

    k_sim: int = Field(5, ge=1, le=10)
    dim_proj: int = Field(16, ge=1)
    r_reps: int = Field(20, ge=1)
    seed: int = 42


class PoolingConfig(_Section):
    """Which training-free pooled views of multi-vector pages are stored (each a named vector)."""

    views: list[PoolingView] = Field(default_factory=lambda: ["global", "distinct"])
    tile_size: int = Field(4, ge=1, description="Tile side, in patches, for the `tiles` view.")
    window: int = Field(3, ge=1, description="Rows averaged by the `smooth_rows` view.")
    pool_factor: int = Field(3, ge=1, description="Token reduction of the `hier` view.")
    full_pool_factor: int = Field(3, ge=1, description=FULL_POOL_HELP)
    token_index: bool = Field(True, description=TOKEN_INDEX_HELP)
    muvera: MuveraConfig = Field(default_factory=MuveraConfig)
    seed: int = 0


class StoreConfig(_Section):
    """Where vectors live: an embedded Qdrant folder (default) or a Qdrant server URL."""

    backend: Literal["embedded", "server"] = "embedded"
    path: str = Field("mmrag_index", description="Folder of the embedded store.")
    url: str | None = Field(None, description="Qdrant server URL for the `server` backend.")
    api_key: SecretField | None = Field(
        default_factory=lambda: Secret.from_env_var("QDRANT_API_KEY", strict=False)
    )
    prefer_grpc: bool = False
    timeout_s: float = Field(30.0, gt=0)
    retries: int = Field(
        5,
        ge=0,
        description="Server backend: retry a call that cannot reach the server this many times.",
    )
    retry_backoff_s: float = Field(
        0.5,
        gt=0,
        description="Server backend: first wait between retries; doubles each time (max 30 s).",
    )
    collection: str = Field("mmrag", pattern=r"^[A-Za-z0-9_\-]{1,128}$")
    assets: str | None = Field(
        None, description="fsspec URL of the page-image asset store (default: <path>/assets)."
    )
    asset_format: Literal["png", "jpeg"] = Field(
        "png",
        description="Page images as lossless PNG, or JPEG (about 10x faster to write and "
        "smaller; what rerankers and generators see is then slightly lossy).",
    )
    asset_quality: int = Field(90, ge=1, le=95, description="JPEG quality of page images.")
    shard_number: int | None = Field(
        None,
        ge=1,
        description="Shards of a new collection on a Qdrant cluster (default: the server's, "
        "one per node). Set when the collection is created; ignored by the embedded store.",
    )
    replication_factor: int | None = Field(
        None,
        ge=1,
        description="Copies of each shard on a Qdrant cluster (2 or more survives losing a "
        "node; default: the server's, 1). Set when the collection is created.",
    )
    codecs: Annotated[dict[str, str], AfterValidator(merged_codecs)] = Field(
        default_factory=dict, validate_default=True, description=CODECS_HELP
    )


class RetrievalConfig(_Section):
    """The retrieval plan in arrow syntax (see :mod:`mmrag.store.plan`) and the answer size."""

    plan: str = "tokens@128 -> distinct@32 -> full@10"
    top_k: int = Field(5, ge=1)
    hybrid: bool = Field(False, description="Fuse the text channel with RRF.")
    hnsw_ef: int | None = Field(
        None, ge=1, description="HNSW search width of HNSW stages (default: the engine's)."
    )

    @field_validator("plan")
    @classmethod
    def _valid_plan(cls, value: str) -> str:
        return str(parse_plan(value))


class RayConfig(_Section):
    """The ``[ray]`` section: how ``mmrag index --engine ray`` spreads the job over a Ray cluster.

    Files are listed in one Ray task each, pages rendered in parallel tasks, embedded by a pool
    of actors (each holding the model, with ``gpus_per_actor`` GPUs), and written to a Qdrant
    server by parallel writers (each with its own client), or, for the embedded store, by the
    driver. See :func:`mmrag.integrations.ray.index_with_ray`.

    Example:
        >>> from mmrag.config import PipelineConfig
        >>> cfg = PipelineConfig.from_dict({"ray": {"address": "auto", "num_embed_actors": 4,
        ...                                         "gpus_per_actor": 1}})
        >>> cfg.ray.address, cfg.ray.num_embed_actors, cfg.ray.gpus_per_actor
        ('auto', 4, 1.0)
    """

    address: str | None = Field(
        None,
        description="Ray cluster to join: 'auto' (the cluster this machine belongs to), "
        "'ray://head:10001' (Ray Client), or a GCS address 'head:6379'. None: the cluster of "
        "$RAY_ADDRESS if set, else a Ray instance started on this machine for the job.",
    )
    num_embed_actors: int = Field(
        1, ge=1, description="Embedding actors, each holding one copy of the model."
    )
    gpus_per_actor: float = Field(
        0.0, ge=0, description="GPUs per embedding actor (0: CPU; 0.5: two actors per GPU)."
    )
    cpus_per_actor: float = Field(1.0, gt=0, description="CPUs reserved per embedding actor.")
    render_concurrency: int | None = Field(
        None,
        ge=1,
        description="Most ingest tasks (listing a file, rendering a batch of pages) running at "
        "once; None: as many as the cluster's CPUs allow.",
    )
    cpus_per_task: float = Field(
        1.0, gt=0, description="CPUs reserved per ingest task (listing or rendering)."
    )
    batch_size: int = Field(
        16, ge=1, description="Pages per batch passed between stages (render, embed, write)."
    )
    write_concurrency: int = Field(
        2,
        ge=1,
        description="Parallel writers to a Qdrant server, each with its own client (the "
        "embedded store is written by the driver alone).",
    )
    cpus_per_writer: float = Field(0.25, gt=0, description="CPUs reserved per writer.")


class PipelineConfig(BaseSettings):
    """The whole pipeline's configuration.

    Example:
        >>> from mmrag.config import PipelineConfig
        >>> cfg = PipelineConfig()
        >>> cfg.embedder.type, cfg.store.backend
        ('colmodernvbert', 'embedded')
    """

    model_config = SettingsConfigDict(
        env_prefix="MMRAG_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
        nested_model_default_partial_update=True,
    )

    ingest: IngestConfig = Field(default_factory=IngestConfig)
    embedder: EmbedderSpec = Field(
        default_factory=lambda: EmbedderSpec(
            type="colmodernvbert", init_parameters={"model": "ModernVBERT/colmodernvbert-merged"}
        )
    )
    pooling: PoolingConfig = Field(default_factory=PoolingConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    reranker: RerankerSpec | None = None
    text_reranker: RerankerSpec | None = Field(
        None,
        description="The cross-encoder of a plan's `text_rerank@K` stage (default: "
        "type 'text', BAAI/bge-reranker-v2-m3).",
    )
    generator: GeneratorSpec | None = Field(
        default_factory=lambda: GeneratorSpec(
            type="transformers", init_parameters={"model": DEFAULT_GENERATOR_MODEL}
        ),
        description="The answer generator (default: SmolVLM-256M-Instruct, a small local VLM).",
    )
    ray: RayConfig = Field(default_factory=RayConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first: MMRAG_* overrides files and keyword arguments alike.
        return (env_settings, init_settings)

    # -- loading ---------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineConfig:
        """Validate a plain dict; errors name the key and the allowed values."""
        try:
            return cls(**dict(data))
        except ValidationError as exc:
            raise ConfigError(_explain(exc)) from None

    @classmethod
    def from_toml_string(cls, text: str) -> PipelineConfig:
        """Parse a TOML document."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> PipelineConfig:
        """Load a ``.toml`` or ``.json`` file, then apply ``MMRAG_*`` environment overrides."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
        try:
            if path.suffix.lower() == ".json":
                return cls.from_dict(json.loads(text))
            return cls.from_toml_string(text)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON: {exc}") from None

    # -- saving ----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON/TOML-safe dict (``None`` left out). Refuses to include secret values."""
        data = _drop_none(self.model_dump(mode="json"))
        _refuse_plain_secrets(data, "")
        return data

    def to_toml(self) -> str:
        """The config as a TOML document that :meth:`from_toml_string` reads back unchanged."""
        return tomli_w.dumps(self.to_dict())

    def save(self, path: str | Path) -> Path:
        """Write ``.toml`` (or ``.json`` by suffix) to ``path``; returns the path."""
        path = Path(path)
        text = (
            json.dumps(self.to_dict(), indent=2) + "\n"
            if path.suffix.lower() == ".json"
            else self.to_toml()
        )
        path.write_text(text, encoding="utf-8")
        return path


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _refuse_plain_secrets(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{where}.{key}" if where else key
            if item == _REDACTED:
                raise ConfigError(
                    f"{here}: a secret given as a token cannot be saved; use "
                    "Secret.from_env_var(...) so only the variable's name is written"
                )
            if _SECRET_KEY.search(str(key)) and isinstance(item, str):
                raise ConfigError(
                    f"{here}: refusing to save a secret value; reference an environment "
                    f'variable instead, e.g. {key} = {{type = "env_var", env_vars = ["MY_KEY"]}}'
                )
            _refuse_plain_secrets(item, here)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_plain_secrets(item, f"{where}[{i}]")


def _explain(exc: ValidationError) -> str:
    """Turn pydantic's errors into one line per problem: ``key: what is wrong (allowed: …)``."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(err["loc"][:-1])
            message = "unknown key" + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
        elif err["type"] != "value_error" and not isinstance(err.get("input"), dict | list):
            message = f"{message} (got {err['input']!r})"
        lines.append(f"{loc}: {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: Any = PipelineConfig
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = field.annotation
        args = getattr(model, "__args__", None)
        if args:  # Optional[Section]
            model = next((a for a in args if hasattr(a, "model_fields")), None)
    return list(getattr(model, "model_fields", {}))
