"""Embedding throughput: the mmrag framework path vs the raw model forward on identical batches.

A mid-size, randomly initialised, seeded ColQwen2 (Qwen2-VL text and vision towers, sizes below)
is saved with ``save_pretrained`` and loaded back through ``ColQwen2Embedder`` — the real loading
path. N same-size synthetic pages (rendered with PIL, saved as PNG) are then embedded two ways,
with the same model object, the same processor settings, dtype (float32 on the CPU) and batch
size:

- **raw**: ``processor.process_images(batch)`` + ``model(**inputs)`` under ``inference_mode``
  on page images already in memory — the practical upper bound;
- **framework**: ``embedder.embed_documents(items)`` end to end from ingest ``Item``s (PNG
  decoding, processing, forward, unpadding, token-hygiene mask, patch grid, NumPy conversion),
  then the pooled views ``global`` and ``rows`` of every page
  (``Pooler(PoolingConfig(views=["global", "rows"]))``).

Both run on every batch, paired and interleaved (the order alternating), ``--repeats`` times
after a warm-up pass, so that both see the same machine load (other processes may share the
cores). ``framework_over_raw`` is framework pages/s ÷ raw pages/s, as the median over the paired
batches of raw time ÷ framework time (1.0 = no overhead; the target is >= 0.95); the same ratio
in CPU time and the best-total throughputs are printed too. ``pages_per_s`` is the framework's
best total. The last line printed is one JSON object.

    python benchmarks/embed.py                 # 8 pages, batch 4 (~2 minutes on 2 cores)
    python benchmarks/embed.py --pages 16 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: Page size in pixels (A4 at 72 dpi) and the image budget: 256 merged 28 x 28 patches per page.
PAGE_SIZE = (595, 842)
MAX_PIXELS = 256 * 28 * 28


def build_model(out_dir: Path, seed: int, hidden: int, layers: int, vision_depth: int) -> Path:
    """Save a random mid-size ``ColQwen2ForRetrieval`` and its processor into ``out_dir``."""
    from transformers import (
        ColQwen2Config,
        ColQwen2ForRetrieval,
        ColQwen2Processor,
        Qwen2VLConfig,
        Qwen2VLImageProcessor,
    )

    from mmrag.testing.bundle import seeded
    from mmrag.testing.tokenizers import qwen2_tokenizer

    tokenizer = qwen2_tokenizer()
    processor = ColQwen2Processor(
        image_processor=Qwen2VLImageProcessor(min_pixels=4 * 28 * 28, max_pixels=MAX_PIXELS),
        tokenizer=tokenizer,
    )
    ids = {
        t: tokenizer.convert_tokens_to_ids(t)
        for t in ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")
    }
    heads = hidden // 64  # head_dim 64: mrope_section sums to 32
    vision_width = hidden // 2
    vlm = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden,
            "intermediate_size": 3 * hidden,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": max(1, heads // 4),
            "max_position_embeddings": 4096,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [8, 12, 12],
            },
            "bos_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "depth": vision_depth,
            "embed_dim": vision_width,
            "hidden_size": hidden,  # the patch merger projects into the text width
            "num_heads": vision_width // 64,
            "mlp_ratio": 4,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    config = ColQwen2Config(vlm_config=vlm, embedding_dim=128)
    with seeded(seed):
        model = ColQwen2ForRetrieval(config).eval()
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def render_pages(out_dir: Path, n: int, seed: int) -> list[Path]:
    """``n`` synthetic text-and-figure pages of the same size, saved as PNG."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        page = Image.new("RGB", PAGE_SIZE, "white")
        draw = ImageDraw.Draw(page)
        y = 40
        while y < PAGE_SIZE[1] - 60:
            if rng.random() < 0.15:  # a figure
                h = int(rng.integers(80, 200))
                colour = tuple(int(c) for c in rng.integers(0, 255, 3))
                draw.rectangle([60, y, PAGE_SIZE[0] - 60, y + h], fill=colour)
                y += h + 20
            else:  # a line of text
                words = " ".join(
                    "".join(chr(97 + c) for c in rng.integers(0, 26, 6)) for _ in range(9)
                )
                draw.text((60, y), words, fill="black")
                y += 18
        path = out_dir / f"page-{i:03d}.png"
        page.save(path)
        paths.append(path)
    return paths


