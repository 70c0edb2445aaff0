"""One progress display for generation and scoring: tqdm, counting images, with a recent
rate (so start-up and resumed work do not distort the ETA)."""
from __future__ import annotations

import sys

from tqdm import tqdm


def progress(total: int, unit: str = "images", done: int = 0, stream=None, description: str = "") -> tqdm:
    """A bar of ``total`` ``unit`` with ``done`` already finished (not counted in the rate)."""
    return tqdm(total=total, initial=done, unit=f" {unit}", unit_scale=False, file=stream or sys.stderr,
                mininterval=1.0, smoothing=0.1, dynamic_ncols=True, desc=description or None,
                bar_format="{desc}{percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt}{unit} "
                           "[{elapsed}<{remaining}, {rate_fmt}]")


def exclude_wait(bar: tqdm) -> None:
    """Leave the time since the bar's last display out of its rate and ETA: called when workers
    come (back) after a wait for batch jobs, which says nothing about the speed of the work."""
    bar.last_print_t = bar._time()
    bar.last_print_n = bar.n
