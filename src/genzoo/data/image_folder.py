"""Any folder of PNG/JPEG images, searched recursively, as a dataset.

If every image sits inside a subfolder of the root, the top-level subfolders are the
classes (sorted names -> labels 0..K-1, kept as `Dataset.class_names`); otherwise the
images are unlabelled (-1). Images are resized to `size` x `size`, values 0..255.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from genzoo.data.base import DataInfo, Dataset
from genzoo.data.registry import register_dataset
from genzoo.errors import GenzooError, first_line

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})


def _is_image(path: Path, root: Path) -> bool:
    # Hidden files and folders (._foo.png from macOS, .ipynb_checkpoints) are never data.
    hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
    return path.suffix.lower() in IMAGE_SUFFIXES and not hidden and path.is_file()


def image_files(root: Path) -> list[Path]:
    """All image files under `root`, in a stable (sorted) order."""
    return sorted(p for p in root.rglob("*") if _is_image(p, root))


def has_images(path: Path) -> bool:
    """Path rule: an existing directory with at least one image file somewhere below it."""
    return path.is_dir() and any(_is_image(p, path) for p in path.rglob("*"))


def _read(path: Path, size: int, grayscale: bool) -> np.ndarray:
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            # Pillow only warns about an image past MAX_IMAGE_PIXELS (and raises past twice that):
            # a header claiming a huge size is a decompression bomb, whose decoding would fill memory.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img = ImageOps.exif_transpose(img)  # phone photos store rotation in EXIF
                img = img.convert("L" if grayscale else "RGB")
                img = img.resize((size, size), Image.Resampling.BICUBIC)
                return np.asarray(img, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise GenzooError(
            f"image '{path}' is too large to read safely ({first_line(e)}); "
            f"delete it or shrink it below {Image.MAX_IMAGE_PIXELS} pixels"
        ) from e
    except Exception as e:
        # Pillow reports truncated or garbled files with OSError, SyntaxError, ValueError, EOFError,
        # zlib and struct errors and more; only the user's file is being read here.
        raise GenzooError(
            f"cannot read image '{path}' ({type(e).__name__}: {first_line(e)}); delete or replace the corrupt file"
        ) from e


@register_dataset("image-folder", reads=has_images)
def load_image_folder(
    path: str | Path | None = None,
    size: int = 32,
    grayscale: bool = True,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> Dataset:
    """Images under `path`, shuffled with `seed` then split train/val/test by the fractions."""
    if path is None:
        raise GenzooError("image-folder needs a folder: give its path as the data (e.g. --data ./my_images)")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise GenzooError(f"image folder '{root}' does not exist or is not a folder; check the path")
    if size < 1:
        raise GenzooError(f"image-folder option size must be a positive integer, got {size}")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise GenzooError(
            f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be in [0, 1) "
            "and sum to less than 1"
        )
    files = image_files(root)
    if not files:
        raise GenzooError(f"no PNG/JPEG images found under '{root}'; put .png/.jpg files in it")

    # Classes only when every image is inside a subfolder: a stray top-level image
    # would otherwise have no class, so the whole folder is read as unlabelled.
    top = [p.relative_to(root).parts[0] for p in files]
    labelled = all(len(p.relative_to(root).parts) > 1 for p in files)
    class_names = sorted(set(top)) if labelled else []
    index = {name: i for i, name in enumerate(class_names)}
    y = torch.tensor([index[t] for t in top] if labelled else [-1] * len(files), dtype=torch.long)

    x = torch.from_numpy(np.stack([_read(p, size, grayscale) for p in files]))
    x = x.unsqueeze(1) if grayscale else x.permute(0, 3, 1, 2)  # -> (N, C, H, W)

    order = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed))
    n_val, n_test = round(len(files) * val_fraction), round(len(files) * test_fraction)
    n_train = len(files) - n_val - n_test
    if n_train < 1:
        raise GenzooError(f"only {len(files)} images under '{root}': too few to split; add images")
    parts = {
        "train": order[:n_train],
        "val": order[n_train : n_train + n_val],
        "test": order[n_train + n_val :],
    }
    info = DataInfo(
        name="image-folder",
        modality="image",
        shape=(1 if grayscale else 3, size, size),
        levels=256,
        low=0.0,
        high=255.0,
        num_classes=len(class_names),
    )
    dataset = Dataset(info, {k: (x[idx], y[idx]) for k, idx in parts.items()})
    dataset.class_names = class_names  # type: ignore[attr-defined]  # label i is class_names[i]
    return dataset
