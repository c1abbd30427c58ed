"""The indexing routes: upload files or name a server path to index (each queues a job), the
jobs' status, the sources in the index and deleting one.

Every route acts for the caller's tenant (:func:`~mmrag.integrations.server.service.caller`):
uploads go to the tenant's upload folder and are indexed as the tenant's; jobs, sources and
deletes are the tenant's only. The admin key (tenant ``None``) sees and manages everything.
"""

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, UploadFile

from mmrag.integrations.server.schemas import DeletedOut, IndexPathIn, JobOut, SourcesOut
from mmrag.integrations.server.service import API_PREFIX, Service, caller, megabytes
from mmrag.types import canonical_source, check_metadata

__all__ = ["MAX_PATH_CHARS", "check_path_length", "install_index_routes", "shown"]

_CHUNK = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()+-]")

#: The longest path or source a request may name (Linux PATH_MAX), and the longest name in it
#: (NAME_MAX, in bytes): longer ones are refused with 400 before touching the file system.
MAX_PATH_CHARS = 4096
MAX_NAME_BYTES = 255

_METADATA_FORM = (
    'Your own fields for every file, as a JSON object, e.g. `{"dept": "hr", "year": 2024}`: '
    "keys are identifiers (letters, digits, `_`, `-`), values strings, numbers, booleans or "
    "lists of them. Filter on them with `filter=dept=hr` (search) or `filter` (ask)."
)


def install_index_routes(app: FastAPI, service: Service) -> None:
    """``POST /index``, ``POST /index/path``, ``GET /jobs[/{id}]``, ``GET|DELETE /sources``."""
    prefix = API_PREFIX

    @app.post(f"{prefix}/index", response_model=JobOut, status_code=202, tags=["index"])
    def index_upload(
        files: list[UploadFile] = File(
            description="PDFs, images, videos, .txt / .md / .html files or Office documents "
            "(converted with LibreOffice where the server has it) to index."
        ),
        metadata: str | None = Form(None, description=_METADATA_FORM),
        force: bool = Query(False, description="Re-index what is already stored."),
        tenant: str | None = Depends(caller),
    ) -> JobOut:
        """Upload files and queue a job that indexes them; poll `GET /jobs/{id}`.

        The files are kept in your own upload folder (a file of the same name replaces yours,
        never another tenant's) and indexed as yours; `metadata` (a JSON object) is attached
        to every page of them.
        """
        fields = _parse_metadata(metadata)
        if not files:
            raise HTTPException(400, "no files were uploaded; send them as multipart `files`")
        folder = service.uploads_for(tenant)
        folder.mkdir(parents=True, exist_ok=True)
        staging = service.upload_dir / f".incoming-{uuid.uuid4().hex}"
        staging.mkdir()
        saved: list[Path] = []
        try:
            names = [_safe_name(f.filename) for f in files]
            total = 0
            for upload, name in zip(files, names, strict=True):
                target = staging / name
                with target.open("wb") as out:
                    while chunk := upload.file.read(_CHUNK):
                        total += len(chunk)
                        if total > service.max_upload_bytes:
                            raise HTTPException(
                                413,
                                f"{upload.filename}: the upload is larger than the limit of "
                                f"{megabytes(service.max_upload_bytes)} MB",
                            )
                        out.write(chunk)
                saved.append(target)
            finals = []
            for path in saved:  # new versions of a file replace the old (and its index points)
                final = folder / path.name
                if final.is_dir():
                    raise HTTPException(409, f"{path.name}: that name is taken by a folder")
                os.replace(path, final)
                finals.append(str(final))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        service.ready()
        job = service.jobs.submit(
            list(dict.fromkeys(finals)), force=force, tenant=tenant, metadata=fields
        )
        return job.to_out()

    @app.post(f"{prefix}/index/path", response_model=JobOut, status_code=202, tags=["index"])
    def index_path(body: IndexPathIn, tenant: str | None = Depends(caller)) -> JobOut:
        """Queue a job that indexes a file or directory on the server (inside allowed roots),
        as yours, with the body's `metadata` attached to every page.

        A tenant may not index another tenant's uploads (nor the admin's)."""
        if not service.allowed_roots:
            raise HTTPException(
                403,
                "indexing server paths is disabled; start the server with --allow-path DIR "
                "(or allowed_roots=[...]) to allow a directory",
            )
        fields = _checked(body.metadata) if body.metadata is not None else None
        raw = body.path.strip()
        if not raw or "\x00" in raw:
            raise HTTPException(400, "path must be a non-empty file or directory path")
        check_path_length(raw, "path")
        if ".." in Path(raw).parts:
            raise HTTPException(400, f"{shown(raw)}: '..' is not allowed in paths")
        if any(ch in raw for ch in "*?["):
            raise HTTPException(
                400, f"{shown(raw)}: glob patterns are not accepted; name a directory"
            )
        candidate = Path(raw).expanduser()
        if not candidate.is_absolute():
            candidate = service.allowed_roots[0] / candidate
        check_path_length(str(candidate), "path")
        try:
            refusal = service.check_path(str(candidate), tenant)
            exists = candidate.exists()
        except OSError as error:  # e.g. ENAMETOOLONG on a file system with shorter limits
            raise HTTPException(
                400, f"{shown(raw)}: not a usable path on the server ({error.strerror or error})"
            ) from error
        if refusal is not None:
            raise HTTPException(403, refusal)
        if not exists:
            raise HTTPException(404, f"{shown(raw)}: no such file or directory on the server")
        service.ready()
        job = service.jobs.submit(
            [str(candidate)],
            force=body.force,
            check=service.path_check(tenant),
            tenant=tenant,
            metadata=fields,
            hide=service.foreign_uploads(tenant),
        )
        return job.to_out()

    @app.get(f"{prefix}/jobs", response_model=list[JobOut], tags=["index"])
    def list_jobs(tenant: str | None = Depends(caller)) -> list[JobOut]:
        """Your remembered indexing jobs, newest first (the admin key: everyone's)."""
        return [job.to_out() for job in service.jobs.all(tenant=tenant)]

    @app.get(f"{prefix}/jobs/{{job_id}}", response_model=JobOut, tags=["index"])
    def get_job(job_id: str, tenant: str | None = Depends(caller)) -> JobOut:
        """An indexing job's status, progress and (when finished) report (yours only)."""
        job = service.jobs.get(job_id, tenant=tenant)
        if job is None:
            raise HTTPException(404, f"no indexing job {job_id!r} (jobs are kept in memory)")
        return job.to_out()

    @app.get(f"{prefix}/sources", response_model=SourcesOut, tags=["index"])
    def sources(tenant: str | None = Depends(caller)) -> SourcesOut:
        """Your sources (files) in the index and each one's number of pages / frames (the
        admin key: every tenant's)."""
        counts = service.ready().source_counts(tenant=tenant)
        ordered = sorted(counts)
        return SourcesOut(sources=ordered, counts={s: counts[s] for s in ordered})

    @app.delete(f"{prefix}/sources", response_model=DeletedOut, tags=["index"])
    def delete_source(
        source: str = Query(min_length=1, description="The source, as GET /sources lists it."),
        tenant: str | None = Depends(caller),
    ) -> DeletedOut:
        """Remove a source's pages / frames and their images (yours only), and its uploaded
        file when it is in your upload folder. 404 when it is not one of your sources."""
        check_path_length(source, "source")
        pipe = service.ready()
        canonical = canonical_source(source)
        removed = pipe.delete(canonical, tenant=tenant)  # the caller's points only
        if not removed:
            raise HTTPException(
                404, f"{shown(source)}: not in the index (see GET {prefix}/sources)"
            )
        uploaded = Path(canonical)
        folders = {service.uploads_for(tenant)}
        if tenant is None:  # the admin: its own uploads and any tenant's
            folders |= {service.uploads_for(t) for t in service.tenants}
        if uploaded.parent in folders and uploaded.is_file():
            uploaded.unlink()
        return DeletedOut(source=source, removed=removed)


