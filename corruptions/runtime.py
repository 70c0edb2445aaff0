"""Process settings for long runs of many corruptions (benchmarks, pipeline workers, the
scorer's on-the-fly loader workers).

Every kernel allocates a few image-sized float arrays. glibc hands arrays of this size
(over its mmap threshold) back to the kernel on free, so each new one page-faults again:
a third of the time of the cheap kernels. Raising the thresholds keeps freed memory in
the process for reuse. It is a per-process choice, so the library does not make it on import.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Ask glibc to serve image-sized arrays from the heap; False where that is not glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(option, value) == 1 for option, value in (
        (_M_MMAP_THRESHOLD, mmap_threshold), (_M_TRIM_THRESHOLD, trim_threshold), (_M_TOP_PAD, 64 << 20)))


# one thread per numeric library in each worker process: parallelism comes from the processes
SINGLE_THREADED = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                           "NUMBA_NUM_THREADS")}


def producer_process(opencv: bool = True) -> None:
    """Settings of a process that runs kernels beside others doing the same: single-threaded
    BLAS / OpenMP / OpenCV / numba (BLAS threads otherwise spin after every small matrix
    product, a third more CPU for nothing) and the allocator kept for reuse.

    ``opencv=False`` in a forked child: there ``cv2.setNumThreads`` can deadlock on the
    parent's thread pool (its condition variables still have the parent's waiters); the
    parent sets it before forking instead, and the child inherits it."""
    from threadpoolctl import threadpool_limits
    os.environ.update(SINGLE_THREADED)
    threadpool_limits(1)
    if opencv:
        import cv2
        cv2.setNumThreads(1)
    keep_freed_memory()

