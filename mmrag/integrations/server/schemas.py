"""Request and response bodies of the HTTP API (they document its OpenAPI schema)."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_METADATA = (
    "Your own fields for every file indexed (a JSON object): keys are identifiers (letters, "
    "digits, `_`, `-`), values strings, numbers, booleans or lists of them. Hits return them "
    "under `metadata`; search and ask filter on them (`filter`). A `<file>.meta.json` sidecar "
    "adds fields. They never choose the tenant: a `tenant` key is just another user field."
)

_FILTER = (
    "Conditions on the user metadata, all of which must hold: `key=value` (repeat a key to "
    "match any of its values), `key>=number`, `key<=number`. Values are typed like indexing "
    "typed them (`2024` a number, `true` a boolean, else a string)."
)


class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable error code, e.g. `not_found`.")
    message: str = Field(description="What went wrong, with which input, and what to do.")


class ErrorOut(BaseModel):
    """Every error response has this shape."""

    error: ErrorBody


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    auth_required: bool = Field(description="Whether /api/v1 needs an API key.")
    tenant: str | None = Field(
        None, description="The tenant of the key sent with this request, if it is a tenant's."
    )
    ask_available: bool = Field(description="Whether a generator is configured for /ask.")
    generator: str | None = Field(None, description="The generator's model, if any.")
    stand_ins: dict[str, str] = Field(
        default_factory=dict,
        description="The components running on tiny random test models (`mmrag.testing`'s, "
        "as the offline quickstart uses): role (`embedder`, `reranker`, `generator`) → the real "
        "model each stands in for. Their rankings and answers are meaningless. Empty: none.",
        examples=[{"embedder": "ModernVBERT/colmodernvbert-merged"}],
    )
    items: int | None = Field(
        description="Pages / frames in the index (a tenant's key: that tenant's; on a server "
        "with tenants, `null` without a valid key)."
    )
    max_upload_mb: float
    paths_allowed: bool = Field(description="Whether POST /index/path is enabled.")


class IndexPathIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields (`tenant` …) are errors

    path: str = Field(
        description="A file or directory on the server, inside one of the allowed roots "
        "(a relative path is taken relative to the first allowed root).",
        examples=["reports/2024"],
    )
    force: bool = Field(False, description="Re-index what is already stored.")
    metadata: dict[str, Any] | None = Field(
        None,
        description=_METADATA,
        examples=[{"dept": "hr", "year": 2024, "tags": ["policy", "leave"]}],
    )


class ProgressOut(BaseModel):
    files_total: int = Field(description="Files found for the job (0 until discovered).")
    files_done: int
    pages_done: int = Field(description="Pages / frames handled (indexed, skipped or failed).")
    pages_per_s: float
    current: str | None = Field(None, description="The file being indexed now.")
    fraction: float = Field(description="files_done / files_total (0 to 1).")


class JobOut(BaseModel):
    id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    inputs: list[str]
    progress: ProgressOut
    report: dict[str, Any] | None = Field(None, description="The IndexReport when finished.")
    error: str | None = Field(None, description="Why the job failed, if it did.")
    tenant: str | None = Field(None, description="The tenant whose key queued the job.")
    metadata: dict[str, Any] | None = Field(None, description="The user metadata it attaches.")
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None


class RegionOut(BaseModel):
    x0: float
    y0: float
    x1: float
    y1: float
    score: float = Field(
        description="patches: the part of the hit's score its query tokens found here; "
        "words: the share of the query's terms written in the box (0..1)."
    )
    kind: Literal["patches", "words"] = Field(
        "patches",
        description="What found the box: the embedder's patch vectors, or the page's words "
        "(OCR or a PDF text layer) holding the query's terms.",
    )


class HitOut(BaseModel):
    id: str
    score: float
    citation: str = Field(description="e.g. `report.pdf p.3` or `talk.mp4 @ 0:12.5`.")
    stage_scores: dict[str, float]
    item: dict[str, Any] = Field(description="The stored payload: source, page, timestamp …")
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="The item's user metadata (the fields given when it was indexed).",
    )
    image_url: str = Field(description="The page / frame image (GET).")
    regions: list[RegionOut] = Field(
        default_factory=list,
        description="The page regions that carry the match, best first: PDF points for PDF "
        "pages, pixels for images and frames (multi-vector embedders with a patch grid).",
    )


class SearchOut(BaseModel):
    query: str
    hits: list[HitOut]
    took_s: float


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields (`tenant` …) are errors

    question: str = Field(min_length=1, max_length=4000)
    k: int | None = Field(None, ge=1, le=100, description="Pages to cite (default: config).")
    plan: str | None = Field(None, description="Retrieval plan, e.g. `global@100 -> full@5`.")
    source: list[Annotated[str, Field(max_length=4096)]] | None = Field(
        None, description="Only these sources."
    )
    modality: list[Literal["pdf_page", "image", "video_frame", "text"]] | None = None
    filter: list[str] | None = Field(
        None, description=_FILTER, examples=[["dept=hr", "year>=2020"]]
    )


class AnswerOut(BaseModel):
    text: str
    citations: list[HitOut] = Field(description="The sources the answer cites.")
    sources: list[HitOut] = Field(description="Every page shown to the generator: [n] is n-th.")
    usage: dict[str, int]
    timings: dict[str, float] = Field(
        description="Seconds: load (when a model loaded for this answer), retrieve, rerank, "
        "generate, total."
    )
    notes: list[str] = Field(
        default_factory=list,
        description="How the answer was made, when the caller should know: fewer pages shown "
        "than `k` (the generator's max_images), or nothing retrieved (then no answer is "
        "generated and `text` says so).",
    )


class SourcesOut(BaseModel):
    sources: list[str] = Field(description="The sources (canonical paths or URIs), sorted.")
    counts: dict[str, int] = Field(
        default_factory=dict, description="Each source's number of pages / images / frames."
    )


class DeletedOut(BaseModel):
    source: str
    removed: int = Field(description="Items (pages / frames) removed from the index.")
