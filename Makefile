# The two commands at the top of the README. Both set everything up first (scripts/setup.sh).
.PHONY: setup quickstart test lint bench-ingest bench-index bench-copies bench-scale

setup:
	@bash scripts/setup.sh

quickstart: setup
	.venv/bin/mmrag quickstart

test: setup
	.venv/bin/python -m pytest

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

bench-ingest: setup
	.venv/bin/python benchmarks/ingest.py

bench-index: setup
	.venv/bin/python benchmarks/index.py

bench-copies: setup
	.venv/bin/python benchmarks/copies.py

bench-scale: setup
	.venv/bin/python benchmarks/scale.py
