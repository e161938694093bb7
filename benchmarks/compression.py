"""Lossless compression: genzoo's coders against the classic codecs, as real bytes on disk.

    OMP_NUM_THREADS=1 python benchmarks/compression.py [--data digits mnist-binary] [--reuse]
                                                       [--work runs/bench-compression]

Data: the 447 digits test images (8x8, 17 levels) and the 1,000 binarized MNIST-10k test images
(28x28, 2 levels; the t10k file's last 1,000, binarized at 0.5).

genzoo's coders (`genzoo.compress`, a whole .gzoo file including its header, decoded back and
checked bit-exact against the original):
- `pixelcnn`: range coding with the PixelCNN's exact per-pixel conditionals; set beside its own
  NLL in bits per dimension (the file's overhead over Shannon's bound, with and without the header).
- `vae`: bits-back ANS; set beside the -ELBO of the latents it coded (its target) and the VAE's NLL.
Digits runs are trained here with the families' defaults (or reused with --reuse); binarized MNIST
uses the PixelCNN that benchmarks/binarized_mnist.py trains (runs/bench-binarized-mnist/pixelcnn, its
`binarized-mnist` preset: 32 channels, 8 layers, kernels of 5) and a VAE trained here (its defaults,
5000 steps).

Classic codecs on the same pixels, each image alone (the sum of the files) and the whole set as one
array: PNG (Pillow, optimize; 1-bit for binary images, 8-bit grey otherwise, the levels as values),
WebP lossless (method 6), gzip -9, bz2 -9, lzma/xz -9e and zstd -19 (the `peers` extra), the array as
one byte per pixel. Speeds are images per second on one torch thread (the coders pin one thread so
that files decode anywhere). Anchors (Townsend et al. 2019, binarized MNIST, full test set): BB-ANS
about 0.19 bits/dim, bz2 0.25, gzip 0.33, PNG 0.78.
"""

from __future__ import annotations

import argparse
import bz2
import functools
import gzip
import io
import json
import lzma
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, save, train_unless_reused

import genzoo
from genzoo.data import load_dataset

DATASETS = {"digits": "digits", "mnist-binary": "mnist-binary"}
TRAIN = {
    ("digits", "pixelcnn"): {},
    ("digits", "vae"): {},
    ("mnist-binary", "vae"): {"max_steps": 5000, "lr_decay_steps": 5000},
}
SHARED_RUNS = {("mnist-binary", "pixelcnn"): Path("runs/bench-binarized-mnist/pixelcnn")}
ANCHORS = {"bb_ans": 0.19, "bz2": 0.25, "gzip": 0.33, "png": 0.78}


def tile(images: np.ndarray) -> np.ndarray:
    """(N, H, W) -> one near-square grid picture (WebP's sides stop at 16,383 pixels); empty tiles 0."""
    n, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * cols, h, w), dtype=images.dtype)
    grid[:n] = images
    return grid.reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)


def classic_sizes(pixels: np.ndarray, levels: int) -> dict[str, dict[str, float]]:
    """Bits per dimension of each classic codec, per image (summed files) and as one array."""
    import zstandard
    from PIL import Image

    n, dims = len(pixels), pixels[0].size

    def png(image: np.ndarray) -> int:
        picture = Image.fromarray(image.astype(bool)) if levels == 2 else Image.fromarray(image)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", optimize=True)
        return buffer.tell()

    def webp(image: np.ndarray) -> int:
        buffer = io.BytesIO()
        Image.fromarray(image * (255 if levels == 2 else 1)).save(
            buffer, format="WEBP", lossless=True, method=6
        )
        return buffer.tell()

    general = {
        "gzip -9": lambda b: len(gzip.compress(b, 9, mtime=0)),
        "bz2 -9": lambda b: len(bz2.compress(b, 9)),
        "xz -9e": lambda b: len(lzma.compress(b, preset=9 | lzma.PRESET_EXTREME)),
        "zstd -19": lambda b: len(zstandard.ZstdCompressor(level=19).compress(b)),
    }
    images = pixels[:, 0]  # (N, H, W) uint8
    tall = tile(images)  # the whole set as one picture
    sizes: dict[str, dict[str, float]] = {}
    for name, size in {"png": png, "webp lossless": webp}.items():
        sizes[name] = {"per_image": sum(size(im) for im in images), "one_array": size(tall)}
    for name, size in general.items():
        sizes[name] = {
            "per_image": sum(size(im.tobytes()) for im in images),
            "one_array": size(images.tobytes()),
        }
    return {k: {part: 8 * v / (n * dims) for part, v in parts.items()} for k, parts in sizes.items()}


