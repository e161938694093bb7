"""Dataset loaders: mnist (idx), image-folder, toy2d, and the registry's errors."""

from __future__ import annotations

import gzip
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from genzoo.data import load_dataset, toy2d_modes
from genzoo.data import mnist as mnist_module
from genzoo.data.mnist import looks_like_idx, read_idx
from genzoo.errors import GenzooError

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TOYS = ["toy2d-ring", "toy2d-grid", "toy2d-moons", "toy2d-swissroll", "toy2d-checkerboard"]
SMALL = {"n_train": 500, "n_val": 100, "n_test": 100}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as an idx file (the inverse of read_idx)."""
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    dtype = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    header = bytes([0, 0, codes[dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def write_mnist(directory: Path, kind: str, n: int, gz: bool = True, seed: int = 0) -> np.ndarray:
    """Write a small fake `kind` (train / t10k) images+labels pair; returns the images."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    directory.mkdir(parents=True, exist_ok=True)
    for stem, array in ((f"{kind}-images-idx3-ubyte", images), (f"{kind}-labels-idx1-ubyte", labels)):
        data = idx_bytes(array)
        if gz:
            (directory / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / stem).write_bytes(data)
    return images


@pytest.fixture(autouse=True)
def _reset_mnist_warning(monkeypatch):
    # The small-split warning fires once per process; each test should see it afresh.
    monkeypatch.setattr(mnist_module, "_warned_small", False)


# --- idx reader -------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_read_idx_roundtrip(tmp_path, gz, dtype):
    array = (np.arange(24).reshape(2, 3, 4) * 3).astype(dtype)
    data = idx_bytes(array)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    path.write_bytes(gzip.compress(data) if gz else data)
    out = read_idx(path)
    assert out.shape == (2, 3, 4) and out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, array)


def test_read_idx_truncated(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((5, 28, 28), np.uint8))[:-100])
    with pytest.raises(GenzooError, match=r"t10k-images-idx3-ubyte' is truncated.*download=True"):
        read_idx(path)


def test_read_idx_bad_magic(tmp_path):
    path = tmp_path / "junk-idx3-ubyte"
    path.write_bytes(b"not an idx file at all")
    with pytest.raises(GenzooError, match=r"junk-idx3-ubyte' is not an idx file \(bad magic number"):
        read_idx(path)


def test_read_idx_truncated_gzip(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((5, 28, 28), np.uint8)))[:-20])
    with pytest.raises(GenzooError, match=r"idx3-ubyte.gz' is a corrupt or truncated gzip file"):
        read_idx(path)


# --- mnist loader on small fake files --------------------------------------------------


