"""Dataset loading: IDX/CIFAR/folder/synthetic readers, the seeded split, normalisation, errors, augmentation."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from regnet_space import UserError
from regnet_space.proxy.data import FASHION_MNIST_DIR, FASHION_MNIST_FILES, augment_batch, dataset_shape, load_dataset


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def fake_fashion_mnist(directory: Path, n_train: int = 100, n_test: int = 20) -> Path:
    """IDX files whose every pixel equals 20 * label + 3, so image/label pairing can be checked after a split."""
    for split, n in (("train", n_train), ("test", n_test)):
        labels = np.arange(n) % 10
        images = np.broadcast_to((20 * labels + 3)[:, None, None], (n, 28, 28))
        images_file, labels_file = FASHION_MNIST_FILES[split]
        write_idx(directory / images_file, images)
        write_idx(directory / labels_file, labels)
    return directory


def test_idx_split_sizes_pairing_and_normalisation(tmp_path):
    data = load_dataset("fashion-mnist", str(fake_fashion_mnist(tmp_path)), val_size=15, seed=3)
    assert (len(data.train_y), len(data.val_y), len(data.test_y)) == (85, 15, 20)
    assert (data.in_channels, data.resolution, data.num_classes) == (1, 28, 10)
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    assert abs(data.train_x.mean().item()) < 1e-4 and abs(data.train_x.std().item() - 1) < 0.02
    # Pixel value rises with the label, and one normalisation serves all splits: each label must map to
    # one value everywhere, increasing with the label.
    value_of = {}
    for x, y in ((data.train_x, data.train_y), (data.val_x, data.val_y), (data.test_x, data.test_y)):
        assert torch.all(x == x[:, :1, :1, :1])  # every image is still one flat value
        for value, label in zip(x[:, 0, 0, 0].tolist(), y.tolist()):
            assert value_of.setdefault(label, value) == pytest.approx(value)
    assert [value_of[k] for k in sorted(value_of)] == sorted(value_of.values())
    assert len(value_of) == 10


@pytest.mark.parametrize("labels", [10, 7])
def test_dataset_shape_is_what_loading_gives(tmp_path, labels):
    """The shape ``study run`` reads without decoding the images is the loaded dataset's, classes included."""
    fake_fashion_mnist(tmp_path)
    if labels != 10:  # a set with fewer classes: the count comes from the labels, not the format
        for split in ("train", "test"):
            write_idx(tmp_path / FASHION_MNIST_FILES[split][1], np.arange(100 if split == "train" else 20) % labels)
    for name, data_dir in (("fashion-mnist", str(tmp_path)), ("synthetic:res=6,channels=2,classes=3", None)):
        data = load_dataset(name, data_dir)
        assert dataset_shape(name, data_dir) == (data.resolution, data.in_channels, data.num_classes)
    assert dataset_shape("fashion-mnist", str(tmp_path))[2] == labels
    with pytest.raises(UserError, match="missing"):
        dataset_shape("fashion-mnist", str(tmp_path / "nowhere"))


def test_split_is_seeded(tmp_path):
    directory = str(fake_fashion_mnist(tmp_path))
    a = load_dataset("fashion-mnist", directory, val_size=15, seed=1)
    b = load_dataset("fashion-mnist", directory, val_size=15, seed=1)
    c = load_dataset("fashion-mnist", directory, val_size=15, seed=2)
    assert torch.equal(a.val_x, b.val_x) and torch.equal(a.train_y, b.train_y)
    assert not torch.equal(a.train_y, c.train_y)


def test_val_size_is_capped_at_a_fifth_of_train(tmp_path):
    data = load_dataset("fashion-mnist", str(fake_fashion_mnist(tmp_path)))  # default val_size 10000
    assert (len(data.train_y), len(data.val_y)) == (80, 20)


