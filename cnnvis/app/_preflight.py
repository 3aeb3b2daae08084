"""What `cnnvis analyze` checks and decides before the pass, so that bad input fails in seconds and the pass
fits the machine: the output location is writable, the labels fit the model's class scores, --top-k is capped
at the number of images, the batch is sized to the memory available, SIGTERM cleans up like Ctrl-C.

Each is a plain function of the model, the data set and the options (the analysis can call them too).
"""
from __future__ import annotations

import errno
import os
import signal
import tempfile
from pathlib import Path

import numpy as np

from cnnvis.errors import DataError, ModelError

__all__ = ["check_output_writable", "check_labels", "cap_top_k", "probe", "auto_batch_size", "available_memory",
           "terminate_as_interrupt", "MAX_AUTO_BATCH", "PASS_FACTOR"]

MAX_AUTO_BATCH = 128  # the former fixed default: larger batches only cost memory
# The pass's peak per image over the bytes autograd saves in a plain forward (the probe): the analysis keeps
# each layer's (B, C, S) view and its gradient during the backward pass, and the allocator's slack.
# ResNet-50 at 224x224 (tests/resnets.py, CPU): the probe saves 82.6 MiB per image; the pass peaks 1.41, 1.93
# and 2.44 GB at batches 4, 8 and 12, i.e. 125 MiB more per image (x1.52).
PASS_FACTOR = 1.55
_PROBE_BYTES = 1 << 20  # written (and fsynced) once to the output folder: a full disk shows here


def check_output_writable(out: Path) -> None:
    """Create, write, fsync and remove a probe file beside `out`: a read-only or full file system is one line
    before the pass, not a traceback after it."""
    from cnnvis.analysis._file import remove_stale_temporaries

    folder = out.parent if str(out.parent) else Path(".")
    remove_stale_temporaries(out)  # left by an earlier run that was killed while saving
    try:
        fd, probe_path = tempfile.mkstemp(prefix=f".{out.name}.{os.getpid()}.", suffix=".probe", dir=folder)
    except OSError as exc:
        raise DataError(f"{out}: cannot write in {folder} ({_why(exc)})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(bytes(_PROBE_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise DataError(f"{out}: cannot write in {folder} ({_why(exc)})") from None
    finally:
        try:
            os.unlink(probe_path)
        except OSError:
            pass


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or type(exc).__name__


def check_labels(data, n_outputs: int) -> None:
    """Every label must index one of the model's `n_outputs` class scores; checked before anything is sized
    by the number of classes (a stray label of 10^7 would size every per-class statistic)."""
    labels = np.asarray(data.labels)
    bad = np.flatnonzero((labels < 0) | (labels >= n_outputs))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{data.name}: label {int(labels[i])} of image {i} is outside the model's {n_outputs} "
                        f"class scores [0, {n_outputs})" + (f" ({bad.size} such images)" if bad.size > 1 else ""))
    if data.n_classes != n_outputs:
        raise ModelError(f"the model outputs {n_outputs} class scores but the data set {data.name!r} has "
                         f"{data.n_classes} classes")


def cap_top_k(top_k: int, n_images: int, say) -> int:
    """--top-k beyond the number of images keeps every image (and says so)."""
    if top_k > n_images >= 1:
        say(f"note: --top-k {top_k} is more than the {n_images} images; keeping {n_images} patches per neuron")
        return n_images
    return top_k


def probe(model, data, n: int = 1, output=None) -> tuple[int, int]:
    """(class scores the model outputs, bytes autograd saves per image) from one forward pass of n images with
    gradients on the input only, as the analysis runs it (the model's flags and mode are restored). output: where
    the class scores are in what the model returns (cnnvis.graph._output.pick_output)."""
    import torch

    from cnnvis.graph._output import pick_output

    x = torch.from_numpy(np.asarray(data.get(np.arange(min(n, len(data)))), np.float32))
    param = next(model.parameters(), None)
    x = (x if param is None else x.to(param.device)).requires_grad_(True)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            saved[st.data_ptr()] = st.nbytes()
        return t

    flags = [p.requires_grad for p in model.parameters()]
    was_training = model.training
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        model.eval()
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(x)
    except Exception as exc:  # the data set was checked against the model already; anything else is the model's
        raise ModelError(f"the model failed on a probe batch of {len(x)} images ({type(exc).__name__}: {exc})"
                         .splitlines()[0]) from None
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
        model.train(was_training)
    out = pick_output(out, output, model=type(model).__name__)
    if out.ndim != 2:
        raise ModelError(f"the model must return class scores of shape (N, K), got "
                         f"{getattr(out, 'shape', type(out).__name__)}")
    per_image = (sum(saved.values()) + x.nbytes + out.nbytes) / len(x)
    return int(out.shape[1]), int(per_image)


def available_memory(device: str = "cpu") -> int:
    """Bytes this process may still use: MemAvailable, bounded by a cgroup limit; free memory on the GPU for
    device "cuda" (and "auto" where torch sees one)."""
    if device in ("cuda", "auto"):
        import torch

        if torch.cuda.is_available():
            return int(torch.cuda.mem_get_info()[0])
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            avail = min(avail or 1 << 62, int(limit) - used)
    except (OSError, ValueError):
        pass
    return int(avail if avail is not None else 4 << 30)


def auto_batch_size(per_image: int, available: int, *, processes: int = 1) -> int:
    """The batch whose pass fits in half the memory available (shared by `processes` on this machine),
    at least 1 and at most MAX_AUTO_BATCH."""
    budget = available / 2 / max(1, processes)
    return int(max(1, min(MAX_AUTO_BATCH, budget // max(1, PASS_FACTOR * per_image))))


def terminate_as_interrupt() -> None:
    """SIGTERM unwinds like Ctrl-C (a KeyboardInterrupt), so the file being written removes its temporary."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave the default
        pass
