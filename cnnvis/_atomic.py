"""Writing a file all at once or not at all: into a temporary file beside it, then renamed onto it."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike, write, *, durable: bool = False) -> None:
    """write(fh) into `.NAME.PID.xxxx.tmp` beside `path` (unique: concurrent writers never share one; the process
    id lets a later run tell an orphan from a live write), then rename it onto `path`. Any failure, Ctrl-C
    included, removes the temporary file and leaves `path` as it was. durable: fsync before the rename, and
    the permissions of an ordinary new file (mkstemp makes 0600)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        if durable:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