@pytest.mark.parametrize("damage", ["truncate", "missing", "not-idx", "not-gzip"])
def test_damaged_idx_file_is_named(tmp_path, damage):
    fake_fashion_mnist(tmp_path)
    victim = tmp_path / FASHION_MNIST_FILES["train"][0]
    if damage == "truncate":
        raw = gzip.decompress(victim.read_bytes())
        victim.write_bytes(gzip.compress(raw[: len(raw) - 100]))
    elif damage == "missing":
        victim.unlink()
    elif damage == "not-idx":
        victim.write_bytes(gzip.compress(b"hello world, not an idx file"))
    else:
        victim.write_bytes(b"plain bytes")
    with pytest.raises(UserError, match=victim.name):
        load_dataset("fashion-mnist", str(tmp_path))


def test_cifar10_batches(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), b"labels": list(range(10))}
        (tmp_path / name).write_bytes(pickle.dumps(batch))
    data = load_dataset(f"cifar10:{tmp_path}", val_size=10)
    assert (data.in_channels, data.resolution, data.num_classes) == (3, 32, 10)
    assert (len(data.train_y), len(data.val_y), len(data.test_y)) == (40, 10, 10)
    assert data.flip
    (tmp_path / "test_batch").write_bytes(b"garbage")
    with pytest.raises(UserError, match="test_batch"):
        load_dataset(f"cifar10:{tmp_path}")


def test_image_folder(tmp_path):
    from PIL import Image

    for split, n in (("train", 6), ("test", 2)):
        for label, cls in enumerate(("cat", "dog")):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (12, 12), (100 * label, 50, i)).save(tmp_path / split / cls / f"{i}.png")
    data = load_dataset("folder:" + str(tmp_path), val_size=0)
    assert (data.in_channels, data.resolution, data.num_classes) == (3, 12, 2)
    assert sorted(data.train_y.tolist()) == [0] * 6 + [1] * 6
    assert torch.all((data.train_y == 1) == (data.train_x[:, 0, 0, 0] > data.train_x[:, 0, 0, 0].mean()))
    assert len(data.test_y) == 4 and not data.flip
    Image.new("RGB", (10, 12)).save(tmp_path / "train" / "cat" / "odd.png")
    with pytest.raises(UserError, match="odd.png"):
        load_dataset("folder:" + str(tmp_path))


def test_synthetic_options_and_errors():
    data = load_dataset("synthetic:train=100,test=30,res=6,channels=3,classes=5", val_size=10)
    assert (len(data.train_y), len(data.val_y), len(data.test_y)) == (90, 10, 30)
    assert (data.in_channels, data.resolution, data.num_classes) == (3, 6, 5)
    with pytest.raises(UserError, match="bogus"):
        load_dataset("synthetic:bogus=1")
    with pytest.raises(UserError, match="unknown dataset"):
        load_dataset("imagenet")
    with pytest.raises(UserError, match="needs a directory"):
        load_dataset("cifar10")


def test_augment_batch_crops_a_shifted_window():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    black = torch.tensor([-1.0])
    out = augment_batch(x, black, flip=False, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), value=-1.0)  # pad = 8 // 8
    for i in range(2):
        windows = [padded[i, :, dy:dy + 8, dx:dx + 8] for dy in range(3) for dx in range(3)]
        assert any(torch.equal(out[i], w) for w in windows)
    again = augment_batch(x, black, flip=False, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_augment_batch_flips_about_half():
    x = torch.zeros(400, 1, 8, 8)
    x[:, :, :, :4] = 1.0  # left half bright
    out = augment_batch(x, torch.tensor([0.0]), flip=True, generator=torch.Generator().manual_seed(0))
    flipped = (out[:, 0, 3, 6] > out[:, 0, 3, 1]).float().mean().item()
    assert 0.4 < flipped < 0.6


@pytest.mark.skipif(not (FASHION_MNIST_DIR / FASHION_MNIST_FILES["train"][0]).exists(),
                    reason="Fashion-MNIST not installed (Debian package dataset-fashion-mnist)")
def test_real_fashion_mnist():
    data = load_dataset("fashion-mnist", seed=0)
    assert (len(data.train_y), len(data.val_y), len(data.test_y)) == (50000, 10000, 10000)
    assert (data.in_channels, data.resolution, data.num_classes) == (1, 28, 10)
    assert torch.bincount(data.test_y).tolist() == [1000] * 10