def shown(text: str, most: int = 120) -> str:
    """``text`` for a message: cut in the middle when longer than ``most`` characters."""
    if len(text) <= most:
        return text
    return f"{text[: most // 2]}…{text[-most // 3 :]} ({len(text):,} characters)"


def check_path_length(text: str, what: str = "path") -> None:
    """Refuse (400) a path or source longer than :data:`MAX_PATH_CHARS` characters, or with a
    name in it longer than :data:`MAX_NAME_BYTES` bytes: no file system has such a file, and
    asking it raises ``File name too long``."""
    if len(text) > MAX_PATH_CHARS:
        raise HTTPException(
            400,
            f"{what} is too long: {len(text):,} characters (at most {MAX_PATH_CHARS:,}): "
            f"{shown(text, 60)}",
        )
    if "://" in text:  # a URI source (memory://…, https://…) is not a file-system path
        return
    longest = max(
        (len(part.encode("utf-8", "surrogatepass")) for part in Path(text).parts), default=0
    )
    if longest > MAX_NAME_BYTES:
        raise HTTPException(
            400,
            f"{what} has a name of {longest:,} bytes; a file or folder name has at most "
            f"{MAX_NAME_BYTES} bytes: {shown(text, 60)}",
        )


def _parse_metadata(text: str | None) -> dict[str, Any] | None:
    """The ``metadata`` form field: a JSON object of user fields, checked (400 otherwise)."""
    if text is None or not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise HTTPException(
            400, f'metadata must be a JSON object such as {{"dept": "hr"}}: {error}'
        ) from error
    return _checked(value)


def _checked(value: Any) -> dict[str, Any]:
    """``value`` checked as user metadata (:func:`~mmrag.types.check_metadata`; 400 if not)."""
    if not isinstance(value, dict):
        raise HTTPException(
            400, f"metadata must be a JSON object of fields, got {type(value).__name__}"
        )
    try:
        return check_metadata(value)
    except ValueError as error:
        raise HTTPException(400, str(error)) from error


def _safe_name(filename: str | None) -> str:
    """A plain file name for an upload: no directories, no leading dots, no odd characters."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    clean = _UNSAFE.sub("_", base).strip(" .")[:200]
    if not clean or clean in {".", ".."}:
        raise HTTPException(400, f"upload file name {filename!r} is empty or not usable")
    return clean
