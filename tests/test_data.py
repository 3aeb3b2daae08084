"""Data loaders: digits, IDX (plain and gzip), .npz, image folders; and their errors."""
import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from cnnvis.data import Dataset, load_dataset, load_digits, load_idx, load_image_folder, load_npz
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



# -- streamed data sets --------------------------------------------------------------------------------------
from cnnvis.data import (ImageFolderDataset, open_dataset, open_idx, open_npz,  # noqa: E402
                         parse_normalize)


def _same_batches(streamed, memory, batch_size, workers=0):
    n = 0
    for (i, x, y), (j, u, v) in zip(streamed.batches(batch_size, workers=workers), memory.batches(batch_size),
                                    strict=True):
        assert i.dtype == np.int64 and x.dtype.is_floating_point and y.dtype == torch_int64()
        np.testing.assert_array_equal(i, j)
        np.testing.assert_array_equal(x.numpy(), u.numpy())
        np.testing.assert_array_equal(y.numpy(), v.numpy())
        n += len(i)
    assert n == len(memory)


def torch_int64():
    import torch

    return torch.int64


@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW"])
def test_streamed_npz_matches_the_in_memory_loader(tmp_path, layout):
    rng = np.random.default_rng(3)
    shape = {"NHW": (23, 7, 9), "NHWC": (23, 7, 9, 3), "NCHW": (23, 3, 7, 9)}[layout]
    x = (rng.random(shape) * 300 - 20).astype(np.float32)
    y = rng.integers(0, 4, 23)
    np.savez(tmp_path / "a.npz", images=x, labels=y)
    s, m = open_npz(tmp_path / "a.npz"), load_npz(tmp_path / "a.npz")
    assert s.image_shape == m.image_shape and len(s) == len(m) and s.class_names == m.class_names
    np.testing.assert_array_equal(s.labels, m.labels)
    _same_batches(s, m, 5)
    _same_batches(s, m, 5, workers=2)  # decoded by DataLoader worker processes, still in order
    idx = np.array([22, 0, 5, 5, -1])
    np.testing.assert_array_equal(s.get(idx), m.images[idx])
    sub = s.subset(np.array([3, 1, 4]))
    np.testing.assert_array_equal(sub.get([2, 0]), m.images[[4, 3]])
    np.testing.assert_array_equal(sub.labels, m.labels[[3, 1, 4]])
    got = list(s.batches(4, indices=[7, 2, 9]))
    assert len(got) == 1 and got[0][0].tolist() == [7, 2, 9]
    with pytest.raises(DataError, match=r"a: image index 23 is outside \[0, 23\)"):
        s.get([1, 23])


def test_streamed_idx_is_mapped_and_matches(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.integers(3, 250, (17, 6, 5), dtype=np.uint8)
    _idx(tmp_path / "train-images-idx3-ubyte", x)
    _idx(tmp_path / "train-labels-idx1-ubyte", rng.integers(0, 3, 17).astype(np.uint8))
    s, m = open_dataset(tmp_path), load_idx(tmp_path)
    assert type(s).__name__ == "ArrayDataset" and s.image_shape == (1, 6, 5)
    _same_batches(s, m, 4)
    out = s.get([0, 1])
    base = out
    while isinstance(base, np.ndarray):
        base = base.base
    assert out.flags.writeable and base is None  # a copy, not a view of the read-only mapping
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-3])
    with pytest.raises(DataError, match="IDX file holds 507 data bytes, its header promises 510"):
        open_idx(tmp_path)


def test_compressed_npz_is_read_into_memory_or_explains_itself(tmp_path, monkeypatch):
    from cnnvis.data import _arrays

    x = np.random.default_rng(5).random((6, 4, 4)).astype(np.float32)
    np.savez_compressed(tmp_path / "c.npz", images=x, labels=np.arange(6) % 2)
    np.testing.assert_array_equal(open_npz(tmp_path / "c.npz").get(np.arange(6)), load_npz(tmp_path / "c.npz").images)
    monkeypatch.setattr(_arrays, "_IN_MEMORY_LIMIT", 100)
    with pytest.raises(DataError, match=r"c\.npz: array 'images' is compressed .* save it with numpy\.savez"):
        open_npz(tmp_path / "c.npz")


