"""Batch indexing: index a folder with a progress bar, write the report, show that a re-run
skips everything.

    python examples/batch_index.py examples/data --config mmrag.toml --report report.json

The job is resumable: stop it (Ctrl-C, a crash, a kill) and run the same command again; what
is stored is skipped and the rest is indexed. Without ``--config`` the default pipeline
(``mmrag.toml`` if present, else the built-in defaults) indexes into ``./mmrag_index``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from mmrag import IndexProgress, IndexStoppedError, Pipeline, PipelineConfig


def index_with_progress(pipe: Pipeline, folder: Path) -> object:
    """One indexing job with a tqdm bar: pages, pages/s, ETA, and the files done."""
    with tqdm(unit=" pages", desc="indexing", file=sys.stderr) as bar:

        def status(progress: IndexProgress) -> None:
            if progress.pages_total is not None:
                bar.total = progress.pages_total
            bar.set_postfix_str(f"files {progress.files_done}/{progress.files_total}")

        return pipe.index([folder], on_progress=bar.update, on_status=status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the folder to index (recursively)")
    parser.add_argument("--config", type=Path, help="pipeline config (TOML or JSON)")
    parser.add_argument("--report", type=Path, default=Path("index_report.json"))
    args = parser.parse_args(argv)

    if args.config is not None:
        config = PipelineConfig.load(args.config)
    elif Path("mmrag.toml").is_file():
        config = PipelineConfig.load(Path("mmrag.toml"))
    else:
        config = PipelineConfig()

    with Pipeline(config) as pipe:
        try:
            report = index_with_progress(pipe, args.folder)
        except IndexStoppedError as stopped:  # e.g. the Qdrant server went away
            args.report.write_text(stopped.report.to_json(), encoding="utf-8")
            print(f"stopped: {stopped}", file=sys.stderr)
            return 75
        args.report.write_text(report.to_json(), encoding="utf-8")
        print(f"first run: {report.summary()} from {report.sources} files")
        for failure in report.failed:
            print(f"  failed {failure.source}: {failure.reason}")
        print(f"report written to {args.report}: {json.loads(args.report.read_text())['indexed']}")

        again = pipe.index([args.folder])  # everything is stored: nothing is embedded again
        print(f"re-run: {again.summary()}")
        print(f"{pipe.store.count()} points in collection {pipe.store.name!r}")
    return 0 if report.ok else 1


if __name__ == "__main__":  # the guard the ingest worker processes need
    sys.exit(main())
