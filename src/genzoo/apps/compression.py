"""`genzoo compress` / `genzoo decompress`: lossless files from a model's likelihood.

Two coders, chosen by what the model declares:

- `codes_exactly` (PixelCNN): each dimension's distribution given the ones before it. x is stored in
  about -log2 p(x) bits: every pixel is range-coded (`constriction`) with its conditional, pixel by
  pixel in the model's raster order, and decoded the same way, a batch of images at a time.
- `bits_back` (VAE): bits-back ANS (`genzoo.apps.bitsback`), about -ELBO(x) bits per example.

Encoder and decoder must compute the very same probabilities, or the decoder drifts off silently.
So both step through the model's `conditional_steps` alike: the same batches, pixels fixed in the same
order, on the CPU, in float32, on one thread (another thread count may sum in another order).
`constriction` then quantises each distribution to integers the same way on both sides.

The file (`.gzoo`):

    b"GZOO" | format version (u16) | header length (u32) | header (JSON) | words (u32 LE) | CRC32 (u32)

The header names the coder, the run (SHA-256 of its weights, so another run's file is refused),
the shape, levels, count and batch size; the CRC32 covers everything before it, so a truncated or
altered file is refused instead of decoding to wrong images.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genzoo.apps import bitsback
from genzoo.apps.coding import coded_bits, constriction_module, level_symbols, one_thread
from genzoo.data import load_dataset
from genzoo.data.options import without_common
from genzoo.errors import GenzooError
from genzoo.files import check_writable
from genzoo.models.base import WEIGHTS_FILE, ConditionalSteps, GenerativeModel
from genzoo.progress import reporting, track
from genzoo.train.run import load_run

MAGIC = b"GZOO"
FORMAT_VERSION = 1
CODER = (
    "autoregressive-range-v2"  # "autoregressive-range" files (whole-image passes, other floats) are refused
)
BATCH = 500  # images decoded in parallel; part of the file, since both sides must batch alike
SPLITS = ("all", "train", "val", "test")


@dataclass
class Compressed:
    """What `compress` made: the file's bytes, its size against the model's NLL, and the timing."""

    data: bytes
    count: int
    dims: int
    bits_per_dim: float  # the whole file, header included
    payload_bits_per_dim: float  # the coded bits alone (bits-back: less its initial bits)
    nll_bits_per_dim: float  # what the coder aims at: -log2 p(x), or bits-back's -ELBO of its latents
    initial_bits: int  # bits-back's random bits to start from, in the file but no example's cost
    seconds: float

    def summary(self) -> dict[str, Any]:
        overhead = self.bits_per_dim / self.nll_bits_per_dim - 1 if self.nll_bits_per_dim > 0 else None
        return {
            "count": self.count,
            "bytes": len(self.data),
            "bits_per_dim": self.bits_per_dim,
            "payload_bits_per_dim": self.payload_bits_per_dim,
            "nll_bits_per_dim": self.nll_bits_per_dim,
            "initial_bits": self.initial_bits,
            "overhead": overhead,
            "seconds": self.seconds,
        }


# ---- the coder -------------------------------------------------------------------------------
def _categorical():
    return constriction_module().stream.model.Categorical(perfect=False)


def _pixel_steps(count: int, dims: int, batch: int) -> Iterator[tuple[int, int]]:
    """(first example of the batch, dimension) in coding order, with a progress bar over pixels."""
    steps = [(start, d) for start in range(0, count, batch) for d in range(dims)]
    return iter(track(steps, unit="pixel"))


def _probs(steps: ConditionalSteps) -> np.ndarray:
    return np.ascontiguousarray(steps.probs().cpu().numpy(), dtype=np.float32)


def encode(model: GenerativeModel, x: torch.Tensor, batch: int = BATCH) -> tuple[np.ndarray, float]:
    """The range-coded words of `x` (N, *shape) in data units, and -log2 p(x) under the model's
    conditionals, summed (the bits the coder aims at)."""
    constriction = constriction_module()
    config = model.config
    levels, low, high = int(config.data_levels), config.data_low, config.data_high
    flat = x.reshape(len(x), -1).float().cpu()
    symbols = level_symbols(flat, levels, low, high)
    encoder = constriction.stream.queue.RangeEncoder()
    categorical = _categorical()
    bits = 0.0
    for start, d in _pixel_steps(len(flat), flat.shape[1], batch):
        if d == 0:
            known = flat[start : start + batch]
            steps = model.conditional_steps(len(known))
        probs, sym = _probs(steps), symbols[start : start + batch, d]
        encoder.encode(sym, categorical, probs)
        bits += coded_bits(probs, sym)
        steps.fix(known[:, d])
    return encoder.get_compressed(), bits


def decode(model: GenerativeModel, words: np.ndarray, count: int, batch: int = BATCH) -> torch.Tensor:
    """The inverse of `encode`: `count` examples (count, *shape) in data units."""
    constriction = constriction_module()
    config = model.config
    levels, low, high = int(config.data_levels), config.data_low, config.data_high
    dims = int(np.prod(config.data_shape))
    decoder = constriction.stream.queue.RangeDecoder(words)
    categorical = _categorical()
    values = torch.linspace(low, high, levels)
    out = torch.full((count, dims), float(low))
    for start, d in _pixel_steps(count, dims, batch):
        if d == 0:
            steps = model.conditional_steps(len(out[start : start + batch]))
        decoded = values[torch.from_numpy(decoder.decode(categorical, _probs(steps)).astype(np.int64))]
        out[start : start + batch, d] = decoded
        steps.fix(decoded)
    return out.view(count, *config.data_shape)


# ---- the file --------------------------------------------------------------------------------
def run_identity(run: str | Path) -> str:
    """SHA-256 of the run's weights: a file decodes only with the model that coded it."""
    path = Path(run) / WEIGHTS_FILE
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pack(header: dict[str, Any], words: np.ndarray) -> bytes:
    meta = json.dumps(header, sort_keys=True).encode()
    body = MAGIC + struct.pack("<HI", FORMAT_VERSION, len(meta)) + meta + words.astype("<u4").tobytes()
    return body + struct.pack("<I", zlib.crc32(body))


