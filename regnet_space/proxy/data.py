"""Datasets held in memory as normalised tensors, with a seeded validation split carved from train.

Proxy training runs hundreds of short jobs, so the data is decoded once into ``(N, C, H, W)`` float tensors
(on the training device) and batches are cut by indexing, never by per-sample Python work. Augmentation, when
asked for, runs on whole batches on the device (``augment_batch``).

Sources (``load_dataset``'s ``name``):
- ``fashion-mnist``: the four IDX ``.gz`` files (default dir ``/usr/share/datasets/fashion-mnist``).
- ``cifar10:DIR``: the binary batches (``cifar-10-batches-bin``) or the python batches (``data_batch_1..5``,
  ``test_batch``), the latter read by a restricted unpickler that loads numpy arrays and plain data only.
- ``folder:DIR``: ``DIR/train/<class>/*`` and ``DIR/test/<class>/*`` images of one size.
- ``synthetic[:k=v,...]``: class templates plus noise, learnable in a few steps; keys ``train`` (default 512),
  ``test`` (256), ``res`` (8), ``channels`` (1), ``classes`` (4), ``noise`` (1.0).
"""

from __future__ import annotations

import gzip
import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError
from .data_options import synthetic_options

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


@dataclass
class Dataset:
    """Normalised image tensors (float32, N x C x H x W) and int64 labels for train, val and test.

    ``black`` is the normalised value of a zero pixel per channel (the padding for random crops);
    ``augment`` says whether the trainer should call ``augment_batch``; ``flip`` whether horizontal
    flips preserve the label for this data.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    black: torch.Tensor
    augment: bool = False
    flip: bool = False

    @property
    def in_channels(self) -> int:
        return self.train_x.shape[1]

    @property
    def resolution(self) -> int:
        return self.train_x.shape[2]

    @property
    def device(self) -> torch.device:
        return self.train_x.device

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.train_y)}, val={len(self.val_y)}, test={len(self.test_y)}, "
                f"{self.in_channels}x{self.resolution}x{self.resolution}, {self.num_classes} classes, "
                f"augment={self.augment}, device={self.device})")


def resolve_device(device: str) -> "torch.device":
    """The torch device named by ``--device``; a name torch does not know, or CUDA on a machine without it, is
    a UserError (not a traceback deep inside the first training step)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UserError(f"--device {device!r}: not a device (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: CUDA is not available on this machine (no GPU or no CUDA build "
                            f"of PyTorch); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type != "cpu":
        raise UserError(f"--device {device}: only cpu and cuda[:N] are supported")
    return dev


def load_dataset(name: str = "fashion-mnist", data_dir: str | None = None, *, val_size: int = 10000,
                 seed: int = 0, device: str = "cpu", augment: bool = False) -> Dataset:
    """Load, normalise and split a dataset; see the module docstring for the accepted names.

    ``val_size`` images are carved from train by a permutation seeded with ``seed``; it is capped at a fifth
    of the training images so small sets (synthetic, small folders) keep most of their data for training.
    Missing or corrupt files raise UserError naming the file.
    """
    resolve_device(device)
    kind, _, arg = name.partition(":")
    if kind == "fashion-mnist":
        if arg:
            raise UserError(f"dataset {name!r}: give the directory with --data-dir, not after the colon")
        (train_x, train_y), (test_x, test_y) = _load_fashion_mnist(Path(data_dir) if data_dir else FASHION_MNIST_DIR)
        flip = True  # a mirrored shirt, shoe or bag is still one: flips preserve every Fashion-MNIST label
    elif kind == "cifar10":
        (train_x, train_y), (test_x, test_y) = _load_cifar10(_directory(name, arg, data_dir))
        flip = True  # natural photos: mirroring keeps the class (the standard CIFAR recipe)
    elif kind == "folder":
        (train_x, train_y), (test_x, test_y) = _load_folder(_directory(name, arg, data_dir))
        flip = False  # unknown content: text, digits or arrows change meaning when mirrored
    elif kind == "synthetic":
        (train_x, train_y), (test_x, test_y) = _make_synthetic(arg)
        flip = False  # class templates are not mirror-symmetric
    else:
        raise UserError(f"unknown dataset {name!r}: expected fashion-mnist, cifar10:DIR, folder:DIR or synthetic")
    if val_size < 0:
        raise UserError(f"val_size must be >= 0, got {val_size}")

    n_val = min(val_size, len(train_y) // 5)
    order = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:n_val], order[n_val:]
    train_x, val_x = train_x[train_idx], train_x[val_idx]
    train_y, val_y = train_y[train_idx], train_y[val_idx]

    # Statistics of the training split only, so validation and test stay unseen.
    mean = train_x.float().mean((0, 2, 3)) / 255
    std = train_x.float().std((0, 2, 3)).clamp_min(1e-3) / 255
    num_classes = int(max(train_y.max(), test_y.max())) + 1

    def prepare(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device=device, dtype=torch.float32).div_(255)
        return x.sub_(mean.to(device)[:, None, None]).div_(std.to(device)[:, None, None])

    return Dataset(name=name, train_x=prepare(train_x), train_y=train_y.to(device), val_x=prepare(val_x),
                   val_y=val_y.to(device), test_x=prepare(test_x), test_y=test_y.to(device),
                   num_classes=num_classes, black=(-mean / std).to(device), augment=augment, flip=flip)


def dataset_shape(name: str = "fashion-mnist", data_dir: str | None = None, **options) -> tuple[int, int, int]:
    """``(resolution, in_channels, num_classes)`` of what ``load_dataset`` would load, reading as little as it
    can: the labels of Fashion-MNIST (its images are 28x28x1 by format), nothing for synthetic data; other kinds
    are loaded. ``study run`` needs only the shape before it starts its workers, and decoding and normalising
    all of Fashion-MNIST for it took a second of CPU per run."""
    kind, _, arg = name.partition(":")
    if kind == "fashion-mnist" and not arg:
        directory = Path(data_dir) if data_dir else FASHION_MNIST_DIR
        labels = [read_idx(directory / labels_file, ndim=1) for _, labels_file in FASHION_MNIST_FILES.values()]
        return 28, 1, int(max(split.max() for split in labels)) + 1
    if kind == "synthetic":
        settings = synthetic_options(arg)
        return settings["res"], settings["channels"], settings["classes"]
    data = load_dataset(name, data_dir, **options)
    return data.resolution, data.in_channels, data.num_classes


def augment_batch(x: torch.Tensor, black: torch.Tensor, *, flip: bool, generator: torch.Generator | None = None
                  ) -> torch.Tensor:
    """Random crop after padding by resolution/8 with black (4 px at 32, 3 at 28), and optional horizontal
    flips, for a whole batch at once on its device."""
    n, c, h, w = x.shape
    pad = max(1, h // 8)
    padded = F.pad(x - black[:, None, None], (pad, pad, pad, pad)) + black[:, None, None]
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=x.device)
    rows = dy + torch.arange(h, device=x.device)
    cols = dx + torch.arange(w, device=x.device)
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * pad))
    out = out.gather(3, cols[:, None, None, :].expand(n, c, h, w))
    if flip:
        mirror = torch.rand(n, generator=generator, device=x.device) < 0.5
        out = torch.where(mirror[:, None, None, None], out.flip(3), out)
    return out


