"""MNIST from the standard idx files (gzipped or raw), plus a statically binarized variant.

Splits (DESIGN.md): with the full 60k train set, train = first 55,000, val = last 5,000,
test = t10k. With only the 10k t10k set (the offline copy in ../shared/data), train =
first 8,000, val = next 1,000, test = last 1,000, and a warning says the numbers are not
comparable with published ones.

Files are looked for, in order: the `path` the user gives, `$GENZOO_DATA`,
`../shared/data` relative to the working directory and to the repository, and
`~/.cache/genzoo/mnist`. Nothing is downloaded unless `download=True`.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import re
import struct
import tempfile
import urllib.request
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch

from genzoo.data.base import DataInfo, Dataset, shared_data_dirs
from genzoo.data.registry import register_dataset
from genzoo.errors import GenzooError
from genzoo.files import use_umask

CACHE_DIR = Path("~/.cache/genzoo/mnist").expanduser()
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# The idx type byte -> element type; multi-byte types are big-endian in the file.
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_NAME = re.compile(r"idx\d-ubyte(\.gz)?$")
_REDOWNLOAD = "delete it and fetch it again (e.g. load_dataset('mnist', download=True))"
_warned_small = False


def read_idx(path: str | Path) -> np.ndarray:
    """Read one idx file (gzipped or raw, told apart by the gzip magic 0x1f8b) into an array.

    The header is checked against the file length so a truncated download fails here,
    with the file named, rather than as a reshape error deep inside a training run.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise GenzooError(
            f"cannot read idx file '{path}' ({e.strerror}); check the path and permissions"
        ) from e
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise GenzooError(
                f"idx file '{path}' is a corrupt or truncated gzip file ({e}); {_REDOWNLOAD}"
            ) from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise GenzooError(
            f"'{path}' is not an idx file (bad magic number 0x{raw[:4].hex() or 'empty'}); "
            f"give an MNIST-style idx file, or {_REDOWNLOAD}"
        )
    ndim, dtype = raw[3], _IDX_TYPES[raw[2]]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise GenzooError(f"idx file '{path}' is truncated inside its header; {_REDOWNLOAD}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + math.prod(dims) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise GenzooError(
            f"idx file '{path}' is {what}: dims {list(dims)} need {expected} bytes, "
            f"found {len(raw)}; {_REDOWNLOAD}"
        )
    # astype copies into a writable, native-endian array (frombuffer's view is read-only).
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def looks_like_idx(path: Path) -> bool:
    """Path rule: an idx file by name, or a folder holding MNIST images files."""
    if path.is_file():
        return bool(_IDX_NAME.search(path.name))
    if path.is_dir():
        return any(_find(path, f"{kind}-images-idx3-ubyte") for kind in ("train", "t10k"))
    return False


def _find(directory: Path, stem: str) -> Path | None:
    """The file for `stem` in `directory`, under any of the names it is distributed as."""
    for prefix in ("", "mnist-"):
        for suffix in (".gz", ""):
            candidate = directory / f"{prefix}{stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _search_dirs() -> list[Path]:
    """Where to look when the user gives no path: the shared data folders, each with an `mnist`
    subfolder, then the download cache."""
    expanded = [p for d in shared_data_dirs() for p in (d, d / "mnist")] + [CACHE_DIR]
    return list(dict.fromkeys(p.resolve() for p in expanded))


def _labels_beside(images: Path) -> Path | None:
    """The labels file next to an images file, by the standard naming."""
    stem = images.name.removesuffix(".gz")
    label_stem = stem.replace("images", "labels").replace("idx3", "idx1")
    if label_stem == stem:
        return None
    for name in (label_stem, label_stem + ".gz"):
        if (images.parent / name).is_file():
            return images.parent / name
    return None


def _pairs_in(directory: Path) -> dict[str, tuple[Path, Path | None]]:
    """{'train': (images, labels), 't10k': ...} for the sets present in `directory`."""
    pairs = {}
    for kind in ("train", "t10k"):
        images = _find(directory, f"{kind}-images-idx3-ubyte")
        if images is not None:
            pairs[kind] = (images, _find(directory, f"{kind}-labels-idx1-ubyte"))
    return pairs


def _locate(path: str | Path | None, download: bool) -> dict[str, tuple[Path, Path | None]]:
    if path is not None:
        path = Path(path).expanduser()
        if path.is_file():
            if "labels" in path.name:
                raise GenzooError(f"'{path}' is a labels file; give the images idx file or its folder")
            # An explicit file is used on its own, split like the small offline set.
            return {"single": (path, _labels_beside(path))}
        if download and not (_pairs_in(path).keys() >= {"train", "t10k"}):
            download_mnist(path)
        if not path.is_dir():
            raise GenzooError(
                f"MNIST path '{path}' does not exist; give a folder of idx files or an idx file"
            )
        pairs = _pairs_in(path)
        if not pairs:
            raise GenzooError(
                f"no MNIST idx files in '{path}'; expected t10k-images-idx3-ubyte.gz "
                "(and train-images-idx3-ubyte.gz), or pass download=True"
            )
        return pairs
    dirs = _search_dirs()
    for directory in dirs:
        pairs = _pairs_in(directory)
        if pairs and not (download and pairs.keys() != {"train", "t10k"}):
            return pairs
    if download:
        download_mnist(CACHE_DIR)
        return _pairs_in(CACHE_DIR)
    raise GenzooError(
        f"MNIST idx files not found in any of: {', '.join(map(str, dirs))}; put them in one of these, "
        "set GENZOO_DATA=DIR, give path=..., or pass download=True"
    )


