"""Progress bars for long work (tqdm on a terminal; silent when disabled or CNNVIS_PROGRESS=0)."""
from __future__ import annotations

import os
import sys

__all__ = ["progress"]


class _Silent:
    def update(self, n=1):
        pass

    def set_postfix(self, **kw):
        pass

    def close(self):
        pass


def progress(*, total: int, desc: str, enabled: bool = True):
    if not enabled or os.environ.get("CNNVIS_PROGRESS", "1") == "0":
        return _Silent()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False,
                mininterval=0.5, disable=None)
