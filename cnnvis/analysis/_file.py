"""The container of .cnnvis files: a zip of .npy arrays plus one JSON manifest; never a pickle.

Written atomically (temporary file in the same folder, fsync, rename), so a crash or a bad input never
leaves a half-written file at the destination.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            # Deflate level 1: the demo's file shrinks from 15.7 to 8.3 MB for 0.2 s of saving, 0.04 s of loading.
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1,
                                 allowZip64=True) as zf:
                zf.writestr(_MANIFEST, json.dumps(head, indent=1, sort_keys=True))
                for name, arr in arrays.items():
                    arr = np.asarray(arr)
                    if arr.dtype == object:
                        raise TypeError(f"array {name!r} has dtype object; the file holds no pickles")
                    info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
                    info._compresslevel = 1  # (ZipInfo has no public field for it before 3.13)
                    with zf.open(info, "w", force_zip64=True) as out:
                        np.lib.format.write_array(out, np.ascontiguousarray(arr), allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a saved analysis is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_archive(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    path = Path(path)
    if not path.is_file():
        raise AnalysisFileError(f"{path}: no such analysis file")
    with open(path, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":
            raise AnalysisFileError(f"{path}: not a cnnvis analysis file")
    try:
        with zipfile.ZipFile(path, "r") as zf:
            names = zf.namelist()
            if _MANIFEST not in names:
                raise AnalysisFileError(f"{path}: not a cnnvis analysis file (no manifest)")
            head = json.loads(zf.read(_MANIFEST).decode("utf-8"))
            _check_head(path, head)
            arrays = {}
            for n in names:
                if n.endswith(".npy"):
                    arrays[n[:-4]] = np.lib.format.read_array(io.BytesIO(zf.read(n)), allow_pickle=False)
    except AnalysisFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, KeyError,
            NotImplementedError) as exc:  # NotImplementedError: a flipped bit asks for an unsupported zip feature
        raise AnalysisFileError(f"{path}: truncated or corrupt analysis file ({exc})") from None
    except (ValueError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnalysisFileError(f"{path}: corrupt analysis file ({exc})") from None
    return head, arrays


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