def code(run: Path, x: torch.Tensor, work: Path, on_encoded: Callable[[dict], None]) -> dict:
    """Compress, then decompress and compare; `on_encoded` gets the encode half first (decoding a
    28x28 PixelCNN file takes as long as encoding it: a run cut short keeps what it measured)."""
    file = work / f"{run.name}.gzoo"
    result = genzoo.compress(run, x, out=file, quiet=True)
    on_encoded({**result.summary(), "file_bytes": file.stat().st_size, "bit_exact": "not decoded yet",
                "encode_images_per_second": len(x) / result.seconds})  # fmt: skip
    started = time.perf_counter()
    back = genzoo.decompress(run, file, quiet=True)
    decode_seconds = time.perf_counter() - started
    evaluated = genzoo.evaluate(run, split="test", metrics=["nll"], quiet=True)
    return {
        **result.summary(),
        "file_bytes": file.stat().st_size,
        "bit_exact": bool(torch.equal(back, x)),
        "model_nll_bits_per_dim": evaluated["bpd"],
        "model_nll_kind": evaluated["nll_kind"],
        "overhead_vs_target_without_header": result.payload_bits_per_dim / result.nll_bits_per_dim - 1,
        "encode_images_per_second": len(x) / result.seconds,
        "decode_images_per_second": len(x) / decode_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=["pixelcnn", "vae"], choices=["pixelcnn", "vae"])
    parser.add_argument("--work", type=Path, default=Path("runs/bench-compression"))
    parser.add_argument("--reuse", action="store_true", help="keep finished runs instead of retraining")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    results = {}
    for data in args.data:
        x = load_dataset(DATASETS[data]).split("test").tensors[0]
        info = load_dataset(DATASETS[data]).info
        levels = int(info.levels)
        pixels = ((x - info.low) / (info.high - info.low) * (levels - 1)).round().to(torch.uint8).numpy()
        entry = {"n": len(x), "dims_per_image": x[0].numel(), "classic": classic_sizes(pixels, levels)}
        coders = {}
        for model in args.models:
            run = SHARED_RUNS.get((data, model))
            if run is None:
                run = train_unless_reused(
                    model, DATASETS[data], args.work / data / model, TRAIN[(data, model)], args.reuse, "cpu"
                )
            elif not (run / "model.safetensors").is_file():
                coders[model] = {
                    "skipped": f"{run} is not trained yet: run benchmarks/binarized_mnist.py --runs pixelcnn"
                }
                continue

            encoded = functools.partial(save_encoded, results, data, entry, coders, model, run)
            coders[model] = {"run": str(run), **code(run, x, args.work / data, encoded)}
            print(data, model, coders[model], flush=True)
        results[data] = finished(entry, coders)
        write(results)


def save_encoded(results, data: str, entry: dict, coders: dict, model: str, run: Path, encoded: dict) -> None:
    """Save the encode half of a coder's row while its decoding is still to come."""
    coders[model] = {"run": str(run), **encoded}
    write({**results, data: finished(entry, coders)})


def finished(entry: dict, coders: dict) -> dict:
    """The data set's entry with its coders and each one's size against the best classic codec."""
    best_name, best = min(((k, v["one_array"]) for k, v in entry["classic"].items()), key=lambda kv: kv[1])
    for row in coders.values():
        if "bits_per_dim" in row:
            row["times_smaller_than_best_classic"] = best / row["bits_per_dim"]
    return {**entry, "genzoo": coders, "best_classic": {"codec": best_name, "bits_per_dim": best}}


def write(results: dict) -> None:
    previous = RESULTS / "compression.json"  # data sets measured by an earlier invocation stay
    kept = json.loads(previous.read_text()) if previous.is_file() else {}
    kept = {k: v for k, v in kept.items() if k in DATASETS and k not in results}
    save(
        "compression",
        {
            "command": "python benchmarks/compression.py",
            "anchors_binarized_mnist": ANCHORS,
            **kept,
            **results,
        },
    )


if __name__ == "__main__":
    main()
