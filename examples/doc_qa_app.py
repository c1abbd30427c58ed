"""A document-QA web app: index a folder, then ask questions in the browser.

Starts mmrag's HTTP server (the same app as ``mmrag serve``) on a folder: the folder is indexed
by a background job as the server starts (files already indexed are skipped), and the web page
at the printed URL uploads more files, shows indexing progress, and answers questions with the
cited page thumbnails and their scores. The API is documented at ``/docs``.

    python examples/doc_qa_app.py                          # the bundled sample, default models
    python examples/doc_qa_app.py ~/reports --config mmrag.toml --port 8080
    python examples/doc_qa_app.py --tiny                   # offline: tiny random models (CI)

With ``--tiny`` the embedder (ColModernVBert) and the generator (SmolVLM) are tiny random models
built on the spot (``mmrag.testing.zoo``): nothing is downloaded, and the rankings and answers
are meaningless, but every step is the real code path. ``--api-key-env NAME`` requires the key
held in that environment variable (the page asks for it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mmrag import MmragError, PipelineConfig, Secret

SAMPLE_DATA = Path(__file__).resolve().parent / "data"


def _tiny_model(name: str, workdir: Path) -> Path:
    from mmrag.testing.zoo import build

    folder = workdir / "tiny-models" / name
    if not (folder / "mmrag_tiny.json").is_file():
        print(f"building a tiny random {name} in {folder} (its outputs are meaningless)")
        build(name, folder)
    return folder


def make_config(args: argparse.Namespace) -> PipelineConfig:
    """The pipeline the flags describe: ``--config``, ``--tiny``, or the default models."""
    workdir = Path(args.workdir).expanduser().resolve()
    if args.config:
        return PipelineConfig.load(args.config)
    if not args.tiny:
        config = PipelineConfig()
        config.store.path = str(workdir / "index")
        return config
    embedder = _tiny_model("colmodernvbert", workdir)
    generator = _tiny_model("smolvlm", workdir)
    return PipelineConfig.from_dict(
        {
            "embedder": {
                "type": "colmodernvbert",
                "init_parameters": {"model": str(embedder), "device": "cpu"},
            },
            "generator": {
                "type": "transformers",
                "init_parameters": {"model": str(generator), "max_new_tokens": 24, "device": "cpu"},
            },
            "ingest": {"dpi": 72, "video_fps": 0.5},
            "store": {"path": str(workdir / "index-tiny")},
        }
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=str(SAMPLE_DATA), help="folder to index")
    parser.add_argument("--config", help="pipeline config (TOML or JSON)")
    parser.add_argument("--tiny", action="store_true", help="tiny random models (offline)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key-env", help="require the API key in this environment variable")
    parser.add_argument(
        "--workdir",
        default=".mmrag-doc-qa",
        help="where the index (without --config) and the tiny models are kept",
    )
    args = parser.parse_args(argv)
    folder = Path(args.folder).expanduser().resolve()
    if not folder.is_dir():
        parser.error(f"{folder} is not a directory")

    import uvicorn

    from mmrag.integrations.server import create_app

    try:
        app = create_app(
            make_config(args),
            api_key=Secret.from_env_var(args.api_key_env) if args.api_key_env else None,
            allowed_roots=[folder],  # the page and API may index more of this folder only
            index_on_start=[folder],
        )
    except MmragError as error:
        print(f"doc_qa_app: {error}", file=sys.stderr)
        return 2
    shown = "localhost" if args.host in ("0.0.0.0", "::") else args.host
    print(f"indexing {folder} in the background; open http://{shown}:{args.port}/", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
