"""One random generator per output image, derived from what identifies it.

The stream depends on (root seed, variant, corruption, severity, image id) only, so the
bytes written never depend on worker count, shard size, scheduling or retries.
"""
from __future__ import annotations

import hashlib

import numpy as np


def rng_for(root_seed: int, variant: str, corruption: str, severity: int, image_id: str) -> np.random.Generator:
    key = "\x1f".join((variant, corruption, str(int(severity)), str(image_id))).encode()
    words = np.frombuffer(hashlib.sha256(key).digest(), dtype="<u4")
    return np.random.default_rng(np.random.SeedSequence([int(root_seed), *map(int, words)]))
