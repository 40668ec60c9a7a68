"""CIFAR-10 without unsafe pickle: the binary format, and the python format through a restricted unpickler
that refuses anything but numpy arrays and plain containers (defect 6: a crafted batch ran a shell command)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from regnet_space.errors import UserError
from regnet_space.proxy.data import load_dataset, restricted_load

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_binary(directory, records=7, seed=0):
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name in BATCHES:
        labels = rng.integers(0, 10, records, dtype=np.uint8)
        pixels = rng.integers(0, 256, (records, 3072), dtype=np.uint8)
        (directory / f"{name}.bin").write_bytes(np.concatenate([labels[:, None], pixels], axis=1).tobytes())
        expected[name] = (labels, pixels)
    return expected


def test_binary_format_reads_every_record(tmp_path):
    expected = write_binary(tmp_path / "cifar-10-batches-bin")
    for where in (tmp_path, tmp_path / "cifar-10-batches-bin"):  # the parent folder or the batches folder
        data = load_dataset(f"cifar10:{where}", val_size=0)
        assert (data.in_channels, data.resolution) == (3, 32)
        assert len(data.train_y) == 35 and len(data.test_y) == 7
        assert data.test_y.tolist() == expected["test_batch"][0].tolist()
        # Pixel planes are R, G, B of 32x32 each: check one raw pixel through the normalisation.
        raw = expected["test_batch"][1][2].reshape(3, 32, 32)
        order = np.argsort(raw[0].ravel())
        assert np.all(np.diff(data.test_x[2, 0].ravel().numpy()[order]) >= -1e-6)


@pytest.mark.parametrize("damage", ["truncated", "bad-label", "empty"])
def test_binary_format_damage_names_the_file(tmp_path, damage):
    write_binary(tmp_path)
    victim = tmp_path / "data_batch_3.bin"
    raw = victim.read_bytes()
    victim.write_bytes({"truncated": raw[:-5], "bad-label": b"\x0b" + raw[1:], "empty": b""}[damage])
    with pytest.raises(UserError, match="data_batch_3.bin"):
        load_dataset(f"cifar10:{tmp_path}")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_python_format_still_loads(tmp_path, protocol):
    rng = np.random.default_rng(0)
    for name in BATCHES:
        batch = {b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), b"labels": list(range(10)),
                 b"batch_label": b"training batch", b"filenames": [b"x.png"] * 10}
        (tmp_path / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    data = load_dataset(f"cifar10:{tmp_path}", val_size=10)
    assert (len(data.train_y), len(data.val_y), len(data.test_y)) == (40, 10, 10)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("payload", ["system", "eval", "nested", "subclass"])
def test_a_crafted_pickle_is_refused_and_nothing_runs(tmp_path, payload):
    marker = tmp_path / "pwned"
    evil = {
        "system": _RunsCode(marker),
        "eval": None,
        "nested": {b"data": [np.zeros(3, np.uint8), _RunsCode(marker)], b"labels": [0]},
        "subclass": None,
    }[payload]
    for name in BATCHES:
        (tmp_path / "py").mkdir(exist_ok=True)
        if payload == "eval":
            blob = b"cbuiltins\neval\n(V__import__('os').system('touch " + str(marker).encode() + b"')\ntR."
        elif payload == "subclass":
            blob = pickle.dumps(np.ma.masked_array([1, 2]))  # a numpy class outside the allowed few
        else:
            blob = pickle.dumps(evil)
        (tmp_path / "py" / name).write_bytes(blob)
    with pytest.raises(UserError, match="data_batch_1.*refused"):
        load_dataset(f"cifar10:{tmp_path / 'py'}")
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):
        restricted_load(blob)
    assert not marker.exists()
