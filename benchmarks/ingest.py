"""Benchmark: PDF ingest throughput and memory, side by side with PyMuPDF and pdftoppm.

    python benchmarks/ingest.py [--pages 200] [--dpi 144] [--repeats 15] [--rss-pages 2000]
                                [--ocr-pages 10] [--ocr-repeats 1]

What is measured, in one run, on one generated PDF (US Letter pages, each with a heading, three
paragraphs of text and a distinct JPEG picture), at the same DPI:

- ``mmrag_pages_per_s``: ``iter_items([pdf], IngestConfig(dpi=...))`` with every Item's
  ``load_image()`` called, as an embedder consumes them: render + text layer + RGB PIL image;
- ``mmrag_workers_pages_per_s``: the same with ``IngestConfig(workers=2)``;
- ``pymupdf_pages_per_s``: a plain PyMuPDF loop, the practical limit: ``page.get_pixmap(matrix,
  alpha=False)`` then ``Image.frombytes("RGB", size, pix.samples_mv)`` — RGB PIL images like
  mmrag's (without the extra ``pix.samples`` copy of ``Pixmap.pil_image()``), but no text layer;
- ``pdftoppm_pages_per_s``: poppler's ``pdftoppm -r DPI file.pdf`` writing PPM to a pipe, which
  is what pdf2image does by default (and byaldi and the Visual RAG Toolkit call pdf2image);
  parsing the PPM stream into PIL images, as pdf2image then does, is not counted;
- ``rss_2000_over_20``: peak RSS (``VmHWM``) of a fresh process that ingests a 2,000-page PDF
  with default settings, loading every page image, divided by that of one ingesting a 20-page
  PDF (same page content);
- ``mmrag_ocr_pages_per_s`` and ``mmrag_ocr_workers_pages_per_s``: ``ingest.ocr = "on"``
  (Tesseract reads every page, as it reads a scanned page under ``"auto"``), in process and with
  the workers, on a smaller PDF (``--ocr-pages``) of the same pages, beside
  ``mmrag_ocr_off_pages_per_s`` (OCR off, timed on that same PDF); None when Tesseract is not
  installed.

Throughputs are the best of ``--repeats`` interleaved timed rounds (``--pdftoppm-repeats`` for
the much slower pdftoppm) after one untimed warm-up round of every method, so one-time costs
(imports, the worker fork server's start) are left out; the cold start of workers is printed
separately. Also printed: medians, the machine's load average (this is a shared machine: load
from other processes lowers every number, and the workers run most), each method's CPU time
per page in this process (for workers and pdftoppm only the parent's share), mmrag without its
text layer (what the text layer costs), and each RSS child's peak before ingesting (imports).
The last line is one JSON object with exactly the eight keys above.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pymupdf
from PIL import Image

from mmrag.pipeline.ingest import IngestConfig, iter_items
from mmrag.testing.media import make_pdf


def mmrag_run(pdf: Path, config: IngestConfig) -> int:
    pages = 0
    for item in iter_items([pdf], config, strict=True):
        item.load_image()
        pages += 1
    return pages


def pymupdf_run(pdf: Path, dpi: int) -> int:
    zoom = dpi / 72.0
    matrix = pymupdf.Matrix(zoom, zoom)
    doc = pymupdf.open(pdf)
    for page in doc:
        pix = page.get_pixmap(matrix=matrix, alpha=False)
        Image.frombytes("RGB", (pix.width, pix.height), pix.samples_mv)
    pages = doc.page_count
    doc.close()
    return pages


def pdftoppm_run(pdf: Path, dpi: int, pdftoppm: str, pages: int) -> int:
    """``pdftoppm -r DPI file.pdf`` writing PPM to a pipe, as pdf2image does by default."""
    received = 0
    with subprocess.Popen(
        [pdftoppm, "-r", str(dpi), str(pdf)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as process:
        assert process.stdout is not None
        while chunk := process.stdout.read(1 << 20):
            received += len(chunk)
    if process.returncode != 0:
        raise RuntimeError(f"pdftoppm failed with exit status {process.returncode}")
    if received < pages * 1000:
        raise RuntimeError(f"pdftoppm wrote only {received} bytes for {pages} pages")
    return pages


def ensure_pdftoppm() -> str | None:
    """The pdftoppm binary, installing poppler-utils with apt-get if needed (None if impossible)."""
    found = shutil.which("pdftoppm")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        print("pdftoppm is missing and apt-get is not available: pdftoppm is skipped")
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "--no-install-recommends", "poppler-utils"]
    print("pdftoppm is missing: installing poppler-utils with apt-get ...")
    attempt = subprocess.run(install, capture_output=True, text=True, env=env)
    if attempt.returncode != 0:
        subprocess.run([apt, "update"], capture_output=True, text=True, env=env)
        attempt = subprocess.run(install, capture_output=True, text=True, env=env)
    found = shutil.which("pdftoppm")
    if found is None:
        tail = (attempt.stderr or attempt.stdout).strip().splitlines()[-1:]
        print(f"could not install poppler-utils ({' '.join(tail)}): pdftoppm is skipped")
    return found


def measure(
    runs: dict[str, Callable[[], int]], repeats: dict[str, int]
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Pages/s of each run, and this process's CPU ms per page: one warm-up round, then up to
    ``repeats[name]`` interleaved timed rounds of each."""
    for run in runs.values():
        run()
    rates: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for round_number in range(max(repeats.values())):
        for name, run in runs.items():
            if round_number >= repeats[name]:
                continue
            started, started_cpu = time.perf_counter(), time.process_time()
            pages = run()
            rates[name].append(pages / (time.perf_counter() - started))
            cpu[name].append((time.process_time() - started_cpu) * 1000 / pages)
    return rates, cpu


