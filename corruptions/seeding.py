"""One random generator per output, derived from what identifies it.

The stream depends on (root seed, task, then the task's own parts: variant, name, level,
image id) only, so the bytes written never depend on worker count, shard size, scheduling or
retries. Each task has its own namespace, so no two tasks share a stream. ImageNet-C's
namespace is empty, which keeps the derivation (and the bytes) of its first release; every
other task prefixes its name, which no variant name can equal.
"""
from __future__ import annotations

import hashlib

import numpy as np

NAMESPACES = {"imagenet-c": ()}  # tasks not listed here use (task name,)


def stream_key(task: str, *parts) -> bytes:
    prefix = NAMESPACES.get(task, (task,))
    return "\x1f".join((*prefix, *map(str, parts))).encode()


def rng_for(root_seed: int, variant: str, corruption: str, severity: int, image_id: str,
            task: str = "imagenet-c") -> np.random.Generator:
    """The generator of one output: ``task``'s stream for (variant, name, level, image id).

    Parameters
    ----------
    root_seed : int
        The run's root seed (``seed`` in a run config).
    variant, corruption : str
        The variant and the kernel's name (a corruption, or an ImageNet-P sequence kind).
    severity : int
        The severity (ImageNet-C) or 1 (ImageNet-P).
    image_id : str
        The source image's id (its file stem).
    task : str
        The task's namespace, so that two tasks never share a stream.

    Returns
    -------
    numpy.random.Generator
        ``default_rng(SeedSequence([root_seed, *w]))`` where ``w`` are the eight little-endian
        32-bit words of sha256(``stream_key(task, variant, corruption, severity, image_id)``).
    """
    key = stream_key(task, variant, corruption, int(severity), image_id)
    words = np.frombuffer(hashlib.sha256(key).digest(), dtype="<u4")
    return np.random.default_rng(np.random.SeedSequence([int(root_seed), *map(int, words)]))