def unpack(blob: bytes, source: str) -> tuple[dict[str, Any], np.ndarray]:
    """The header and words of a .gzoo file; a GenzooError for anything that is not one, intact."""
    if len(blob) < 14 or blob[:4] != MAGIC:
        raise GenzooError(f"'{source}' is not a genzoo compressed file (made by `genzoo compress`)")
    body, (crc,) = blob[:-4], struct.unpack("<I", blob[-4:])
    if zlib.crc32(body) != crc:
        raise GenzooError(f"'{source}' is damaged or truncated (its checksum does not match); compress again")
    version, length = struct.unpack("<HI", body[4:10])
    if version != FORMAT_VERSION:
        raise GenzooError(
            f"'{source}' has format version {version}; this genzoo reads version {FORMAT_VERSION}"
        )
    try:
        header = json.loads(body[10 : 10 + length])
        words = np.frombuffer(body[10 + length :], dtype="<u4").astype(np.uint32)
    except (ValueError, UnicodeDecodeError):
        raise GenzooError(f"'{source}' has an unreadable header; compress again") from None
    if (len(body) - 10 - length) % 4:
        raise GenzooError(f"'{source}' is damaged (its bitstream is not whole words); compress again")
    return header, words


# ---- the commands ----------------------------------------------------------------------------
def compress(
    run: str | Path,
    data: str | Path | torch.Tensor | None = None,
    *,
    split: str = "all",
    out: str | Path | None = None,
    device: str = "cpu",
    quiet: bool = False,
) -> Compressed:
    """Code `data` (a dataset name or path and its `split`, a (N, *shape) tensor in data units, or
    by default the run's own data) into one .gzoo file's bytes, written to `out` when given."""
    if split not in SPLITS:
        raise GenzooError(f"unknown split '{split}'; choose one of: {', '.join(SPLITS)}")
    out = Path(out) if out is not None else None
    if out is not None:
        if out.is_dir():
            raise GenzooError(f"--out '{out}' is a directory; give a file name such as images.gzoo")
        check_writable(out, "--out")
    model, spec = load_run(run, device=device)
    if not (model.codes_exactly or model.bits_back):
        raise GenzooError(
            f"a {model.name} run cannot code losslessly: compress needs exact per-pixel conditionals "
            "(pixelcnn) or a VAE for bits-back coding (vae, iwae)"
        )
    x = _examples(model, data if data is not None else spec.data, split, spec)
    config = model.config
    header = {
        "model": model.name,
        "run": run_identity(run),
        "shape": list(config.data_shape),
        "levels": int(config.data_levels),
        "low": config.data_low,
        "high": config.data_high,
        "count": len(x),
    }
    started = time.perf_counter()
    with torch.no_grad(), one_thread(), reporting("compressing", quiet):
        if model.codes_exactly:
            words, bits = encode(model, x)
            header.update(coder=CODER, batch=BATCH)
            initial = 0
        else:
            words, stats = bitsback.encode(model, x)
            header.update(
                {k: stats[k] for k in ("latent_bits", "batch", "initial_seed")}, coder=bitsback.CODER
            )
            bits, initial = stats["ideal_bits"], stats["initial_bits"]
    blob = pack(header, words)
    dims = x[0].numel() * len(x)
    result = Compressed(
        blob, len(x), dims, 8 * len(blob) / dims, (32 * len(words) - initial) / dims, bits / dims,
        initial, time.perf_counter() - started,
    )  # fmt: skip
    if out is not None:
        _write_bytes(out, blob)
    return result


