"""Command line: ``python -m mmrag.testing build DIR [--only NAME ...]`` and ``list``.

Example:
    $ python -m mmrag.testing build /tmp/zoo --only colpali open_clip
    colpali     /tmp/zoo/colpali
    open_clip   /tmp/zoo/open_clip
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mmrag.testing.zoo import DEFAULT_SEED, build_all, list_tiny_models


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mmrag.testing", description="Build tiny offline test models."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build tiny models into DIR/<name>/")
    build.add_argument("out_dir", type=Path, metavar="DIR")
    build.add_argument("--only", nargs="+", metavar="NAME", help="build only these models")
    build.add_argument("--seed", type=int, default=DEFAULT_SEED, help="weight seed (default 0)")
    commands.add_parser("list", help="list the tiny models and what they stand in for")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "list":
        for spec in list_tiny_models():
            status = "" if spec.available else f"  (needs {', '.join(spec.missing_requirements())})"
            sys.stdout.write(
                f"{spec.name:<16}{spec.architecture:<36}{spec.stands_in_for}{status}\n"
            )
        return 0
    # One-shard "Writing model shards" bars per model are noise here; set before transformers loads.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        built = build_all(args.out_dir, names=args.only, seed=args.seed)
    except (ValueError, ModuleNotFoundError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    for name, path in built.items():
        sys.stdout.write(f"{name:<16}{path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
