"""Progress for long work: a tqdm bar on a terminal, a plain line every few seconds elsewhere (a log, CI),
nothing when disabled or CNNVIS_PROGRESS=0.

A non-terminal gets `desc: n/total unit (rate unit/s, m:ss left) key=value ...` at most every
CNNVIS_PROGRESS_INTERVAL seconds (default 5) and one closing line, so a three-minute demo in a log is not
three minutes of silence.
"""
from __future__ import annotations

import os
import sys
import time

__all__ = ["progress"]


class _Silent:
    def update(self, n=1):
        pass

    def set_postfix(self, **kw):
        pass

    def close(self):
        pass


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    return (f"{h}:" if h else "") + f"{rest // 60:0{2 if h else 1}d}:{rest % 60:02d}"


class _Lines:
    """Timed one-line reports for a stream that is not a terminal."""

    def __init__(self, total: int, desc: str, unit: str, stream, interval: float):
        self.total, self.desc, self.unit, self.stream, self.interval = total, desc, unit, stream, interval
        self.n, self.postfix = 0, {}
        self.start = self.last = time.perf_counter()

    def _line(self, now: float, final: bool = False) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = self.n / elapsed
        if final:
            head = f"{self.desc}: {self.n} {self.unit} in {_clock(elapsed)} ({rate:.1f} {self.unit}/s)"
        else:
            left = (self.total - self.n) / rate if rate > 0 else float("inf")
            eta = _clock(left) if left != float("inf") else "?"
            head = f"{self.desc}: {self.n}/{self.total} {self.unit} ({rate:.1f} {self.unit}/s, {eta} left)"
        tail = " ".join(f"{k}={v}" for k, v in self.postfix.items())
        return head + (f" {tail}" if tail else "")

    def update(self, n=1):
        self.n += n
        now = time.perf_counter()
        if now - self.last >= self.interval:
            self.last = now
            print(self._line(now), file=self.stream, flush=True)

    def set_postfix(self, **kw):
        self.postfix = dict(kw)

    def close(self):
        print(self._line(time.perf_counter(), final=True), file=self.stream, flush=True)


def progress(*, total: int, desc: str, enabled: bool = True, unit: str = "it"):
    """A progress reporter with `update(n)`, `set_postfix(**kw)` and `close()`."""
    if not enabled or os.environ.get("CNNVIS_PROGRESS", "1") == "0":
        return _Silent()
    stream = sys.stderr
    if not (hasattr(stream, "isatty") and stream.isatty()):
        return _Lines(total, desc, unit, stream, float(os.environ.get("CNNVIS_PROGRESS_INTERVAL", "5")))
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=stream, dynamic_ncols=True, leave=False,
                mininterval=0.5)
