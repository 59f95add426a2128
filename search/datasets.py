"""In-memory image datasets for proxy training: Fashion-MNIST, CIFAR-10, ImageFolder, synthetic.

Every source yields an `ImageData` of uint8 images (N, C, H, W) and int64 labels, loaded once
per process (the tensors are shared by all callers: treat them as read-only).
"""

from __future__ import annotations

import math
import os
import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from effscale.models.errors import EffscaleError
from effscale.search.idx import read_idx

FASHION_MNIST_ENV = "EFFSCALE_FASHION_MNIST_DIR"
FASHION_MNIST_DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
KNOWN_NAMES = ("fashion-mnist", "synthetic", "synthetic:N")
SPLITS = ("train", "test")
SYNTHETIC_DEFAULT_SIZE = {"train": 2000, "test": 500}
SYNTHETIC_MAX_SIZE = 100_000  # a small generated set for fast tests: 100,000 take about 15 s

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000),
}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
_SPLIT_DIRS = {"train": ("train",), "test": ("test", "val")}


@dataclass(frozen=True)
class ImageData:
    """Images and labels held in memory; `name` identifies the content (split and subset included)."""

    images: torch.Tensor  # uint8, (N, C, H, W), contiguous
    labels: torch.Tensor  # int64, (N,)
    num_classes: int
    name: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def load_dataset(name_or_path: str, split: str = "train") -> ImageData:
    """Load a dataset by name ("fashion-mnist", "synthetic", "synthetic:N") or directory.

    A directory is read as Fashion-MNIST-style IDX files if it holds them, as CIFAR-10's python
    batches if it holds `data_batch_1` (or `cifar-10-batches-py/data_batch_1`), else as an
    ImageFolder (one subfolder per class). Results are cached per process.
    """
    if split not in SPLITS:
        raise EffscaleError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    kind, where = _resolve(name_or_path)
    return _load_cached(kind, where, split)


def _resolve(name_or_path: str) -> tuple[str, str]:
    """Map a name or path to (kind, location); the location is absolute for paths."""
    if name_or_path == "fashion-mnist":
        folder = Path(os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DEFAULT_DIR)
        if not _has_idx_files(folder):
            raise EffscaleError(
                f"Fashion-MNIST not found in {folder}: install it with "
                f"`apt-get install -y dataset-fashion-mnist` or set {FASHION_MNIST_ENV} "
                "to a directory with its IDX files"
            )
        return "fashion-mnist", str(folder.resolve())
    if not name_or_path.strip():
        raise EffscaleError(f"the dataset name is empty: use one of {', '.join(KNOWN_NAMES)} or a directory")
    if name_or_path == "synthetic" or name_or_path.startswith("synthetic:"):
        size = name_or_path.partition(":")[2]
        if name_or_path.endswith(":"):
            raise EffscaleError(f"{name_or_path}: the size is missing (synthetic:N, N from 1 to {SYNTHETIC_MAX_SIZE:,})")
        return "synthetic", size
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        path = path.resolve()
        if _has_idx_files(path):
            return "idx", str(path)
        if (path / "data_batch_1").is_file():
            return "cifar10", str(path)
        if (path / "cifar-10-batches-py" / "data_batch_1").is_file():
            return "cifar10", str(path / "cifar-10-batches-py")
        return "imagefolder", str(path)
    raise EffscaleError(
        f"unknown dataset {name_or_path!r}: not a known name ({', '.join(KNOWN_NAMES)}) nor an existing "
        "directory (IDX files, CIFAR-10 python batches, or an ImageFolder)"
    )


@lru_cache(maxsize=8)
def _load_cached(kind: str, where: str, split: str) -> ImageData:
    if kind in ("fashion-mnist", "idx"):
        return _load_idx_dir(Path(where), split, "fashion-mnist" if kind == "fashion-mnist" else f"idx:{where}")
    if kind == "cifar10":
        return _load_cifar10(Path(where), split)
    if kind == "imagefolder":
        return _load_imagefolder(Path(where), split)
    return _synthetic(where, split)


def _idx_file(folder: Path, base: str) -> Path | None:
    """The gzipped or plain IDX file `base` in `folder`, if there is one."""
    for candidate in (folder / f"{base}.gz", folder / base):
        if candidate.is_file():
            return candidate
    return None


def _has_idx_files(folder: Path) -> bool:
    return all(_idx_file(folder, base) for images, labels, _ in _IDX_FILES.values() for base in (images, labels))


def _load_idx_dir(folder: Path, split: str, label: str) -> ImageData:
    """Fashion-MNIST layout: 60000 train / 10000 test images of 28x28, labels 0..9."""
    images_base, labels_base, count = _IDX_FILES[split]
    images_file, labels_file = _idx_file(folder, images_base), _idx_file(folder, labels_base)
    if images_file is None or labels_file is None:
        raise EffscaleError(f"{folder}: missing {images_base}[.gz] or {labels_base}[.gz]")
    images, labels = read_idx(images_file), read_idx(labels_file)
    if images.shape != (count, 28, 28):
        raise EffscaleError(f"{images_file}: expected shape ({count}, 28, 28), found {images.shape}")
    if labels.shape != (count,):
        raise EffscaleError(f"{labels_file}: expected {count} labels, found shape {labels.shape}")
    if labels.max() > 9:
        raise EffscaleError(f"{labels_file}: labels must be in 0..9, found {int(labels.max())}")
    return _make(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels), 10, f"{label}[{split}]")