def _directory(name: str, arg: str, data_dir: str | None) -> Path:
    if arg and data_dir and Path(arg) != Path(data_dir):
        raise UserError(f"dataset {name!r} and --data-dir {data_dir!r} name different directories")
    path = Path(arg or data_dir or "")
    if not (arg or data_dir):
        raise UserError(f"dataset {name!r} needs a directory: {name}:DIR or --data-dir DIR")
    if not path.is_dir():
        raise UserError(f"{path}: no such directory")
    return path


# --- Fashion-MNIST (IDX) -------------------------------------------------------------------------------------

def _load_fashion_mnist(directory: Path):
    splits = []
    for images_file, labels_file in FASHION_MNIST_FILES.values():
        images = read_idx(directory / images_file, ndim=3)
        labels = read_idx(directory / labels_file, ndim=1)
        if len(images) != len(labels):
            raise UserError(f"{directory / labels_file}: {len(labels)} labels for {len(images)} images")
        splits.append((torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))))
    return splits


def read_idx(path: Path, *, ndim: int) -> np.ndarray:
    """An unsigned-byte IDX array from a ``.gz`` file (the MNIST format: magic 0x0000 08 ndim, sizes, data)."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise UserError(f"{path}: missing (install Debian's dataset-fashion-mnist or pass --data-dir)") from None
    except (OSError, EOFError) as exc:
        raise UserError(f"{path}: corrupt gzip file ({exc})") from None
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:2] != b"\0\0" or raw[2] != 0x08 or raw[3] != ndim:
        raise UserError(f"{path}: not an IDX file of unsigned bytes with {ndim} dimension(s)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(shape)
    if len(raw) != expected:
        raise UserError(f"{path}: truncated or corrupt (holds {len(raw)} bytes, its header says {expected})")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


# --- CIFAR-10 (binary batches, or python batches through a restricted unpickler) -----------------------------

CIFAR_RECORD = 1 + 3 * 32 * 32  # label byte, then the R, G and B planes of a 32x32 image
CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def _load_cifar10(directory: Path):
    """The binary batches (``cifar-10-batches-bin``: ``data_batch_1..5.bin``, ``test_batch.bin``) when present,
    else the python batches (``cifar-10-batches-py``), whose pickles are read by ``restricted_load``.
    ``directory`` may be the batches folder or the folder holding it."""
    for folder in (directory, directory / "cifar-10-batches-bin", directory / "cifar-10-batches-py"):
        if (folder / "data_batch_1.bin").is_file():
            parts = [_cifar_binary_batch(folder / f"{name}.bin") for name in CIFAR_BATCHES]
            break
        if (folder / "data_batch_1").is_file():
            parts = [_cifar_python_batch(folder / name) for name in CIFAR_BATCHES]
            break
    else:
        raise UserError(f"{directory}: no CIFAR-10 batches (expected data_batch_1.bin .. test_batch.bin of "
                        f"cifar-10-batches-bin, or the python batches data_batch_1 .. test_batch)")
    train = torch.cat([p[0] for p in parts[:5]]), torch.cat([p[1] for p in parts[:5]])
    return train, parts[5]


def _cifar_binary_batch(path: Path):
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: missing (a CIFAR-10 binary folder holds data_batch_1..5.bin and test_batch.bin)") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    if not raw or len(raw) % CIFAR_RECORD:
        raise UserError(f"{path}: {len(raw)} bytes is not a whole number of {CIFAR_RECORD}-byte CIFAR-10 records")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise UserError(f"{path}: record {int(np.argmax(labels > 9))} has label {labels.max()} (CIFAR-10 has 0..9)")
    images = records[:, 1:].reshape(-1, 3, 32, 32).copy()
    return torch.from_numpy(images), torch.from_numpy(labels)


def _cifar_python_batch(path: Path):
    try:
        data = restricted_load(path.read_bytes())
        images = np.asarray(data[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(data[b"labels"], dtype=np.int64)
    except FileNotFoundError:
        raise UserError(f"{path}: missing (expected CIFAR-10's python batches)") from None
    except pickle.UnpicklingError as exc:
        raise UserError(f"{path}: refused: {exc}") from None
    except (OSError, EOFError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise UserError(f"{path}: not a readable CIFAR-10 batch ({type(exc).__name__}: {exc})") from None
    if len(images) != len(labels):
        raise UserError(f"{path}: {len(labels)} labels for {len(images)} images")
    return torch.from_numpy(images), torch.from_numpy(labels)


def _encode_latin1(text: str, encoding: str = "latin1") -> bytes:
    """What Python 3's protocol-2 pickles call to rebuild a bytes object; nothing else is allowed through."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], object]:
    """The only callables a CIFAR-10 batch may name: numpy's array and dtype reconstructors (both module
    spellings, numpy 1 and 2) and the bytes re-encoder. Everything else (os.system, eval, any other class)
    is refused before it can be called."""
    from numpy._core import multiarray, numeric

    allowed: dict[tuple[str, str], object] = {("_codecs", "encode"): _encode_latin1}
    for module in ("numpy.core", "numpy._core"):
        allowed[(f"{module}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{module}.numeric", "_frombuffer")] = numeric._frombuffer
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, allowed):
        super().__init__(file, encoding="bytes")
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"the pickle names {module}.{name}, which a CIFAR-10 batch never does "
                                         f"(only numpy arrays, lists, dicts, bytes, str and numbers are loaded)") from None

    def persistent_load(self, pid: object) -> object:
        raise pickle.UnpicklingError("persistent references are not loaded")


