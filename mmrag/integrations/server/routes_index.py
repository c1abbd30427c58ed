"""The indexing routes: upload files or name a server path to index (each queues a job), the
jobs' status, the sources in the index and deleting one."""

import os
import re
import shutil
import uuid
from pathlib import Path

from fastapi import FastAPI, File, HTTPException, Query, UploadFile

from mmrag.integrations.server.schemas import DeletedOut, IndexPathIn, JobOut, SourcesOut
from mmrag.integrations.server.service import API_PREFIX, Service, megabytes

__all__ = ["install_index_routes"]

_CHUNK = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()+-]")


def install_index_routes(app: FastAPI, service: Service) -> None:
    """``POST /index``, ``POST /index/path``, ``GET /jobs[/{id}]``, ``GET|DELETE /sources``."""
    prefix = API_PREFIX

    @app.post(f"{prefix}/index", response_model=JobOut, status_code=202, tags=["index"])
    def index_upload(
        files: list[UploadFile] = File(description="PDFs, images or videos to index."),
        force: bool = Query(False, description="Re-index what is already stored."),
    ) -> JobOut:
        """Upload files and queue a job that indexes them; poll `GET /jobs/{id}`."""
        if not files:
            raise HTTPException(400, "no files were uploaded; send them as multipart `files`")
        service.upload_dir.mkdir(parents=True, exist_ok=True)
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
                final = service.upload_dir / path.name
                os.replace(path, final)
                finals.append(str(final))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        service.ready()
        return service.jobs.submit(list(dict.fromkeys(finals)), force=force).to_out()

    @app.post(f"{prefix}/index/path", response_model=JobOut, status_code=202, tags=["index"])
    def index_path(body: IndexPathIn) -> JobOut:
        """Queue a job that indexes a file or directory on the server (inside allowed roots)."""
        if not service.allowed_roots:
            raise HTTPException(
                403,
                "indexing server paths is disabled; start the server with --allow-path DIR "
                "(or allowed_roots=[...]) to allow a directory",
            )
        raw = body.path.strip()
        if not raw or "\x00" in raw:
            raise HTTPException(400, "path must be a non-empty file or directory path")
        if ".." in Path(raw).parts:
            raise HTTPException(400, f"{raw}: '..' is not allowed in paths")
        if any(ch in raw for ch in "*?["):
            raise HTTPException(400, f"{raw}: glob patterns are not accepted; name a directory")
        candidate = Path(raw).expanduser()
        if not candidate.is_absolute():
            candidate = service.allowed_roots[0] / candidate
        refusal = service.check_path(str(candidate))
        if refusal is not None:
            raise HTTPException(403, refusal)
        if not candidate.exists():
            raise HTTPException(404, f"{raw}: no such file or directory on the server")
        service.ready()
        job = service.jobs.submit([str(candidate)], force=body.force, check=service.check_path)
        return job.to_out()

    @app.get(f"{prefix}/jobs", response_model=list[JobOut], tags=["index"])
    def list_jobs() -> list[JobOut]:
        """Every remembered indexing job, newest first."""
        return [job.to_out() for job in service.jobs.all()]

    @app.get(f"{prefix}/jobs/{{job_id}}", response_model=JobOut, tags=["index"])
    def get_job(job_id: str) -> JobOut:
        """An indexing job's status, progress and (when finished) report."""
        job = service.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no indexing job {job_id!r} (jobs are kept in memory)")
        return job.to_out()

    @app.get(f"{prefix}/sources", response_model=SourcesOut, tags=["index"])
    def sources() -> SourcesOut:
        """The sources (files) in the index."""
        return SourcesOut(sources=service.ready().sources())

    @app.delete(f"{prefix}/sources", response_model=DeletedOut, tags=["index"])
    def delete_source(
        source: str = Query(min_length=1, description="The source, as GET /sources lists it."),
    ) -> DeletedOut:
        """Remove a source's pages / frames and their images (and its uploaded file)."""
        pipe = service.ready()
        if source not in pipe.sources():
            raise HTTPException(404, f"{source}: not in the index (see GET {prefix}/sources)")
        removed = pipe.delete(source)
        uploaded = Path(source)
        if uploaded.parent == service.upload_dir and uploaded.is_file():
            uploaded.unlink()
        return DeletedOut(source=source, removed=removed)


def _safe_name(filename: str | None) -> str:
    """A plain file name for an upload: no directories, no leading dots, no odd characters."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    clean = _UNSAFE.sub("_", base).strip(" .")[:200]
    if not clean or clean in {".", ".."}:
        raise HTTPException(400, f"upload file name {filename!r} is empty or not usable")
    return clean
