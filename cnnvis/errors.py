"""Errors that cnnvis raises on bad input, and the one way every command reports them: one line on stderr,
exit code 2, no traceback (`guard`)."""
from __future__ import annotations

import os
import sys

__all__ = ["CnnvisError", "DataError", "ModelError", "AnalysisFileError", "DeviceError", "guard", "first_line"]


class CnnvisError(ValueError):
    """Base class: bad input or an unusable file, with a message that names the thing that is wrong."""


class DataError(CnnvisError):
    """A data set, label array or activation array is missing, malformed or inconsistent."""


class ModelError(CnnvisError):
    """A model cannot be traced or analysed, or a checkpoint does not fit it."""


class AnalysisFileError(CnnvisError):
    """A .cnnvis file is truncated, corrupt, or written by a newer version."""


class DeviceError(CnnvisError):
    """device="cuda" was asked for where CUDA is not usable."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when empty), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def guard(fn, argv, prog: str) -> int:
    """Run `fn(argv)` as the command `prog`: bad input becomes one line on stderr and exit code 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return int(fn(argv) or 0)
    except CnnvisError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"{prog}: error: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `cnnvis info FILE | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
