"""What runs inside a PDF render worker process (see :mod:`mmrag.pipeline.ingest.pdf_pool`).

A worker reads tasks from its pipe (:func:`serve`), keeps the last document it opened, renders
the pages it is asked for with the same :func:`~mmrag.pipeline.ingest.pdf.render_page` as the
in-process path, and writes the RGB samples into the shared-memory slot named in the task, so
only a few bytes of metadata (and the text layer) travel back through the pipe.
"""

from __future__ import annotations

import sys

# Workers only render. PyMuPDF imports its optional layout-analysis package (ONNX models) when
# it is installed, which adds over a second to every worker start and is never used here; skip it
# when this module is the first to import PyMuPDF in the process (spawn / forkserver workers).
if "pymupdf" not in sys.modules:
    sys.modules.setdefault("pymupdf.layout", None)  # type: ignore[arg-type]

import signal
from multiprocessing import shared_memory
from multiprocessing.connection import Connection

import pymupdf

from mmrag.pipeline.ingest._files import FileStamp
from mmrag.pipeline.ingest.errors import CorruptFileError, IngestError
from mmrag.pipeline.ingest.pdf_open import open_pdf
from mmrag.pipeline.ingest.pdf_render import (
    MUPDF_ERRORS,
    PageRender,
    RenderSpec,
    pixmap_samples,
    render_page,
    trim_cache,
)

__all__ = ["RenderResult", "render_task", "serve"]

#: (what was found, the samples if they did not fit the slot, whether the slot holds them, the
#: samples' row stride in bytes)
RenderResult = tuple[PageRender, bytes | None, bool, int]

_open: tuple[tuple[str, FileStamp | None], pymupdf.Document] | None = None
_rendered = 0  # pages this worker rendered, for trim_cache
_slots: dict[str, shared_memory.SharedMemory] = {}
_MAX_ATTACHED = 64


def _document(path: str, password: str | None, stamp: FileStamp | None) -> pymupdf.Document:
    global _open
    key = (path, stamp)
    if _open is not None and _open[0] == key:
        return _open[1]
    if _open is not None:
        _open[1].close()
        _open = None
    # The parent opened the file first: it reported truncation and repairs, and refused what
    # it had to refuse.
    doc = open_pdf(path, password, recover_truncated=True, quiet=True)
    _open = (key, doc)
    return doc


def _slot(name: str) -> shared_memory.SharedMemory:
    slot = _slots.get(name)
    if slot is None:
        if len(_slots) >= _MAX_ATTACHED:  # slots of an earlier pool: let them go
            for old in _slots.values():
                old.close()
            _slots.clear()
        slot = _slots[name] = shared_memory.SharedMemory(name=name)
    return slot


def render_task(
    path: str,
    index: int,
    spec: RenderSpec,
    password: str | None,
    stamp: FileStamp | None,
    slot_name: str,
    slot_size: int,
) -> RenderResult:
    """Render page ``index`` of ``path``; its samples go to the slot (or back inline if too big)."""
    global _rendered
    doc = _document(path, password, stamp)
    _rendered += 1
    trim_cache(_rendered)
    slot = _slot(slot_name).buf[:slot_size]
    try:
        pix, info = render_page(doc, index, spec, into=slot)  # drawn straight into the slot
    except MUPDF_ERRORS as err:
        raise CorruptFileError(path, f"page {index + 1} cannot be rendered ({err})") from None
    if info.blank and spec.skip_blank_pages:
        return info, None, False, 0
    samples, _, height, stride = pixmap_samples(pix)
    size = height * stride
    if size > slot_size:  # too big for the slot: MuPDF drew into its own memory
        return info, bytes(samples[:size]), False, stride
    return info, None, True, stride


def serve(conn: Connection) -> None:
    """A worker process's main loop: answer each task on ``conn`` until it sends ``None``.

    Each answer is ``("ok", RenderResult)`` or ``("error", IngestError)``; an unexpected
    exception becomes a :class:`CorruptFileError` naming the page, so the parent reports it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        try:
            answer: tuple[str, object] = ("ok", render_task(*task))
        except IngestError as err:
            answer = ("error", err)
        except Exception as err:  # reported to the parent with the file and page, never lost
            answer = (
                "error",
                CorruptFileError(
                    task[0], f"page {task[1] + 1} cannot be rendered ({type(err).__name__}: {err})"
                ),
            )
        conn.send(answer)