def restricted_load(blob: bytes) -> object:
    """Unpickle data made only of numpy arrays/dtypes, lists, dicts, tuples, bytes, str and numbers.

    Arrays of dtype object are refused too: their items would be arbitrary objects.
    """
    import io

    value = _RestrictedUnpickler(io.BytesIO(blob), _allowed_globals()).load()
    _refuse_object_arrays(value)
    return value


def _refuse_object_arrays(value: object) -> None:
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise pickle.UnpicklingError("an array of Python objects is not data")
    elif isinstance(value, dict):
        for item in (*value.keys(), *value.values()):
            _refuse_object_arrays(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _refuse_object_arrays(item)
    elif not isinstance(value, (bytes, str, int, float, bool, type(None), np.dtype, np.generic)):
        raise pickle.UnpicklingError(f"a {type(value).__name__} is not data")


# --- Image folder ---------------------------------------------------------------------------------------------

def _load_folder(directory: Path):
    """``train/<class>/`` and ``test/<class>/``; classes are the train sub-directory names in sorted order."""
    from PIL import Image, UnidentifiedImageError

    train_dir, test_dir = directory / "train", directory / "test"
    for split_dir in (train_dir, test_dir):
        if not split_dir.is_dir():
            raise UserError(f"{split_dir}: missing (a folder dataset needs train/<class>/ and test/<class>/)")
    classes = sorted(p.name for p in train_dir.iterdir() if p.is_dir())
    if not classes:
        raise UserError(f"{train_dir}: no class sub-directories")
    mode = size = None

    def read(split_dir: Path):
        nonlocal mode, size
        images, labels = [], []
        for label, cls in enumerate(classes):
            files = sorted(p for p in (split_dir / cls).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            for path in files:
                try:
                    with Image.open(path) as img:
                        img.load()
                        mode = mode or ("L" if img.mode in ("1", "L", "I", "I;16", "F") else "RGB")
                        array = np.asarray(img.convert(mode), dtype=np.uint8)
                except (OSError, UnidentifiedImageError) as exc:
                    raise UserError(f"{path}: not a readable image ({exc})") from None
                size = size or array.shape[:2]
                if array.shape[:2] != size or array.shape[0] != array.shape[1]:
                    raise UserError(f"{path}: size {array.shape[1]}x{array.shape[0]}; every image must be "
                                    f"square and {size[1]}x{size[0]} like the first")
                images.append(array.reshape(size[0], size[1], -1))
                labels.append(label)
        if not images:
            raise UserError(f"{split_dir}: no images in the class sub-directories {', '.join(classes)}")
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
        return x, torch.tensor(labels, dtype=torch.int64)

    return read(train_dir), read(test_dir)


# --- Synthetic ------------------------------------------------------------------------------------------------

def _make_synthetic(arg: str):
    """Each class is a fixed random smooth template; an image is its template plus Gaussian noise (as uint8)."""
    options = synthetic_options(arg)
    g = torch.Generator().manual_seed(1234)  # the data itself is fixed; the seed of load_dataset splits it
    res, channels, classes = options["res"], options["channels"], options["classes"]
    coarse = torch.rand(classes, channels, max(2, res // 4), max(2, res // 4), generator=g)
    templates = F.interpolate(coarse, size=(res, res), mode="bilinear", align_corners=False)

    def draw(n: int):
        y = torch.arange(n) % classes
        x = templates[y] + options["noise"] * 0.25 * torch.randn(n, channels, res, res, generator=g)
        return (x.clamp(0, 1) * 255).round().to(torch.uint8), y

    return draw(options["train"]), draw(options["test"])