def decompress(
    run: str | Path,
    file: str | Path,
    *,
    out: str | Path | None = None,
    device: str = "cpu",
    quiet: bool = False,
) -> torch.Tensor:
    """The examples a .gzoo file holds, (N, *shape) in data units, exactly as compressed; `out` also
    writes them: a .npy array, or PNG images into a folder (a path without a suffix)."""
    path = Path(file)
    if not path.is_file():
        raise GenzooError(f"compressed file '{path}' does not exist")
    out = Path(out) if out is not None else None
    if out is not None:
        if out.suffix and out.suffix.lower() != ".npy":
            raise GenzooError(f"--out must be a .npy file or a folder for PNG images, got '{out.name}'")
        check_writable(out, "--out")
    header, words = unpack(path.read_bytes(), str(path))
    model, _ = load_run(run, device=device)
    if header.get("run") != run_identity(run):
        raise GenzooError(
            f"'{path.name}' was compressed with another run (a {header.get('model')} whose weights differ "
            f"from '{run}''s); decompress it with the run that made it"
        )
    coder = header.get("coder")
    if coder not in (CODER, bitsback.CODER):
        raise GenzooError(f"'{path.name}' uses the coder '{coder}', which this genzoo lacks")
    with torch.no_grad(), one_thread(), reporting("decompressing", quiet):
        if coder == CODER:
            x = decode(model, words, int(header["count"]), int(header["batch"]))
        else:
            settings = {k: int(header[k]) for k in ("latent_bits", "batch", "initial_seed")}
            x = bitsback.decode(model, words, int(header["count"]), **settings)
    if out is not None:
        write_examples(x, out, model.config.data_low, model.config.data_high)
    return x


def _examples(model: GenerativeModel, data: Any, split: str, spec) -> torch.Tensor:
    if isinstance(data, torch.Tensor):
        x = data
    elif Path(str(data)).suffix.lower() == ".npy":
        from genzoo.sampling import read_npy

        x = torch.from_numpy(read_npy(Path(data)).astype(np.float32))
    else:
        options = spec.data_options if str(data) == spec.data else {}
        dataset = load_dataset(data, **without_common(options))
        info = dataset.info
        if info.levels != model.config.data_levels:
            raise GenzooError(
                f"'{data}' has {info.levels} levels per value, the run codes {model.config.data_levels}; "
                "compress data like its training data"
            )
        names = dataset.split_names if split == "all" else (split,)
        x = torch.cat([dataset.split(n).tensors[0] for n in names])
    shape = tuple(model.config.data_shape)
    if x.dim() == len(shape):
        x = x.unsqueeze(0)
    if tuple(x.shape[1:]) != shape or len(x) == 0:
        raise GenzooError(f"the data have shape {tuple(x.shape)}; the run codes examples of shape {shape}")
    return x.float()


def _write_bytes(path: Path, blob: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)


def write_examples(x: torch.Tensor, out: Path, low: float, high: float) -> None:
    """A .npy array, or one PNG per image (8-bit, the levels spread over 0..255) in a folder."""
    if out.suffix.lower() == ".npy":
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp.npy")
        np.save(tmp, x.numpy())
        tmp.replace(out)
        return
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    pixels = ((x - low) / (high - low)).clamp(0, 1).mul(255).round().byte().numpy()
    for i, image in enumerate(pixels):
        Image.fromarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)).save(
            out / f"{i:06d}.png"
        )


__all__ = ["Compressed", "compress", "decode", "decompress", "encode", "pack", "unpack"]
