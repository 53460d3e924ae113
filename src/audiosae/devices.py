"""Which device a job computes on.

Snakemake counts GPUs (`--resources gpu=N`) but does not say which one a job
may use. `gpu_slot` claims a free device index with an exclusive lock file, sets
CUDA_VISIBLE_DEVICES to it for the job's lifetime, and frees it on exit. The OS
drops a lock when its process dies, so a crashed job never holds a slot.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

LOCK_DIR_ENV = "AUDIOSAE_GPU_LOCK_DIR"
COUNT_ENV = "AUDIOSAE_GPU_COUNT"


def visible_gpu_count() -> int:
    """GPUs this process may use: AUDIOSAE_GPU_COUNT if set (tests pretend), else CUDA's count."""
    if COUNT_ENV in os.environ:
        return int(os.environ[COUNT_ENV])
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # torch without CUDA runtime
        return 0


def _lock_dir() -> Path:
    d = Path(os.environ.get(LOCK_DIR_ENV, Path(os.environ.get("TMPDIR", "/tmp")) / f"audiosae-gpu-{os.getuid()}"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextmanager
def gpu_slot(requested: int = 1, poll_s: float = 0.5, timeout_s: float | None = None) -> Iterator[int | None]:
    """Hold one GPU index for the duration of the block; yields it, or None without GPUs.

    Where a scheduler already restricted CUDA_VISIBLE_DEVICES (SLURM sets it per
    job), the first visible device is used without locking.
    """
    n = visible_gpu_count()
    if requested < 1 or n == 0:
        yield None
        return
    if os.environ.get("SLURM_JOB_ID") and os.environ.get("CUDA_VISIBLE_DEVICES"):
        yield 0
        return
    parent = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = parent.split(",") if parent else [str(i) for i in range(n)]
    lock_dir = _lock_dir()
    start = time.monotonic()
    while True:
        for slot, dev in enumerate(ids[:n]):
            fh = open(lock_dir / f"gpu{dev}.lock", "a+")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                fh.close()
                if err.errno in (errno.EAGAIN, errno.EACCES):
                    continue
                raise
            previous = os.environ.get("CUDA_VISIBLE_DEVICES")
            os.environ["CUDA_VISIBLE_DEVICES"] = dev
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            try:
                yield int(dev)
            finally:
                if previous is None:
                    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
                else:
                    os.environ["CUDA_VISIBLE_DEVICES"] = previous
                fcntl.flock(fh, fcntl.LOCK_UN)
                fh.close()
            return
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"no free GPU among {ids[:n]} after {timeout_s} s (locks in {lock_dir})")
        time.sleep(poll_s)


def resolve_device(name: str = "auto"):
    """torch.device for a config's `device` key: auto → CUDA when present, else CPU."""
    import torch

    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device: cuda was asked for, but no CUDA device is visible; use device: auto or cpu")
        return torch.device("cuda")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