def _load_cifar10(folder: Path, split: str) -> ImageData:
    """CIFAR-10 python format: pickled dicts with b"data" (N, 3072) uint8 and b"labels".

    Pickles can run code when loaded: only point this at data you trust.
    """
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    datas, labels = [], []
    for file in (folder / n for n in names):
        try:
            with open(file, "rb") as handle:
                batch = pickle.load(handle, encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            batch_labels = np.asarray(batch[b"labels"], dtype=np.int64)
        except FileNotFoundError:
            raise EffscaleError(f"{file}: CIFAR-10 batch file not found") from None
        except Exception as exc:  # any unpickling / shape problem is a corrupt file to the user
            raise EffscaleError(f"{file}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from None
        if batch_labels.shape != (data.shape[0],) or batch_labels.min(initial=0) < 0 or batch_labels.max(initial=0) > 9:
            raise EffscaleError(f"{file}: expected {data.shape[0]} labels in 0..9")
        datas.append(data)
        labels.append(batch_labels)
    images = torch.from_numpy(np.concatenate(datas))
    return _make(images, torch.from_numpy(np.concatenate(labels)), 10, f"cifar10:{folder}[{split}]")


def _load_imagefolder(root: Path, split: str) -> ImageData:
    """One subfolder per class (sorted names define labels), images converted to RGB.

    The split comes from a `train/` (else the whole folder) or `test/`/`val/` subfolder; test
    classes must be among the training classes. Images of another size are resized to the first's.
    """
    train_dir = root / "train" if (root / "train").is_dir() else root
    classes = _class_dirs(train_dir, root)
    if split == "train":
        split_dir = train_dir
    else:
        split_dir = next((root / d for d in _SPLIT_DIRS["test"] if (root / d).is_dir()), None)
        if split_dir is None:
            raise EffscaleError(f"{root}: no test/ or val/ subfolder for the test split")
    index = {name: i for i, name in enumerate(classes)}
    files: list[tuple[Path, int]] = []
    for name in _class_dirs(split_dir, root):
        if name not in index:
            raise EffscaleError(f"{split_dir / name}: class {name!r} is not among the training classes")
        folder = split_dir / name
        files += [(f, index[name]) for f in sorted(folder.iterdir()) if f.suffix.lower() in _IMAGE_SUFFIXES]
    if not files:
        raise EffscaleError(f"{split_dir}: no images found (expected one subfolder of images per class)")
    arrays, size = [], None
    for file, _ in files:
        try:
            with Image.open(file) as img:
                rgb = img.convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            raise EffscaleError(f"{file}: unreadable image ({exc})") from None
        size = size or rgb.size
        if rgb.size != size:
            rgb = rgb.resize(size, Image.BILINEAR)
        arrays.append(np.asarray(rgb, dtype=np.uint8))
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    return _make(images, labels, len(classes), f"imagefolder:{root}[{split}]")


def _class_dirs(folder: Path, root: Path) -> list[str]:
    """Sorted class subfolder names; split folders are not classes at the root."""
    skip = {d for dirs in _SPLIT_DIRS.values() for d in dirs} if folder == root else set()
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and d.name not in skip)
    if not classes:
        raise EffscaleError(f"{folder}: no class subfolders (an ImageFolder has one subfolder per class)")
    return classes


def _synthetic(size: str, split: str) -> ImageData:
    """10 classes of 1x28x28 sinusoidal gratings (5 orientations x 2 frequencies), random phase, noise.

    Deterministic: templates are fixed, and the per-sample phase and noise are seeded by split.
    """
    try:
        n = int(size) if size else SYNTHETIC_DEFAULT_SIZE[split]
    except ValueError:
        raise EffscaleError(f"synthetic:{size}: the size must be a positive integer") from None
    if not 1 <= n <= SYNTHETIC_MAX_SIZE:
        raise EffscaleError(f"synthetic:{size}: the size must be an integer from 1 to {SYNTHETIC_MAX_SIZE:,}")
    gen = torch.Generator().manual_seed(SPLITS.index(split) + 1)
    labels = torch.arange(n, dtype=torch.int64) % 10
    labels = labels[torch.randperm(n, generator=gen)]
    angle = (labels % 5).double() * (math.pi / 5)
    freq = torch.where(labels < 5, 2 * math.pi / 7, 2 * math.pi / 3.5).double()
    phase = torch.rand(n, generator=gen, dtype=torch.float64) * 2 * math.pi
    axis = torch.arange(28.0, dtype=torch.float64)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    proj = x * angle.cos()[:, None, None] + y * angle.sin()[:, None, None]
    wave = torch.sin(freq[:, None, None] * proj + phase[:, None, None])
    noise = torch.randn(n, 28, 28, generator=gen, dtype=torch.float64) * 0.4
    images = ((wave + noise) * 64 + 128).round().clamp(0, 255).to(torch.uint8).unsqueeze(1)
    return _make(images, labels, 10, f"synthetic:{n}[{split}]")


def _make(images: torch.Tensor, labels: torch.Tensor, num_classes: int, name: str) -> ImageData:
    return ImageData(images.contiguous(), labels.to(torch.int64).contiguous(), num_classes, name)