def test_non_finite_images_name_the_first_bad_one(tmp_path):
    x = np.ones((5, 1, 3, 3), np.float32)
    x[3, 0, 1, 2] = np.nan
    x[4] = np.inf
    np.savez(tmp_path / "nan.npz", images=x, labels=np.zeros(5, int))
    with pytest.raises(DataError, match=r"nan: image 3 is NaN or infinite"):
        open_npz(tmp_path / "nan.npz")
    with pytest.raises(DataError, match=r"nan: image 3 is NaN or infinite"):
        load_npz(tmp_path / "nan.npz")
    with pytest.raises(DataError, match=r"raw: image 3 is NaN or infinite"):
        Dataset(x, np.zeros(5, np.int64), ("a",), "raw")
    ok = np.zeros((2, 1, 3, 3), np.float32)
    ok[1, 0, 0, 0] = 1.0
    np.savez(tmp_path / "ok.npz", images=ok, labels=np.zeros(2, int))
    # finite in the file, not after normalisation with a tiny std: float32 overflows to inf
    with pytest.raises(DataError, match=r"ok: image 1 is NaN or infinite after loading"):
        open_npz(tmp_path / "ok.npz", normalize=([0.0], [1e-39])).get([0, 1])


def _folder(root, sizes, mode="RGB", seed=6):
    rng = np.random.default_rng(seed)
    for k, (cls, dims) in enumerate(sizes.items()):
        (root / cls).mkdir()
        for i, (w, h) in enumerate(dims):
            a = rng.integers(0, 256, (h, w, 3) if mode == "RGB" else (h, w), dtype=np.uint8)
            Image.fromarray(a).save(root / cls / f"{i}.png")


def test_streamed_image_folder_matches_the_in_memory_loader(tmp_path):
    _folder(tmp_path, {"cat": [(12, 10)] * 3, "dog": [(12, 10)] * 4})
    (tmp_path / "dog" / "notes.txt").write_text("ignored")
    s, m = open_dataset(tmp_path), load_image_folder(tmp_path)
    assert isinstance(s, ImageFolderDataset) and s.image_shape == (3, 10, 12) and s.class_names == ("cat", "dog")
    _same_batches(s, m, 3)
    _same_batches(s, m, 2, workers=2)


def test_image_folder_resize_and_centre_crop(tmp_path):
    (tmp_path / "a").mkdir()
    wide = np.zeros((20, 40, 3), np.uint8)  # 40 x 20: red | green | blue, green in the middle 28 columns
    wide[:, :6, 0] = 255
    wide[:, 6:34, 1] = 255
    wide[:, 34:, 2] = 255
    Image.fromarray(wide).save(tmp_path / "a" / "0_wide.png")
    Image.fromarray(np.full((7, 5), 128, np.uint8)).convert("RGB").save(tmp_path / "a" / "1_small.png")
    Image.fromarray(np.full((10, 10, 3), 64, np.uint8)).save(tmp_path / "a" / "2_exact.jpg", quality=100)
    d = open_dataset(tmp_path, input_size=10)
    assert d.image_shape == (3, 10, 10)
    x = d.get([0, 1, 2])
    assert x.shape == (3, 3, 10, 10)
    # 40x20 -> 20x10 -> the centre 10 columns (20 of the original) come from the green band only
    np.testing.assert_allclose(x[0, 1], 1.0, atol=1e-6)
    np.testing.assert_allclose(x[0, [0, 2]], 0.0, atol=1e-6)
    np.testing.assert_allclose(x[1], 128 / 255, atol=1e-6)  # upscaled grey stays grey
    np.testing.assert_allclose(x[2], 64 / 255, atol=2 / 255)  # the right size: not resampled
    # without --input-size the first image's size rules, others cover it and are cropped
    assert open_dataset(tmp_path).image_shape == (3, 20, 40)