def test_mnist_full_split(tmp_path):
    # 120 train images: val is the last 1/12 (as 5,000 of 60,000), test is all of t10k.
    train = write_mnist(tmp_path, "train", 120)
    write_mnist(tmp_path, "t10k", 30, gz=False, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the full split must not warn
        ds = load_dataset(tmp_path)
    assert ds.info.name == "mnist" and ds.info.shape == (1, 28, 28) and ds.info.num_classes == 10
    sizes = {s: len(ds.split(s)) for s in ds.split_names}
    assert sizes == {"train": 110, "val": 10, "test": 30}
    x, y = ds.split("val").tensors
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    np.testing.assert_array_equal(x[:, 0].numpy(), train[110:].astype(np.float32))


def test_mnist_only_t10k_warns_and_splits_80_10_10(tmp_path):
    write_mnist(tmp_path, "t10k", 100)
    with pytest.warns(UserWarning, match="not comparable"):
        ds = load_dataset("mnist", path=str(tmp_path))
    assert {s: len(ds.split(s)) for s in ds.split_names} == {"train": 80, "val": 10, "test": 10}


def test_mnist_path_to_images_file_dispatches_and_finds_labels(tmp_path):
    write_mnist(tmp_path, "t10k", 50, gz=False)
    images = tmp_path / "t10k-images-idx3-ubyte"
    assert looks_like_idx(images) and looks_like_idx(tmp_path)
    with pytest.warns(UserWarning):
        ds = load_dataset(images)
    y = ds.split("train").tensors[1]
    assert y.tolist() == [i % 10 for i in range(40)]


def test_mnist_without_labels_is_unlabelled(tmp_path):
    write_mnist(tmp_path, "t10k", 20)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.warns(UserWarning):
        ds = load_dataset("mnist", path=tmp_path)
    assert ds.info.num_classes == 0
    assert (ds.split("train").tensors[1] == -1).all()


def test_mnist_binary_is_static_threshold(tmp_path):
    images = write_mnist(tmp_path, "t10k", 20)
    with pytest.warns(UserWarning):
        ds = load_dataset("mnist-binary", path=tmp_path)
    assert (ds.info.levels, ds.info.low, ds.info.high) == (2, 0.0, 1.0)
    x = ds.split("train").tensors[0][:, 0]
    np.testing.assert_array_equal(x.numpy(), (images[:16] / 255.0 > 0.5).astype(np.float32))


def test_mnist_corrupt_file_named_in_error(tmp_path):
    write_mnist(tmp_path, "t10k", 20)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bgarbage")
    with pytest.raises(GenzooError, match="t10k-images-idx3-ubyte.gz' is a corrupt"):
        load_dataset("mnist", path=tmp_path)


def test_mnist_missing_everywhere(tmp_path, monkeypatch):
    # Point every search location at empty folders.
    monkeypatch.setenv("GENZOO_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(mnist_module, "_search_dirs", lambda: [tmp_path / "env", tmp_path / "cache"])
    with pytest.raises(GenzooError, match="MNIST idx files not found.*download=True"):
        load_dataset("mnist")
    with pytest.raises(GenzooError, match="no MNIST idx files in"):
        load_dataset("mnist", path=tmp_path)


def test_mnist_search_order_prefers_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GENZOO_DATA", str(tmp_path))
    assert mnist_module._search_dirs()[0] == tmp_path.resolve()
    write_mnist(tmp_path / "mnist", "t10k", 20)  # a data root may keep MNIST in a subfolder
    with pytest.warns(UserWarning, match="20 images"):
        ds = load_dataset("mnist")
    assert len(ds.split("train")) == 16


def test_real_mnist_t10k_from_shared_data(monkeypatch, tmp_path):
    if not (SHARED_DATA / "mnist-t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"no offline MNIST at {SHARED_DATA} (expected shared/data beside the repo)")
    # Found without help: no env var, and a working directory with no ../shared.
    monkeypatch.delenv("GENZOO_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match="8000/1000/1000"):
        ds = load_dataset("mnist")
    assert {s: len(ds.split(s)) for s in ds.split_names} == {"train": 8000, "val": 1000, "test": 1000}
    x, y = ds.split("test").tensors
    assert x.shape == (1000, 1, 28, 28) and x.min() == 0 and x.max() == 255
    assert x.dtype == torch.float32 and sorted(y.unique().tolist()) == list(range(10))
    # The first t10k digits are famous: 7, 2, 1, 0, 4.
    assert ds.split("train").tensors[1][:5].tolist() == [7, 2, 1, 0, 4]


# --- image folder -----------------------------------------------------------------------


def write_png(path: Path, value: int, size: tuple[int, int] = (10, 12), mode: str = "L") -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, 0, 255 - value)
    Image.new(mode, size, color).save(path)


def test_image_folder_with_classes(tmp_path):
    for i in range(6):
        write_png(tmp_path / "cats" / f"{i}.png", 10)
        write_png(tmp_path / "dogs" / "nested" / f"{i}.jpg", 200)
    ds = load_dataset(tmp_path, size=8, val_fraction=0.25, test_fraction=0.25)
    assert ds.class_names == ["cats", "dogs"] and ds.info.num_classes == 2
    assert ds.info.shape == (1, 8, 8) and ds.info.levels == 256
    assert {s: len(ds.split(s)) for s in ds.split_names} == {"train": 6, "val": 3, "test": 3}
    x, y = (
        torch.cat([ds.split(s).tensors[0] for s in ds.split_names]),
        torch.cat([ds.split(s).tensors[1] for s in ds.split_names]),
    )
    # Labels follow the folder: cats are dark, dogs bright (JPEG is lossy, hence the margin).
    assert (x[y == 0] < 20).all() and (x[y == 1] > 190).all()
    assert x.min() >= 0 and x.max() <= 255 and x.dtype == torch.float32


def test_image_folder_flat_rgb_unlabelled_and_seeded(tmp_path):
    for i in range(10):
        write_png(tmp_path / f"img{i}.png", 20 * i, mode="RGB")
    a = load_dataset(tmp_path, size=4, grayscale=False, seed=1)
    b = load_dataset("image-folder", path=tmp_path, size=4, grayscale=False, seed=1)
    c = load_dataset(tmp_path, size=4, grayscale=False, seed=2)
    assert a.info.shape == (3, 4, 4) and a.info.num_classes == 0 and a.class_names == []
    assert (a.split("train").tensors[1] == -1).all()
    assert torch.equal(a.split("train").tensors[0], b.split("train").tensors[0])
    assert not torch.equal(a.split("train").tensors[0], c.split("train").tensors[0])


def test_image_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    with pytest.raises(GenzooError, match="no PNG/JPEG images found under"):
        load_dataset("image-folder", path=empty)
    with pytest.raises(GenzooError, match="does not exist"):
        load_dataset("image-folder", path=tmp_path / "nope")
    with pytest.raises(GenzooError, match="needs a folder"):
        load_dataset("image-folder")
    bad = tmp_path / "bad"
    write_png(bad / "ok.png", 5)
    (bad / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(GenzooError, match=r"cannot read image '.*broken.png'"):
        load_dataset(bad)
    with pytest.raises(GenzooError, match="val_fraction"):
        load_dataset(bad, val_fraction=0.6, test_fraction=0.5)


# --- toy2d ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TOYS)
def test_toy2d_shapes_bounds_and_seeds(name):
    ds = load_dataset(name, **SMALL)
    info = ds.info
    assert info.modality == "vector" and info.shape == (2,) and info.levels is None
    assert {s: len(ds.split(s)) for s in ds.split_names} == {"train": 500, "val": 100, "test": 100}
    x, y = ds.split("train").tensors
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() >= info.low and x.max() <= info.high and info.high <= 4.5
    assert x.std(0).min() > 0.3  # spread over the plane, not collapsed
    if info.num_classes:
        assert y.min() >= 0 and y.max() < info.num_classes
    else:
        assert (y == -1).all()
    same = load_dataset(name, **SMALL)
    other = load_dataset(name, **SMALL, seed=1)
    assert torch.equal(x, same.split("train").tensors[0])
    assert not torch.equal(x, other.split("train").tensors[0])
    # Splits are independent draws, and the test set does not move when n_train does.
    assert not torch.equal(x[:100], ds.split("test").tensors[0])
    bigger = load_dataset(name, n_train=600, n_val=100, n_test=100)
    assert torch.equal(ds.split("test").tensors[0], bigger.split("test").tensors[0])


@pytest.mark.parametrize(("name", "k", "std"), [("toy2d-ring", 8, 0.02), ("toy2d-grid", 25, 0.05)])
def test_toy2d_mixture_modes(name, k, std):
    centers, nominal = toy2d_modes(name)
    assert centers.shape == (k, 2) and nominal == std
    ds = load_dataset(name, n_train=20000, n_val=10, n_test=10)
    x, y = ds.split("train").tensors
    assert ds.info.num_classes == k and set(y.tolist()) == set(range(k))
    offset = x - centers[y]
    assert offset.abs().max() < 5 * std  # every sample near its own centre
    assert abs(offset.std().item() - std) < 0.05 * std
    assert (offset.mean(0).abs() < 0.1 * std).all()
    counts = torch.bincount(y, minlength=k).float()
    assert counts.min() > 0.8 * counts.mean()  # modes equally likely


def test_toy2d_mode_geometry():
    ring, _ = toy2d_modes("toy2d-ring")
    torch.testing.assert_close(ring.norm(dim=1), torch.full((8,), 2.0))
    grid, _ = toy2d_modes("toy2d-grid")
    assert sorted(set(grid[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert toy2d_modes("toy2d-moons") is None and toy2d_modes("nope") is None


def test_toy2d_bad_size():
    with pytest.raises(GenzooError, match="n_train must be a positive integer"):
        load_dataset("toy2d-ring", n_train=0)


# --- registry errors --------------------------------------------------------------------


def test_unknown_name_suggests_nearest():
    with pytest.raises(GenzooError, match=r"unknown dataset 'mnsit' \(did you mean 'mnist'\?\)"):
        load_dataset("mnsit")


def test_missing_path_and_unreadable_path(tmp_path):
    with pytest.raises(GenzooError, match="data path .* does not exist"):
        load_dataset(str(tmp_path / "missing"))
    with pytest.raises(GenzooError, match="data path 'photos.zip' does not exist"):
        load_dataset("photos.zip")
    (tmp_path / "notes.bin").write_bytes(b"x")
    with pytest.raises(GenzooError, match="no dataset loader can read .*image-folder.*mnist"):
        load_dataset(tmp_path / "notes.bin")


def test_unknown_option_is_rejected():
    with pytest.raises(GenzooError, match="has no option 'sizes'"):
        load_dataset("toy2d-ring", sizes=3)


def test_download_checks_md5_and_leaves_no_partial_file(tmp_path, monkeypatch):
    import hashlib
    import io

    payload = gzip.compress(idx_bytes(np.zeros((3, 28, 28), np.uint8)))
    monkeypatch.setattr(mnist_module.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(payload))
    with pytest.raises(GenzooError, match="could not download MNIST file.*MD5 mismatch"):
        mnist_module.download_mnist(tmp_path / "dl")
    assert list((tmp_path / "dl").iterdir()) == []  # the temporary file was removed
    good = hashlib.md5(payload).hexdigest()
    monkeypatch.setattr(mnist_module, "MD5", {name: good for name in mnist_module.MD5})
    root = mnist_module.download_mnist(tmp_path / "dl")
    assert sorted(p.name for p in root.iterdir()) == sorted(mnist_module.MD5)
