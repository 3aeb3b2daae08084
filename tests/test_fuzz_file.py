"""Hostile .cnnvis files: a seeded generator mutates a real analysis file (wrong arrays, hostile manifest
leaves, zip bombs, deep JSON, repeated names, aliases and sheets that lie, flipped bytes) and runs every path
that opens a file (Analysis.load, `cnnvis info`'s report, diagnose, aggregate + build_scene with findings).
Nothing but CnnvisError may escape, and memory stays bounded (tracemalloc per case, ru_maxrss per process).

`python3 tests/test_fuzz_file.py [N [SEED]]` prints the table of cases (runs, clean exits, peak memory).
"""
from __future__ import annotations

import copy
import io
import json
import os
import resource
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

if __name__ == "__main__":  # run as a script: this checkout's cnnvis, not an installed one
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cnnvis  # noqa: E402
from cnnvis.errors import CnnvisError  # noqa: E402

PKG_ROOT = str(Path(cnnvis.__file__).resolve().parents[1])
SEED = 21
BOMB_BYTES = 1 << 30  # the unreferenced member of zeros: 1 GiB inflated, 4.7 MB in the file (~4 s to write)
CASE_PEAK = 64 << 20  # Python-tracked bytes any one case may allocate (the base file's paths take ~10 MB)


# -- the base files: a real analysis (lenet-x0.25, 60 digits, 2 snapshots), raw and with JPEG sheets -----------
def make_base(folder: Path) -> dict[str, bytes]:
    import cnnvis.analysis._analysis as A
    import cnnvis.analysis._jpeg as P
    from cnnvis.analysis import Analysis
    from cnnvis.analysis._run import analyze
    from cnnvis.data import load_digits
    from cnnvis.testing.snapshots import lenet_snapshots

    data = load_digits().subset(np.arange(60))
    model = lenet_snapshots(folder, n_classes=10, image_size=28)
    a = analyze(model, data, snapshots=[folder / "s0.pt", folder / "s1.pt"], show_progress=False, top_k=3)
    a.save(folder / "raw.cnnvis")
    lossless, exact = P.LOSSLESS_LIMIT, A.CONNECTIONS_EXACT
    P.LOSSLESS_LIMIT, A.CONNECTIONS_EXACT = 0, 0  # JPEG sheets and float16 connections, as big models have
    try:
        Analysis.load(folder / "raw.cnnvis").save(folder / "jpeg.cnnvis")
    finally:
        P.LOSSLESS_LIMIT, A.CONNECTIONS_EXACT = lossless, exact
    return {k: (folder / f"{k}.cnnvis").read_bytes() for k in ("raw", "jpeg")}


def _members(raw: bytes) -> tuple[dict, dict[str, bytes], list]:
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        head = json.loads(zf.read("manifest.json"))
        return head, {i.filename: zf.read(i) for i in zf.infolist()}, zf.infolist()