def test_a_corrupt_image_is_named_with_or_without_workers(tmp_path):
    _folder(tmp_path, {"a": [(8, 8)] * 5, "b": [(8, 8)] * 5})
    (tmp_path / "b" / "3_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    d = open_dataset(tmp_path)
    for workers in (0, 2):
        with pytest.raises(DataError) as e:
            list(d.batches(2, workers=workers))
        msg = str(e.value)
        assert msg.startswith(str(tmp_path / "b" / "3_broken.png") + ": cannot read image") and "\n" not in msg


def test_normalize_parsing_and_values(tmp_path):
    mean, std = parse_normalize("imagenet")
    np.testing.assert_allclose(mean, [0.485, 0.456, 0.406]) and np.testing.assert_allclose(std, [0.229, 0.224, 0.225])
    assert parse_normalize("none") is None and parse_normalize(None) is None
    np.testing.assert_allclose(parse_normalize("0.5,0.25")[1], [0.25])
    np.testing.assert_allclose(parse_normalize("[0.1, 0.2, 0.3],[1, 2, 4]")[0], [0.1, 0.2, 0.3])
    for bad, pattern in (("0.5", "expected imagenet"), ("mean,std", "expected imagenet"),
                         ("0.5,0", "every std must be > 0"), ("[1,[2]],1", "must be"),
                         ("__import__('os'),1", "expected imagenet")):
        with pytest.raises(DataError, match=pattern):
            parse_normalize(bad)
    _folder(tmp_path, {"a": [(6, 4)] * 3})
    raw = open_dataset(tmp_path).get([0, 1, 2]).astype(np.float64)
    got = open_dataset(tmp_path, normalize="imagenet").get([0, 1, 2])
    want = (raw - np.array(IMAGENET_MEAN)[:, None, None]) / np.array(IMAGENET_STD)[:, None, None]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match="--normalize gives 2 means and 2 stds for images with 3 channels"):
        open_dataset(tmp_path, normalize="[0,0],[1,1]").get([0])
    d = open_dataset("digits", normalize="0.5,0.5", input_size=14)
    assert d.image_shape == (1, 14, 14) and d.get([0]).min() >= -1 - 1e-6 and d.get([0]).max() <= 1 + 1e-6


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_array_input_size_resizes_and_crops():
    import torch
    import torch.nn.functional as F

    from cnnvis.data import ArrayDataset

    rng = np.random.default_rng(7)
    x = rng.random((4, 2, 9, 15)).astype(np.float32)
    d = ArrayDataset(x, np.zeros(4, int), ("a",), "arr", input_size=6, scale=(0.0, 1.0))
    ref = F.interpolate(torch.from_numpy(x.astype(np.float64)), size=(6, 10), mode="bilinear",
                        align_corners=False, antialias=True)[:, :, :, 2:8].numpy()
    np.testing.assert_allclose(d.get(np.arange(4)), ref, atol=1e-5)
    assert d.image_shape == (2, 6, 6)


def test_in_memory_dataset_offers_the_streamed_interface():
    d = load_digits(12)
    assert d.image_shape == (1, 12, 12) and d.normalization is None
    got = list(d.batches(500, indices=np.arange(1797)[::-1]))
    assert [len(i) for i, _, _ in got] == [500, 500, 500, 297] and got[0][0][0] == 1796
    np.testing.assert_array_equal(got[-1][1].numpy(), d.images[296::-1])
    with pytest.raises(DataError, match="batch size must be >= 1"):
        next(d.batches(0))


def test_large_jpegs_decode_reduced_and_still_cover(tmp_path):
    (tmp_path / "a").mkdir()
    y, x = np.mgrid[0:480, 0:640]
    smooth = np.stack([x * 255 // 639, y * 255 // 479, np.full_like(x, 128)], -1).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "a" / "big.jpg", quality=95)
    got = open_dataset(tmp_path, input_size=32).get([0])[0]
    ref = np.asarray(Image.fromarray(smooth).resize((43, 32), Image.BILINEAR).crop((5, 0, 37, 32)),
                     np.float32).transpose(2, 0, 1) / 255
    assert got.shape == (3, 32, 32)
    np.testing.assert_allclose(got, ref, atol=0.04)  # JPEG and DCT-domain scaling, on a smooth image