def peak_rss_self_kib() -> int:
    """This process's peak resident set size in KiB: ``VmHWM`` where Linux has it.

    Not ``ru_maxrss``: on Linux that survives ``exec``, so a child started from this (large)
    benchmark process would report the parent's size.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    return result.stdout


def peak_rss_kib(pdf: Path, dpi: int) -> tuple[int, int]:
    """Peak RSS of a fresh process ingesting ``pdf`` with default settings, and its peak
    before ingesting (after the imports), in KiB."""
    output = _child("--rss-child", str(pdf), "--dpi", str(dpi))
    result = json.loads(output.strip().splitlines()[-1])
    return int(result["peak_rss_kib"]), int(result["before_kib"])


def cold_start_s(pdf: Path, dpi: int, workers: int) -> float:
    """Extra seconds a fresh process needs to ingest ``pdf`` with workers than without."""
    timings = []
    for count in (0, workers):
        started = time.perf_counter()
        _child("--ingest-child", str(pdf), "--dpi", str(dpi), "--workers", str(count))
        timings.append(time.perf_counter() - started)
    return timings[1] - timings[0]


def measure_ocr(folder: Path, args: argparse.Namespace) -> dict[str, float]:
    """Best pages/s with OCR off and on (in process and with workers) on an ``--ocr-pages``
    PDF; empty when Tesseract is not installed."""
    from mmrag.pipeline.ingest.ocr import ocr_available

    if not ocr_available():
        print("OCR: tesseract is not installed (apt-get install tesseract-ocr): skipped")
        return {}
    pdf = make_pdf(folder / "ocr.pdf", pages=args.ocr_pages)
    runs: dict[str, Callable[[], int]] = {
        "mmrag_ocr_off": lambda: mmrag_run(pdf, IngestConfig(dpi=args.dpi)),
        "mmrag_ocr": lambda: mmrag_run(pdf, IngestConfig(dpi=args.dpi, ocr="on")),
        "mmrag_ocr_workers": lambda: mmrag_run(
            pdf, IngestConfig(dpi=args.dpi, ocr="on", workers=args.workers)
        ),
    }
    rates, cpu = measure(runs, dict.fromkeys(runs, args.ocr_repeats))
    print(f"OCR (Tesseract, every page) on {args.ocr_pages} pages, best of {args.ocr_repeats}:")
    for name, values in rates.items():
        print(
            f"  {name:18s} best {max(values):7.2f} pages/s   this process's CPU "
            f"{statistics.median(cpu[name]):7.1f} ms/page"
        )
    return {name: round(max(values), 2) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200, help="pages of the throughput PDF")
    parser.add_argument("--dpi", type=int, default=144, help="render resolution for everyone")
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds per method")
    parser.add_argument(
        "--pdftoppm-repeats", type=int, default=3, help="timed rounds of the slow pdftoppm"
    )
    parser.add_argument("--workers", type=int, default=2, help="workers for the second run")
    parser.add_argument("--rss-pages", type=int, default=2000, help="pages of the big RSS PDF")
    parser.add_argument("--ocr-pages", type=int, default=10, help="pages of the OCR PDF")
    parser.add_argument("--ocr-repeats", type=int, default=1, help="timed rounds with OCR")
    parser.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ingest-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.rss_child is not None:
        before = peak_rss_self_kib()
        pages = mmrag_run(args.rss_child, IngestConfig(dpi=args.dpi))
        print(
            json.dumps({"pages": pages, "peak_rss_kib": peak_rss_self_kib(), "before_kib": before})
        )
        return
    if args.ingest_child is not None:
        mmrag_run(args.ingest_child, IngestConfig(dpi=args.dpi, workers=args.workers))
        return

    with tempfile.TemporaryDirectory(prefix="mmrag-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        pdf = make_pdf(folder / "bench.pdf", pages=args.pages)
        print(
            f"generated {pdf.name}: {args.pages} pages with text and a JPEG each, "
            f"{pdf.stat().st_size / 1e6:.1f} MB, in {time.perf_counter() - started:.1f} s"
        )
        pdftoppm = ensure_pdftoppm()

        runs: dict[str, Callable[[], int]] = {
            "mmrag": lambda: mmrag_run(pdf, IngestConfig(dpi=args.dpi)),
            "mmrag_workers": lambda: mmrag_run(
                pdf, IngestConfig(dpi=args.dpi, workers=args.workers)
            ),
            "pymupdf": lambda: pymupdf_run(pdf, args.dpi),
            "mmrag_no_text": lambda: mmrag_run(pdf, IngestConfig(dpi=args.dpi, extract_text=False)),
        }
        if pdftoppm:
            runs["pdftoppm"] = lambda: pdftoppm_run(pdf, args.dpi, pdftoppm, args.pages)
        load = " ".join(f"{v:.1f}" for v in os.getloadavg())
        print(
            f"timing at {args.dpi} DPI on {os.cpu_count()} CPUs (load average {load}), "
            f"best of {args.repeats} interleaved rounds ({args.pdftoppm_repeats} for pdftoppm) "
            "after a warm-up round ..."
        )
        repeats = dict.fromkeys(runs, args.repeats)
        if "pdftoppm" in runs:
            repeats["pdftoppm"] = args.pdftoppm_repeats
        rates, cpu = measure(runs, repeats)
        for name, values in rates.items():
            print(
                f"  {name:14s} best {max(values):7.1f} pages/s   median "
                f"{statistics.median(values):7.1f}   this process's CPU "
                f"{statistics.median(cpu[name]):5.2f} ms/page   rounds "
                + " ".join(f"{v:.0f}" for v in values)
            )
        best = {name: max(values) for name, values in rates.items()}
        print(f"load average after timing: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
        ocr = measure_ocr(folder, args)

        small = make_pdf(folder / "rss20.pdf", pages=20)
        started = time.perf_counter()
        big = make_pdf(folder / "rss_big.pdf", pages=args.rss_pages)
        print(
            f"generated a {args.rss_pages}-page PDF ({big.stat().st_size / 1e6:.1f} MB) in "
            f"{time.perf_counter() - started:.1f} s"
        )
        (rss_small, base_small), (rss_big, base_big) = (
            peak_rss_kib(small, args.dpi),
            peak_rss_kib(big, args.dpi),
        )
        print(
            f"peak RSS: {rss_big / 1024:.1f} MiB for {args.rss_pages} pages, "
            f"{rss_small / 1024:.1f} MiB for 20 pages (fresh process each, default settings; "
            f"after imports, before ingesting: {base_big / 1024:.1f} and "
            f"{base_small / 1024:.1f} MiB)"
        )
        cold = cold_start_s(small, args.dpi, args.workers)
        print(
            f"workers={args.workers} cold start in a fresh process (fork server start-up "
            f"included): +{cold:.2f} s over workers=0 on the 20-page PDF"
        )

    ratios = {
        "mmrag / pymupdf": best["mmrag"] / best["pymupdf"],
        "mmrag_workers / pymupdf": best["mmrag_workers"] / best["pymupdf"],
        "mmrag_no_text / pymupdf": best["mmrag_no_text"] / best["pymupdf"],
    }
    if "pdftoppm" in best:
        ratios["mmrag / pdftoppm"] = best["mmrag"] / best["pdftoppm"]
    print("ratios: " + ", ".join(f"{k} = {v:.2f}" for k, v in ratios.items()))
    print(
        json.dumps(
            {
                "mmrag_pages_per_s": round(best["mmrag"], 1),
                "mmrag_workers_pages_per_s": round(best["mmrag_workers"], 1),
                "pymupdf_pages_per_s": round(best["pymupdf"], 1),
                "pdftoppm_pages_per_s": round(best["pdftoppm"], 1) if "pdftoppm" in best else None,
                "rss_2000_over_20": round(rss_big / rss_small, 3),
                "mmrag_ocr_off_pages_per_s": ocr.get("mmrag_ocr_off"),
                "mmrag_ocr_pages_per_s": ocr.get("mmrag_ocr"),
                "mmrag_ocr_workers_pages_per_s": ocr.get("mmrag_ocr_workers"),
            }
        )
    )


if __name__ == "__main__":
    main()
