"""The dataset layer: IDX reading, dataset sources, held-out splits and resizing.

Uses the real Fashion-MNIST files (Debian's `dataset-fashion-mnist`); without them the tests
that need them skip locally and fail in CI (CI=true), never silently pass.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from effscale.models.errors import EffscaleError
from effscale.search import datasets
from effscale.search.datasets import ImageData, load_dataset
from effscale.search.idx import read_idx
from effscale.search.resize import ResizeCache, resized
from effscale.search.splits import holdout_split, subset


@pytest.fixture(scope="module")
def train(fashion_mnist: Path) -> ImageData:
    return load_dataset("fashion-mnist", "train")


def one_line_error(fn, *args, **kwargs) -> str:
    with pytest.raises(EffscaleError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert message and "\n" not in message
    return message


@pytest.mark.parametrize("split, count", [("train", 60000), ("test", 10000)])
def test_fashion_mnist_shapes(fashion_mnist: Path, split: str, count: int) -> None:
    data = load_dataset("fashion-mnist", split)
    assert data.images.shape == (count, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.images.is_contiguous()
    assert data.labels.shape == (count,) and data.labels.dtype == torch.int64
    assert data.num_classes == 10 and len(data) == count
    assert torch.bincount(data.labels).tolist() == [count // 10] * 10
    assert load_dataset(str(fashion_mnist), split).images.shape == data.images.shape  # a directory works too
    assert load_dataset("fashion-mnist", split) is data  # cached


def test_holdout_split_is_seeded_stratified_and_disjoint(train: ImageData) -> None:
    # Tag each image with its index in its first two pixels, to recover indices after splitting.
    index = torch.arange(len(train))
    images = train.images.clone()
    images[:, 0, 0, 0], images[:, 0, 0, 1] = (index // 256).to(torch.uint8), (index % 256).to(torch.uint8)
    tagged = ImageData(images, train.labels, 10, "tagged")

    def indices(data: ImageData) -> set[int]:
        return set((data.images[:, 0, 0, 0].long() * 256 + data.images[:, 0, 0, 1].long()).tolist())

    fit, val = holdout_split(tagged, 5000, seed=0)
    assert (len(fit), len(val)) == (55000, 5000)
    assert indices(fit).isdisjoint(indices(val)) and len(indices(fit) | indices(val)) == 60000
    assert torch.bincount(val.labels).tolist() == [500] * 10
    again_fit, again_val = holdout_split(tagged, 5000, seed=0)
    assert torch.equal(again_val.images, val.images) and torch.equal(again_fit.labels, fit.labels)
    assert indices(holdout_split(tagged, 5000, seed=1)[1]) != indices(val)
    assert fit.name != val.name


def test_split_errors_and_subset() -> None:
    data = load_dataset("synthetic:100")
    for bad in (0, 100, 150):
        assert "val_size" in one_line_error(holdout_split, data, bad)
    assert one_line_error(subset, data, 101).startswith("subset must be between 1 and 100")
    assert subset(data, None) is data
    small = subset(data, 10, seed=3)
    assert len(small) == 10 and torch.equal(small.images, subset(data, 10, seed=3).images)


def test_resize_cache_shape_dtype_memory(train: ImageData) -> None:
    cache = ResizeCache()
    big = cache(train, 64, 1)
    assert big.shape == (60000, 1, 64, 64) and big.dtype == torch.uint8
    assert big.is_contiguous(memory_format=torch.channels_last)
    assert big.element_size() * big.nelement() < 400 * 2**20
    assert cache(train, 64, 1) is big  # resized once


def test_resize_channels_and_identity() -> None:
    data = load_dataset("synthetic:64")
    rgb = resized(data.images, 32, 3)
    assert rgb.shape == (64, 3, 32, 32) and rgb.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(rgb[:, 0], rgb[:, 1]) and torch.equal(rgb[:, 0], rgb[:, 2])
    assert torch.equal(resized(data.images, 28, 1), data.images)
    gray = resized(rgb, 16, 1)
    assert gray.shape == (64, 1, 16, 16)
    assert "resolution must be >= 8" in one_line_error(resized, data.images, 7, 1)


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def test_idx_reader_and_corrupt_files(tmp_path: Path) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "ok.gz", array, compress=True)
    assert np.array_equal(read_idx(tmp_path / "ok.gz"), array)
    truncated = tmp_path / "truncated-idx3-ubyte.gz"
    truncated.write_bytes((tmp_path / "ok.gz").read_bytes()[:-12])
    assert "truncated-idx3-ubyte.gz" in one_line_error(read_idx, truncated)
    short = tmp_path / "short-idx3-ubyte"
    write_idx(short, array)
    short.write_bytes(short.read_bytes()[:-1])
    assert "short-idx3-ubyte" in one_line_error(read_idx, short)
    magic = tmp_path / "magic-idx3-ubyte"
    magic.write_bytes(b"\x01\x02\x08\x01" + (1).to_bytes(4, "big") + b"\x00")
    assert "magic" in one_line_error(read_idx, magic)


def test_corrupt_fashion_mnist_dir(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5))
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / f"{name}.gz").write_bytes(b"\x1f\x8b not really gzip")
    assert "train-images-idx3-ubyte: expected shape (60000, 28, 28)" in one_line_error(load_dataset, str(tmp_path))
    assert "t10k-images-idx3-ubyte.gz" in one_line_error(load_dataset, str(tmp_path), "test")


def test_missing_fashion_mnist_and_unknown_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(datasets.FASHION_MNIST_ENV, str(tmp_path / "absent"))
    message = one_line_error(load_dataset, "fashion-mnist")
    assert "apt-get install -y dataset-fashion-mnist" in message and datasets.FASHION_MNIST_ENV in message
    message = one_line_error(load_dataset, "imagenet-21k")
    assert "fashion-mnist" in message and "synthetic" in message
    assert "split" in one_line_error(load_dataset, "synthetic", "val")
    assert "size" in one_line_error(load_dataset, "synthetic:lots")


def test_cifar10_python_format(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in [(f"data_batch_{i}", 4) for i in range(1, 6)] + [("test_batch", 3)]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(range(n))}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle)
    train = load_dataset(str(tmp_path))  # the parent of cifar-10-batches-py works too
    assert train.images.shape == (20, 3, 32, 32) and train.num_classes == 10
    test = load_dataset(str(folder), "test")
    assert test.images.shape == (3, 3, 32, 32) and test.labels.tolist() == [0, 1, 2]
    with open(folder / "test_batch", "rb") as handle:
        first = pickle.load(handle)[b"data"][0]
    assert torch.equal(test.images[0].flatten(), torch.from_numpy(first))
    (folder / "data_batch_3").write_bytes(b"garbage")
    datasets._load_cached.cache_clear()
    assert "data_batch_3" in one_line_error(load_dataset, str(folder))


def test_image_folder(tmp_path: Path) -> None:
    for split, per_class in (("train", 3), ("val", 1)):
        for label, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (12, 10), colour).save(folder / f"{i}.png")
    Image.new("L", (20, 20), 128).save(tmp_path / "train" / "dog" / "gray.png")  # other size and mode
    train = load_dataset(str(tmp_path), "train")
    assert train.images.shape == (7, 3, 10, 12) and train.num_classes == 2
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert train.images[0, :, 0, 0].tolist() == [255, 0, 0]
    test = load_dataset(str(tmp_path), "test")
    assert test.images.shape == (2, 3, 10, 12) and test.labels.tolist() == [0, 1]
    assert "no test/ or val/" in one_line_error(load_dataset, str(tmp_path / "train"), "test")


def test_synthetic_is_deterministic() -> None:
    first = load_dataset("synthetic:200")
    datasets._load_cached.cache_clear()
    second = load_dataset("synthetic:200")
    assert first is not second
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert first.images.shape == (200, 1, 28, 28) and torch.bincount(first.labels).tolist() == [20] * 10
    assert not torch.equal(load_dataset("synthetic:200", "test").images, first.images)
