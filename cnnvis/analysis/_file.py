"""The container of .cnnvis files: a zip of .npy arrays plus one JSON manifest; never a pickle.

Written atomically (a temporary `.NAME.PID.xxxx.tmp` in the same folder, fsync, rename), so a crash or a bad
input never leaves a half-written file at the destination; the temporary of a killed process is removed by the
next write of the same file. Read only after cnnvis.analysis._validate has checked the manifest and each
member's header against it, and only the members the manifest names.
"""
from __future__ import annotations

import glob
import json
import os
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

from cnnvis.analysis import _validate
from cnnvis._atomic import atomic_write
from cnnvis.errors import AnalysisFileError

MAGIC = "cnnvis-analysis"
FORMAT_VERSION = 2  # 1: patches per layer; 2: shared crop groups (cnnvis.analysis._analysis)
_MANIFEST = "manifest.json"


def write_archive(path: str | os.PathLike, manifest: dict, arrays: dict[str, np.ndarray],
                  stored=frozenset()) -> None:
    """Members named in `stored` are written without deflate (data compressed already)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise AnalysisFileError(f"{path}: folder {folder} does not exist")
    head = {"format": MAGIC, "version": FORMAT_VERSION, **manifest}
    remove_stale_temporaries(path)

    def write(fh):
        # Deflate level 1: the demo's file shrinks from 15.7 to 8.3 MB for 0.2 s of saving, 0.04 s of loading.
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True) as zf:
            zf.writestr(_MANIFEST, json.dumps(head, indent=1, sort_keys=True))
            for name, arr in arrays.items():
                arr = np.asarray(arr)
                if arr.dtype == object:
                    raise TypeError(f"array {name!r} has dtype object; the file holds no pickles")
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                deflate = name not in stored and _worth_deflating(arr)
                info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
                info._compresslevel = 1  # (ZipInfo has no public field for it before 3.13)
                with zf.open(info, "w", force_zip64=True) as out:
                    np.lib.format.write_array(out, np.ascontiguousarray(arr), allow_pickle=False)

    atomic_write(path, write, durable=True)


_SAMPLE = 1 << 16


def _worth_deflating(arr: np.ndarray) -> bool:
    """Whether deflate saves more than a tenth of a big array, judged on a 64 KB sample. Trained float weights
    and standard deviations shrink by 5-7% only (ResNet-50: 34 of 58 MB), and inflating them was a third of
    the file's load time."""
    if arr.nbytes <= _SAMPLE or arr.dtype.kind not in "fc":
        return True
    sample = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)[:_SAMPLE]
    return len(zlib.compress(sample.tobytes(), 1)) < 0.9 * _SAMPLE


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of earlier writes of `path` whose process is gone (killed with -9, or a
    machine that went down): `.NAME.PID.xxxx.tmp`; one without a process id (an older cnnvis) after an hour."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    removed = []
    for p in folder.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = p.name[len(path.name) + 2:].split(".")[0]
        try:
            stale = not _alive(int(pid)) if pid.isdigit() else time.time() - p.stat().st_mtime > 3600
            if stale:
                p.unlink()
                removed.append(p)
        except OSError:  # gone already, or not ours to remove
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_archive(path: str | os.PathLike, *, extra=None) -> tuple[dict, dict[str, np.ndarray]]:
    """(manifest, logical member name -> array), every member checked (cnnvis.analysis._validate) before it
    is inflated and used; members the manifest does not name are never read; aliases are resolved.
    extra(path, head, plan) -> Plan: further members a file kind adds to the analysis (a diff file's), each
    with its Spec, read under the same checks; their values are the caller's to check."""
    path = Path(path)
    if path.is_dir():
        raise AnalysisFileError(f"{path}: is a folder, not an analysis file (give a .cnnvis file)")
    if not path.is_file():
        raise AnalysisFileError(f"{path}: no such analysis file")
    with open(path, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":
            raise AnalysisFileError(f"{path}: not a cnnvis analysis file")
    try:
        with zipfile.ZipFile(path, "r") as zf:
            head = _read_manifest(path, zf)
            _check_head(path, head)
            plan = _validate.plan(path, head)
            more = extra(path, head, plan) if extra is not None else _validate.Plan()
            arrays = {}
            by_member: dict[str, list] = {}
            specs = {**plan.members, **more.members}
            for name, member in {**plan.stored, **more.stored}.items():
                by_member.setdefault(member, []).append(name)
            for member, logical in by_member.items():
                arr = _read_member(path, zf, member, [specs[n] for n in logical])
                arrays.update((n, arr) for n in logical)
            _validate.check_values(path, head, plan, arrays)
    except AnalysisFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, KeyError,
            NotImplementedError) as exc:  # NotImplementedError: a flipped bit asks for an unsupported zip feature
        raise AnalysisFileError(f"{path}: truncated or corrupt analysis file ({exc})") from None
    except (ValueError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise AnalysisFileError(f"{path}: corrupt analysis file ({exc})") from None
    return head, arrays


def _read_manifest(path: Path, zf: zipfile.ZipFile) -> dict:
    try:
        info = zf.getinfo(_MANIFEST)
    except KeyError:
        raise AnalysisFileError(f"{path}: not a cnnvis analysis file (no manifest)") from None
    _validate.check_manifest_bytes(path, info.file_size)
    with zf.open(info) as fh:
        raw = fh.read(_validate.MANIFEST_BYTES + 1)
    _validate.check_manifest_bytes(path, len(raw), raw)
    return json.loads(raw.decode("utf-8"))


def _read_member(path: Path, zf: zipfile.ZipFile, member: str, specs: list) -> np.ndarray:
    """One .npy member: its header and directory entry checked against every spec that names it, then
    exactly the bytes the header declares read into a fresh array (the zip CRC checked at the end)."""
    try:
        info = zf.getinfo(member + ".npy")
    except KeyError:
        raise AnalysisFileError(f"{path}: corrupt analysis file: member {member}.npy ({specs[0].what}) "
                                "is missing") from None
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version not in ((1, 0), (2, 0), (3, 0)):
            raise AnalysisFileError(f"{path}: corrupt analysis file: member {member}.npy: .npy version {version}")
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(fh)
        for spec in specs:
            _validate.check_header(path, member, spec, dtype, shape, fh.tell(), info.file_size)
        arr = np.empty(shape, dtype, order="F" if fortran else "C")
        view = memoryview(arr.reshape(-1, order="A").view(np.uint8))
        got = 0
        while got < len(view):
            n = fh.readinto(view[got:got + (8 << 20)])
            if not n:
                raise AnalysisFileError(f"{path}: truncated or corrupt analysis file (member {member}.npy ends "
                                        f"after {got} of {len(view)} bytes)")
            got += n
        fh.read(1)  # reaches the end: the CRC is checked
    return arr


def _check_head(path: Path, head: dict) -> None:
    if not isinstance(head, dict) or head.get("format") != MAGIC:
        raise AnalysisFileError(f"{path}: not a cnnvis analysis file")
    version = head.get("version")
    if not isinstance(version, int):
        raise AnalysisFileError(f"{path}: analysis file has no format version")
    if version > FORMAT_VERSION:
        raise AnalysisFileError(
            f"{path}: written by a newer cnnvis (file format {version}, this version reads up to "
            f"{FORMAT_VERSION}); upgrade cnnvis")
