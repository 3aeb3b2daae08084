"""The one mapping from the core's errors (csrc/common/errors.hpp) to cnnvis.errors, and the one way
non-finite input is reported, whichever kernel finds it."""
from __future__ import annotations

import contextlib

from cnnvis import _core
from cnnvis.errors import CnnvisError, DataError, DeviceError

__all__ = ["calling_core", "non_finite"]


def non_finite(name: str, where: str | None = None) -> DataError:
    """DataError("<name> contains NaN or infinity[ (where)]")."""
    return DataError(f"{name} contains NaN or infinity" + (f" ({where})" if where else ""))


@contextlib.contextmanager
def calling_core(name: str):
    """Run a core call; its errors as cnnvis errors naming the input `name` (the commands print those as
    one line). NonFiniteError -> DataError, CudaError -> DeviceError, other ValueError -> CnnvisError."""
    try:
        yield
    except _core.NonFiniteError as exc:
        raise non_finite(name, str(exc)) from None
    except _core.CudaError as exc:
        raise DeviceError(f"{name}: {exc}") from None
    except CnnvisError:
        raise
    except ValueError as exc:
        raise CnnvisError(f"{name}: {exc}") from None