def measure(repeats: int, n_batches: int, runs: dict[str, Callable[[int], Any]]) -> dict[str, Any]:
    """Time ``raw`` and ``framework`` on each batch, paired and interleaved.

    After one warm-up pass, every repeat runs both on batch 0, then both on batch 1, …, swapping
    which goes first each time, so that both see the same machine load. Returns the best total
    wall time of each over the repeats, and the median over all (repeat, batch) pairs of
    ``raw time / framework time`` in wall-clock and in CPU time.
    """
    for b in range(n_batches):
        for run in runs.values():
            run(b)
    best = dict.fromkeys(runs, float("inf"))
    wall_ratios, cpu_ratios = [], []
    for r in range(repeats):
        total = dict.fromkeys(runs, 0.0)
        for b in range(n_batches):
            names = list(runs) if (r + b) % 2 == 0 else list(reversed(list(runs)))
            wall, cpu = {}, {}
            for name in names:
                w0, c0 = time.perf_counter(), time.process_time()
                runs[name](b)
                wall[name] = time.perf_counter() - w0
                cpu[name] = time.process_time() - c0
                total[name] += wall[name]
            wall_ratios.append(wall["raw"] / wall["framework"])
            cpu_ratios.append(cpu["raw"] / cpu["framework"])
        best = {name: min(best[name], total[name]) for name in runs}
    return {
        "best": best,
        "wall_ratio": float(np.median(wall_ratios)),
        "cpu_ratio": float(np.median(cpu_ratios)),
        "pairs": len(wall_ratios),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=1024, help="text width of the model")
    parser.add_argument("--layers", type=int, default=12, help="text layers")
    parser.add_argument("--vision-depth", type=int, default=8, help="vision blocks")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import torch
    from PIL import Image

    from mmrag.config import PoolingConfig
    from mmrag.embedders.colpali import ColQwen2Embedder
    from mmrag.embedders.pooling import Pooler
    from mmrag.types import Item, Modality

    with tempfile.TemporaryDirectory(prefix="mmrag-embed-bench-") as tmp:
        root = Path(tmp)
        model_dir = build_model(
            root / "model", args.seed, args.hidden, args.layers, args.vision_depth
        )
        page_paths = render_pages(root, args.pages, args.seed)
        embedder = ColQwen2Embedder(
            str(model_dir),
            device="cpu",
            dtype="float32",
            batch_size=args.batch_size,
            max_pixels=MAX_PIXELS,
        ).load()
        model, processor = embedder._model, embedder._processor
        params = sum(p.numel() for p in model.parameters())

        def loader(path: Path) -> Callable[[], Image.Image]:
            return lambda: Image.open(path).convert("RGB")

        items = [
            Item(
                source=str(path),
                source_sha256=f"{i:064x}",
                modality=Modality.IMAGE,
                image_loader=loader(path),
            )
            for i, path in enumerate(page_paths)
        ]
        images = [Image.open(path).convert("RGB") for path in page_paths]  # raw: in memory
        size = args.batch_size
        image_batches = [images[i : i + size] for i in range(0, len(images), size)]
        item_batches = [items[i : i + size] for i in range(0, len(items), size)]
        pooler = Pooler(PoolingConfig(views=["global", "rows"]))

        def raw(b: int) -> Any:
            with torch.inference_mode():
                return model(**processor.process_images(image_batches[b])).embeddings

        def framework(b: int) -> list[dict[str, np.ndarray]]:
            embeddings = embedder.embed_documents(item_batches[b])
            return [pooler.document_views(e.visual(), e.grid) for e in embeddings]

        # Same vectors both ways (the framework keeps the image-token rows of the raw output).
        first = embedder.embed_documents(items[:1])[0]
        reference = raw(0)[0]
        inputs = processor.process_images(image_batches[0][:1])
        image_rows = inputs["input_ids"][0] == processor.image_token_id
        np.testing.assert_allclose(first.visual(), reference[image_rows].numpy(), atol=1e-4)

        print(
            f"model: random ColQwen2, {params / 1e6:.0f}M parameters (text {args.hidden} x "
            f"{args.layers} layers, vision depth {args.vision_depth}), float32 on "
            f"{torch.get_num_threads()} CPU threads"
        )
        print(
            f"pages: {args.pages} x {PAGE_SIZE[0]}x{PAGE_SIZE[1]} px → grid {first.grid}, "
            f"{first.multi.shape[0]} tokens/page; batch size {args.batch_size}; "
            f"{args.repeats} repeats, paired per batch",
            flush=True,
        )
        result = measure(args.repeats, len(image_batches), {"raw": raw, "framework": framework})
        best = result["best"]

    raw_pps = args.pages / best["raw"]
    fw_pps = args.pages / best["framework"]
    print(
        f"raw forward: {best['raw']:.2f} s ({raw_pps:.2f} pages/s, "
        f"{1e3 * best['raw'] / args.pages:.0f} ms/page)"
    )
    print(
        f"framework:   {best['framework']:.2f} s ({fw_pps:.2f} pages/s, "
        f"{1e3 * best['framework'] / args.pages:.0f} ms/page)"
    )
    print(
        f"framework/raw throughput, median of {result['pairs']} paired batches: "
        f"{result['wall_ratio']:.3f} wall-clock, {result['cpu_ratio']:.3f} CPU time "
        f"(best totals: {fw_pps / raw_pps:.3f})"
    )
    print(
        json.dumps(
            {
                "framework_over_raw": round(result["wall_ratio"], 4),
                "pages_per_s": round(fw_pps, 3),
                "raw_pages_per_s": round(raw_pps, 3),
                "cpu_time_ratio": round(result["cpu_ratio"], 4),
                "pages": args.pages,
                "batch_size": args.batch_size,
                "params_m": round(params / 1e6, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
