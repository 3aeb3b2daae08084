"""Data loaders: digits, IDX (plain and gzip), .npz, image folders; and their errors."""
import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from cnnvis.data import load_dataset, load_digits, load_idx, load_image_folder, load_npz
from cnnvis.errors import DataError


def _idx(path, arr, gz=False):
    code = {np.uint8: 0x08, np.int32: 0x0C}[arr.dtype.type]
    raw = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    (gzip.open if gz else open)(path, "wb").write(raw)


def test_digits_is_resized_and_labelled():
    d = load_digits()
    assert d.images.shape == (1797, 1, 28, 28) and d.images.dtype == np.float32
    assert 0 <= d.images.min() and d.images.max() <= 1
    assert d.class_names == tuple("0123456789") and np.bincount(d.labels).min() > 150
    tr, te = d.split(0.2, seed=0)
    assert len(tr) + len(te) == len(d)
    assert abs(len(te) / len(d) - 0.2) < 0.01 and set(te.labels) == set(range(10))


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_round_trip(tmp_path, gz):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (11, 7, 5), dtype=np.uint8)
    y = rng.integers(0, 4, 11).astype(np.uint8)
    s = ".gz" if gz else ""
    _idx(tmp_path / f"train-images-idx3-ubyte{s}", x, gz)
    _idx(tmp_path / f"train-labels-idx1-ubyte{s}", y, gz)
    d = load_dataset(tmp_path)
    assert d.images.shape == (11, 1, 7, 5)
    np.testing.assert_allclose(d.images[:, 0], (x - x.min()) / (x.max() - x.min()), rtol=1e-6)
    np.testing.assert_array_equal(d.labels, y)
    d2 = load_idx(tmp_path / f"train-images-idx3-ubyte{s}")
    np.testing.assert_array_equal(d2.labels, y)


def test_idx_errors_name_the_file(tmp_path):
    x = np.zeros((4, 3, 3), np.uint8)
    _idx(tmp_path / "train-images-idx3-ubyte", x)
    with pytest.raises(DataError, match="no IDX labels file"):
        load_idx(tmp_path)
    _idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-5])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: IDX file holds 31 data bytes, its header promises 36"):
        load_idx(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04" + raw[4:])
    with pytest.raises(DataError, match="bad magic number"):
        load_idx(tmp_path)
    _idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 3, 3), np.uint8))
    with pytest.raises(DataError, match=r"\(4,\) labels for 5 images"):
        load_idx(tmp_path)


def test_npz_layouts_and_errors(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.random((6, 9, 8, 3)).astype(np.float32)  # NHWC
    y = np.array([0, 1, 2, 0, 1, 2])
    np.savez(tmp_path / "a.npz", images=x, labels=y, class_names=np.array(["r", "g", "b"]))
    d = load_npz(tmp_path / "a.npz")
    assert d.images.shape == (6, 3, 9, 8) and d.class_names == ("r", "g", "b")
    np.savez(tmp_path / "b.npz", x=rng.random((4, 5, 5)), y=np.array([0, 1, 1, 0]))
    assert load_dataset(tmp_path / "b.npz").images.shape == (4, 1, 5, 5)
    np.savez(tmp_path / "c.npz", pixels=x)
    with pytest.raises(DataError, match=r"c\.npz: needs arrays 'images' and 'labels' \(has pixels\)"):
        load_npz(tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", images=np.array([object()] * 2, dtype=object), labels=np.array([0, 1]))
    with pytest.raises(DataError, match=r"d\.npz: cannot read"):
        load_npz(tmp_path / "d.npz")  # object arrays would need a pickle: refused
    (tmp_path / "e.npz").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(DataError, match=r"e\.npz: cannot read"):
        load_npz(tmp_path / "e.npz")
    np.savez(tmp_path / "f.npz", images=x, labels=np.array([0, 1, 2, 0, 1, -1]))
    with pytest.raises(DataError, match="label -1 of image 5 is outside"):
        load_npz(tmp_path / "f.npz")


def test_image_folder(tmp_path):
    rng = np.random.default_rng(2)
    for cls, n in (("cat", 2), ("dog", 3)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "dog" / "notes.txt").write_text("ignored")
    d = load_image_folder(tmp_path)
    assert d.images.shape == (5, 3, 10, 12) and d.class_names == ("cat", "dog")
    np.testing.assert_array_equal(d.labels, [0, 0, 1, 1, 1])
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"broken\.png: cannot read image"):
        load_image_folder(tmp_path)


def test_missing_and_unknown_paths(tmp_path):
    with pytest.raises(DataError, match="no such data file or folder"):
        load_dataset(tmp_path / "nothing")
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(DataError, match="unknown data format"):
        load_dataset(tmp_path / "x.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="one sub-folder per class"):
        load_dataset(tmp_path / "empty")


FASHION = "/usr/share/datasets/fashion-mnist"


def test_real_fashion_mnist_idx_files_from_debian():
    """Debian's dataset-fashion-mnist (installed by scripts/setup.sh): the gzip IDX path on real files."""
    d = load_idx(FASHION, split="test")
    assert d.images.shape == (10000, 1, 28, 28) and len(d.class_names) == 10
    assert d.class_names[9] == "Ankle boot" and np.bincount(d.labels).tolist() == [1000] * 10
    assert d.images.min() == 0.0 and d.images.max() == 1.0