def _read_pair(images: Path, labels: Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    x = read_idx(images)
    if x.ndim != 3:
        raise GenzooError(f"'{images}' holds an array of shape {x.shape}; expected images (N, H, W)")
    if labels is None:
        return torch.from_numpy(x), torch.full((len(x),), -1, dtype=torch.long)
    y = read_idx(labels)
    if y.shape != (len(x),):
        raise GenzooError(
            f"'{labels}' holds labels of shape {y.shape} but '{images}' has {len(x)} images; "
            "give matching images and labels files"
        )
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))


def _warn_once(message: str) -> None:
    # Once per process: the same loader is called for every run of a `compare`.
    global _warned_small
    if not _warned_small:
        _warned_small = True
        warnings.warn(message, stacklevel=4)


def _load(path: str | Path | None, download: bool, binary: bool) -> Dataset:
    pairs = _locate(path, download)
    if "train" in pairs and "t10k" in pairs:
        x, y = _read_pair(*pairs["train"])
        x_test, y_test = _read_pair(*pairs["t10k"])
        n_val = len(x) // 12  # 5,000 of 60,000: the usual validation split
        splits = {
            "train": (x[:-n_val], y[:-n_val]),
            "val": (x[-n_val:], y[-n_val:]),
            "test": (x_test, y_test),
        }
    else:
        images, labels = next(iter(pairs.values()))
        x, y = _read_pair(images, labels)
        n_train, n_val = len(x) * 8 // 10, len(x) // 10
        _warn_once(
            f"MNIST: only '{images.name}' ({len(x)} images) was found, so train/val/test = "
            f"{n_train}/{n_val}/{len(x) - n_train - n_val} of it; numbers are not comparable with "
            "published ones (add the 60k train files beside it, or pass download=True)"
        )
        splits = {
            "train": (x[:n_train], y[:n_train]),
            "val": (x[n_train : n_train + n_val], y[n_train : n_train + n_val]),
            "test": (x[n_train + n_val :], y[n_train + n_val :]),
        }
    if x.shape[1:] != splits["test"][0].shape[1:]:
        raise GenzooError(
            f"MNIST train and test images differ in size: {x.shape[1:]} vs test; check the files"
        )
    all_labels = torch.cat([s[1] for s in splits.values()])
    num_classes = int(all_labels.max()) + 1 if bool((all_labels >= 0).all()) else 0
    height, width = x.shape[1:]
    if binary:
        # Static binarization at 0.5 (DESIGN.md asks variants to say which they use).
        splits = {k: ((v[0].float() / 255.0 > 0.5), v[1]) for k, v in splits.items()}
        info = DataInfo("mnist-binary", "image", (1, height, width), 2, 0.0, 1.0, num_classes)
    else:
        info = DataInfo("mnist", "image", (1, height, width), 256, 0.0, 255.0, num_classes)
    return Dataset(info, {k: (v[0].float().unsqueeze(1), v[1]) for k, v in splits.items()})


@register_dataset("mnist", reads=looks_like_idx)
def load_mnist(path: str | Path | None = None, download: bool = False) -> Dataset:
    """MNIST digits, 1x28x28, values 0..255 (256 levels), labels 0..9."""
    return _load(path, download, binary=False)


@register_dataset("mnist-binary")
def load_mnist_binary(path: str | Path | None = None, download: bool = False) -> Dataset:
    """MNIST statically binarized (pixel/255 > 0.5), values 0/1, labels 0..9."""
    return _load(path, download, binary=True)


def download_mnist(root: str | Path = CACHE_DIR, *, timeout: float = 60.0) -> Path:
    """Fetch the four standard MNIST files into `root`, checking each MD5; returns `root`.

    Files already present with the right checksum are kept. Each file is written to a
    temporary name and renamed, so an interrupted download never leaves a partial file
    under the real name.
    """
    root = Path(root).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GenzooError(
            f"cannot create MNIST folder '{root}' ({e.strerror}); choose a writable path"
        ) from e
    for name, md5 in MD5.items():
        target = root / name
        if target.is_file() and _md5(target) == md5:
            continue
        errors = []
        for mirror in MIRRORS:
            try:
                _fetch(mirror + name, target, md5, timeout)
                break
            except (OSError, ValueError) as e:  # URLError is an OSError
                errors.append(f"{mirror}: {e}")
        else:
            raise GenzooError(
                f"could not download MNIST file '{name}' ({'; '.join(errors)}); check your network, "
                f"or place the idx files in '{root}' by hand"
            )
    return root


def _fetch(url: str, target: Path, md5: str, timeout: float) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        digest = hashlib.md5()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != md5:
            raise ValueError(f"MD5 mismatch (got {digest.hexdigest()}, expected {md5})")
        use_umask(tmp)  # mkstemp creates 0600; the data cache is shared like any other file
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
