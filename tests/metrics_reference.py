"""The paper's ImageNet-P quantities restated in plain numpy, as the tests' oracle for the
scorer's device code (``pipeline/scoring/sequences.py``): flip probability, the top-5 distance
d and the Zipf distance, over the frame pairs of ImageNet-P/test.py (``metrics.frame_pairs``)."""
from __future__ import annotations

import functools

import numpy as np

from pipeline.metrics import frame_pairs


def flip_probability(predictions: np.ndarray, noise: bool, difficulty: int = 1) -> float:
    """FP from top-1 predictions of shape (sequences, frames); each sequence weighs the same."""
    predictions = np.asarray(predictions)
    first, second = frame_pairs(predictions.shape[1], noise, difficulty)
    return float(np.mean(predictions[:, first] != predictions[:, second]))


@functools.lru_cache(maxsize=4)
def zipf_weights(n: int) -> np.ndarray:
    return 1.0 / np.arange(1, n + 1)


def ranking_distance(ranks_a: np.ndarray, ranks_b: np.ndarray, mode: str = "top5") -> np.ndarray:
    """d(pi(x), pi(x')) for batches: ``ranks_*[k, c]`` is the rank (1 = top) of class c.

    sigma(i) is the rank under x' of the class ranked i under x. ``top5``: the paper's d,
    which equals sum_{i<=5} |min(i, 6) - min(sigma(i), 6)|; ``zipf``: sum_i w_i |w_i - w_sigma(i)|
    with w_i = 1 / i.
    """
    ranks_a, ranks_b = np.atleast_2d(ranks_a), np.atleast_2d(ranks_b)
    order_a = np.argsort(ranks_a, axis=1)  # classes by their rank under x
    sigma = np.take_along_axis(ranks_b, order_a, axis=1)
    if mode == "top5":
        i = np.arange(1, 6)
        return np.abs(np.minimum(i, 6) - np.minimum(sigma[:, :5], 6)).sum(axis=1).astype(np.float64)
    if mode == "zipf":
        w = zipf_weights(ranks_a.shape[1])
        return (w * np.abs(w - w[sigma - 1])).sum(axis=1)
    raise ValueError(f"mode must be 'top5' or 'zipf', got {mode!r}")


def ranks_from_scores(scores: np.ndarray) -> np.ndarray:
    """Ordinal ranks (1 = highest score; ties by class order, like scipy's rankdata 'ordinal')."""
    scores = np.asarray(scores)
    order = np.argsort(-scores, axis=-1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, scores.shape[-1] + 1), axis=-1)
    return ranks


def top5_distance(ranks: np.ndarray, noise: bool, difficulty: int = 1, mode: str = "top5") -> float:
    """uT5D (or the Zipf distance) from ranks of shape (sequences, frames, classes)."""
    ranks = np.asarray(ranks)
    first, second = frame_pairs(ranks.shape[1], noise, difficulty)
    sequences, pairs = ranks.shape[0], len(first)
    a = ranks[:, first].reshape(sequences * pairs, -1)
    b = ranks[:, second].reshape(sequences * pairs, -1)
    return float(ranking_distance(a, b, mode).reshape(sequences, pairs).mean())