def _zip(head, members: dict[str, bytes], manifest_bytes: bytes | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        at = lambda name: zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # noqa: E731 (same bytes each run)
        zf.writestr(at("manifest.json"), manifest_bytes if manifest_bytes is not None else json.dumps(head),
                    zipfile.ZIP_DEFLATED)
        for name, data in members.items():
            if name != "manifest.json":
                zf.writestr(at(name), data, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
    return buf.getvalue()


def _npy_claiming(shape, dtype="<f8", data=b"\0" * 64) -> bytes:
    """A .npy whose header declares `shape` but which holds only `data`."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue() + data


# -- mutations: each takes (rng, head, members) and returns the file's bytes and a description --------------------
HOSTILE = [-5, -1, 0, 1, 10**7, 10**12, 2**63, 1e308, float("nan"), float("inf"), "x", "", None, True, [], {},
           [1, 2], {"a": 1}, "é" * 300]


def _leaves(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, path + (i,))
    yield path


def _set(obj, path, value):
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


def mut_manifest_leaf(rng, head, members):
    h = copy.deepcopy(head)
    paths = [p for p in _leaves(h) if p and p[0] not in ("format", "version")]
    path = paths[rng.integers(len(paths))]
    value = HOSTILE[rng.integers(len(HOSTILE))]
    _set(h, path, value)
    return _zip(h, members), f"manifest {'.'.join(map(str, path))} = {value!r:.20}"


def mut_wrong_array(rng, head, members):
    names = [n for n in members if n.endswith(".npy")]
    name = names[rng.integers(len(names))]
    old = np.lib.format.read_array(io.BytesIO(members[name]))
    kind = rng.integers(8)
    shape = old.shape
    if kind == 0:
        new = np.zeros(tuple(s + 1 for s in shape) or (1,), old.dtype)          # wrong shape
    elif kind == 1:
        new = np.zeros(shape + (2,), old.dtype)                                  # wrong rank
    elif kind == 2:
        new = old.astype(np.complex64) if old.dtype.kind != "c" else old.real   # wrong dtype
    elif kind == 3:
        new = np.array(["a"] * max(1, old.size)).reshape(shape) if old.size else np.array(["a"])
    elif kind == 4:
        new = old.astype(np.float64)
        new.flat[rng.integers(max(1, new.size)) % max(1, new.size)] = [np.nan, np.inf, -np.inf][rng.integers(3)]
    elif kind == 5:
        new = old.copy()
        if new.size:
            info = np.iinfo(new.dtype) if new.dtype.kind in "iu" else None
            new.flat[0] = info.min if info else -1e30
            new.flat[-1] = info.max if info else 1e30
    elif kind == 6:
        return _zip(head, {**members, name: _npy_claiming((10**12,), old.dtype.str)}), f"{name}: header claims 10^12"
    else:
        new = old.reshape(-1)[: max(0, old.size - 1)]                              # one short
    what = ["shape", "rank", "dtype", "str", "nan", "extremes", "", "short"][kind]
    return _zip(head, {**members, name: _npy(new)}), f"{name}: {what}"


def mut_repeated_name(rng, head, members):
    h = copy.deepcopy(head)
    i, j = rng.choice(len(h["layers"]), 2, replace=False)
    h["layers"][i]["name"] = h["layers"][j]["name"]
    return _zip(h, members), f"layers[{i}].name = layers[{j}].name"


def mut_deep_json(rng, head, members):
    depth = int(rng.choice([40, 1000, 100_000]))
    text = json.dumps(head)[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    return _zip(head, members, text.encode()), f"manifest nested {depth} deep"


def mut_missing_member(rng, head, members):
    names = [n for n in members if n.endswith(".npy")]
    name = names[rng.integers(len(names))]
    return _zip(head, {k: v for k, v in members.items() if k != name}), f"{name} removed"


def mut_alias(rng, head, members):
    h = copy.deepcopy(head)
    names = [n[:-4] for n in members if n.endswith(".npy")]
    a, b = rng.choice(len(names), 2, replace=False)
    h.setdefault("aliases", {})[names[a]] = names[b]
    return _zip(h, members), f"alias {names[a]} -> {names[b]}"


def mut_edge_values(rng, head, members):
    """Values at the edges of what is valid: empty classes, never-filled top-k, zero or non-finite history."""
    m = dict(members)
    load = lambda n: np.lib.format.read_array(io.BytesIO(m[n]))  # noqa: E731
    names = [n for n in m if n.endswith(".npy")]
    kind = int(rng.integers(5))
    if kind == 0:  # class k has no images: count 0, NaN statistics (as the kernel writes them)
        k = int(rng.integers(len(head["class_names"])))
        for n in names:
            if n.startswith("stats/"):
                a = load(n)
                if n.endswith("count.npy"):
                    a[k] = 0
                else:
                    a[k] = np.nan
                m[n] = _npy(a)
        return _zip(head, m), f"class {k} empty"
    if kind == 1:  # a layer whose top-k was never filled
        j = [n for n in names if n.endswith("/scores.npy")][0].split("/")[1]
        for f, v in (("scores", np.nan), ("image_index", -1), ("crops", -1)):
            n = f"features/{j}/{f}.npy"
            if n in m:
                a = load(n)
                a[...] = v
                m[n] = _npy(a)
        return _zip(head, m), f"features/{j} unfilled"
    if kind == 2:  # non-finite or zero history values
        n = ["history/grad_mean.npy", "history/rel_change.npy", "history/loss.npy"][rng.integers(3)]
        a = load(n)
        a[...] = [np.nan, np.inf, 0.0][rng.integers(3)]
        m[n] = _npy(a)
        return _zip(head, m), f"{n} all {a.flat[0]}"
    if kind == 3:  # every statistic zero: all neurons dead, nothing to cluster by
        for n in names:
            if n.startswith(("stats/", "importance/")) and not n.endswith("count.npy"):
                m[n] = _npy(np.zeros_like(load(n)))
        return _zip(head, m), "all statistics zero"
    for n in names:  # every weight zero
        if n.startswith("conn/"):
            m[n] = _npy(np.zeros_like(load(n)))
    return _zip(head, m), "all weights zero"


def mut_sheet(rng, head, members):
    sheets = [n for n in members if "/sheet/" in n]
    name = sheets[rng.integers(len(sheets))]
    from PIL import Image

    kind = rng.integers(3)
    if kind == 0:
        data = np.frombuffer(b"\xff\xd8 not a jpeg", np.uint8)
    elif kind == 1:  # a real JPEG of another size
        buf = io.BytesIO()
        Image.fromarray(np.zeros((3000, 3000), np.uint8)).save(buf, "JPEG")
        data = np.frombuffer(buf.getvalue(), np.uint8)
    else:  # a JPEG whose header declares 65500 x 65500 pixels
        buf = io.BytesIO()
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, "JPEG")
        raw = bytearray(buf.getvalue())
        k = raw.index(b"\xff\xc0") + 5
        raw[k:k + 4] = (65500).to_bytes(2, "big") * 2
        data = np.frombuffer(bytes(raw), np.uint8)
    return _zip(head, {**members, name: _npy(data)}), f"{name}: {['garbage', 'wrong size', 'declares 65500^2'][kind]}"


def mut_flip(rng, head, members, raw=None):
    b = bytearray(raw)
    for _ in range(int(rng.integers(1, 4))):
        b[rng.integers(len(b))] ^= 1 << int(rng.integers(8))
    if rng.random() < 0.3:
        b = b[: rng.integers(len(b))]
    return bytes(b), "flipped bytes / truncated"


def mut_declared_huge(rng, head, members, raw=None):
    """A member's entry in the zip directory declares ~4 GiB uncompressed."""
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        infos = [i for i in zf.infolist() if i.filename.endswith(".npy")]
    info = infos[rng.integers(len(infos))]
    b = bytearray(raw)
    for off in _central_entries(b):
        n = int.from_bytes(b[off + 28:off + 30], "little")
        if b[off + 46:off + 46 + n].decode() == info.filename:
            b[off + 24:off + 28] = (0xFFFFFFFE).to_bytes(4, "little")
    return bytes(b), f"{info.filename}: directory declares 4 GiB"


def _central_entries(b: bytearray):
    off = b.find(b"PK\x01\x02")
    while off >= 0:
        yield off
        off = b.find(b"PK\x01\x02", off + 4)


MUTATIONS = {"manifest leaf": mut_manifest_leaf, "wrong array": mut_wrong_array, "repeated name": mut_repeated_name,
             "deep JSON": mut_deep_json, "missing member": mut_missing_member, "alias": mut_alias,
             "JPEG sheet": mut_sheet, "flipped bytes": mut_flip, "declared huge": mut_declared_huge,
             "edge values": mut_edge_values}
WEIGHTS = {"manifest leaf": 8, "wrong array": 8, "repeated name": 1, "deep JSON": 1, "missing member": 1,
           "alias": 2, "JPEG sheet": 2, "flipped bytes": 2, "declared huge": 1, "edge values": 2}


def bomb(raw: bytes) -> bytes:
    """The file plus an unreferenced member: a .npy of BOMB_BYTES of zeros, deflated (4.7 MB)."""
    buf = io.BytesIO(raw)
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("zeros.npy", "w", force_zip64=True) as out:
            out.write(_npy_claiming((BOMB_BYTES // 8,), "<f8", b""))  # a well-formed .npy of zeros
            chunk = bytes(16 << 20)
            for _ in range(BOMB_BYTES // len(chunk)):
                out.write(chunk)
    return buf.getvalue()


def cases(bases: dict[str, bytes], n: int, seed: int = SEED):
    """n seeded (kind, description, bytes) over the base files."""
    rng = np.random.default_rng(seed)
    kinds = list(WEIGHTS)
    p = np.array([WEIGHTS[k] for k in kinds], float)
    parsed = {k: _members(v) for k, v in bases.items()}
    for _ in range(n):
        base = ("raw", "jpeg")[rng.integers(2)]
        kind = kinds[rng.choice(len(kinds), p=p / p.sum())]
        base = "jpeg" if kind == "JPEG sheet" else base
        head, members, _ = parsed[base]
        fn = MUTATIONS[kind]
        if kind in ("flipped bytes", "declared huge"):
            data, what = fn(rng, head, members, raw=bases[base])
        else:
            data, what = fn(rng, head, members)
        yield kind, f"{base}: {what}", data


# -- the paths a file goes through ------------------------------------------------------------------------------
def open_everything(path) -> None:
    """What `cnnvis info [--aggregation]`, `cnnvis diagnose` and `cnnvis-gl` do with a file: the report, the
    Session (aggregate, diagnose, build_scene with the findings) and every patch (JPEG sheets decode here)."""
    from cnnvis.analysis import Analysis
    from cnnvis.app.report import describe
    from cnnvis.app.session import Session

    a = Analysis.load(path)
    describe(a)
    s = Session(a)
    s.aggregation.explain()
    for f in a.features.values():
        np.asarray(f.patches)
    s.scene.validate()  # a ValueError here (shapes that disagree) escapes as what it is: a bug
    assert s.findings is not None


def run_case(path) -> tuple[str, int]:
    """('ok' | 'refused: ...' | 'ESCAPED ...', peak Python-tracked bytes)."""
    tracemalloc.start()
    try:
        open_everything(path)
        outcome = "ok"
    except CnnvisError as exc:
        msg = str(exc)
        outcome = "refused: " + msg if "\n" not in msg.strip() else "ESCAPED multi-line message: " + msg
    except BaseException as exc:  # noqa: BLE001 (that is what the fuzz test looks for)
        import traceback

        outcome = f"ESCAPED {type(exc).__name__}: {exc}\n" + "".join(traceback.format_tb(exc.__traceback__)[-3:])
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, peak


def fuzz(folder: Path, n: int, seed: int = SEED, bases: dict | None = None) -> list[tuple[str, str, str, int]]:
    bases = bases or make_base(folder)
    out = []
    for i, (kind, what, data) in enumerate(cases(bases, n, seed)):
        p = folder / f"case{i}.cnnvis"
        p.write_bytes(data)
        outcome, peak = run_case(p)
        out.append((kind, what, outcome, peak))
        p.unlink()
    return out


# -- the tests ---------------------------------------------------------------------------------------------------
N_CASES = 100


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    folder = tmp_path_factory.mktemp("base")
    return folder, make_base(folder)


def test_fuzzed_files_raise_only_cnnvis_errors_within_bounded_memory(base, tmp_path):
    results = fuzz(tmp_path, N_CASES, bases=base[1])
    escaped = [(w, o) for _, w, o, _ in results if o.startswith("ESCAPED")]
    assert not escaped, f"{len(escaped)} of {len(results)} cases escaped; first: {escaped[0]}"
    heavy = [(w, p) for _, w, _, p in results if p > CASE_PEAK]
    assert not heavy, f"cases allocating more than {CASE_PEAK >> 20} MB: {heavy[:3]}"
    refused = [o for _, _, o, _ in results if o.startswith("refused")]
    assert len(refused) > N_CASES // 2  # the generator does produce bad files, and they are refused ...
    assert all(str(tmp_path) in o for o in refused)  # ... with a message naming the file
    kinds = {k for k, *_ in results}
    assert kinds == set(MUTATIONS)


_RSS_CHILD = """
import resource, sys
from cnnvis.errors import CnnvisError
sys.path.insert(0, {tests!r})
from test_fuzz_file import open_everything
try:
    open_everything(sys.argv[1])
    print("ok")
except CnnvisError as exc:
    print("refused:", exc)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_kb(path) -> tuple[str, int]:
    """(outcome line, peak RSS in KiB) of opening `path` in a fresh process."""
    env = dict(os.environ, PYTHONPATH=PKG_ROOT)
    r = subprocess.run([sys.executable, "-c", _RSS_CHILD.format(tests=str(Path(__file__).parent)), str(path)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    outcome, rss = r.stdout.strip().splitlines()[-2:]
    return outcome, int(rss)


def test_an_unreferenced_gigabyte_of_zeros_is_never_inflated(base, tmp_path):
    folder, bases = base
    (tmp_path / "bomb.cnnvis").write_bytes(bomb(bases["raw"]))
    assert (tmp_path / "bomb.cnnvis").stat().st_size < 8 << 20
    outcome, rss = peak_rss_kb(tmp_path / "bomb.cnnvis")
    _, rss_plain = peak_rss_kb(folder / "raw.cnnvis")
    assert outcome == "ok"  # the file is fine: its extra member is simply not read
    assert rss < rss_plain + (64 << 10), (rss, rss_plain)  # within 64 MB of the plain file's, not + 1 GiB


def test_the_commands_exit_2_with_one_line_on_hostile_files(base, tmp_path, capsys):
    """`cnnvis info`, `cnnvis diagnose --json` (in this process) and `cnnvis-gl --screenshot` (in its own)."""
    from cnnvis.app import main

    head, members, _ = _members(base[1]["jpeg"])
    rng = np.random.default_rng(0)
    files = {"repeated": mut_repeated_name(rng, head, members)[0], "deep": _zip(head, members, b"[" * 100_000),
             "claims": _zip(head, {**members, "stats/1/mean.npy": _npy_claiming((10**12,))})}
    for name, data in files.items():
        (tmp_path / f"{name}.cnnvis").write_bytes(data)
        for argv in (["info", f"{tmp_path}/{name}.cnnvis"], ["diagnose", "--json", f"{tmp_path}/{name}.cnnvis"]):
            assert main(argv) == 2, argv
            out = capsys.readouterr()
            err = out.err.strip().splitlines()
            assert out.out == "" and len(err) == 1 and err[0].startswith(f"cnnvis: error: {tmp_path}/{name}.cnnvis: ")
    env = dict(os.environ, PYTHONPATH=PKG_ROOT, EGL_PLATFORM="surfaceless", PYOPENGL_PLATFORM="egl")
    r = subprocess.run([sys.executable, "-c", "import sys; from cnnvis.app import main_gl; sys.exit(main_gl())",
                        "repeated.cnnvis", "--screenshot", "r.png"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "repeated.cnnvis: corrupt analysis file: manifest layers[" in r.stderr and "must be unique" in r.stderr \
        or "is not an earlier layer" in r.stderr
    assert not (tmp_path / "r.png").exists()


def test_the_generator_is_seeded(base):
    import hashlib

    digest = lambda seed: [(k, w, hashlib.sha1(d).hexdigest()) for k, w, d in cases(base[1], 12, seed)]  # noqa
    assert digest(3) == digest(3) != digest(4)


if __name__ == "__main__":
    import tempfile
    import time

    n = int(sys.argv[1]) if len(sys.argv) > 1 else N_CASES
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else SEED
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        res = fuzz(Path(d), n, seed)
        took = time.perf_counter() - t0
        print(f"`python3 tests/test_fuzz_file.py {n} {seed}`, {took:.0f} s\n")
        print("| mutation | runs | loaded fine | refused (CnnvisError, one line) | escaped | peak traced MB |")
        print("|---|---|---|---|---|---|")
        for k in MUTATIONS:
            rows = [r for r in res if r[0] == k]
            ok = sum(o == "ok" for _, _, o, _ in rows)
            ref = sum(o.startswith("refused") for _, _, o, _ in rows)
            esc = sum(o.startswith("ESCAPED") for _, _, o, _ in rows)
            peak = max((p for *_, p in rows), default=0) / 2**20
            print(f"| {k} | {len(rows)} | {ok} | {ref} | {esc} | {peak:.1f} |")
        print(f"\npeak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        for _, w, o, _ in res:
            if o.startswith("ESCAPED"):
                print("\nESCAPED:", w, "\n", o)
