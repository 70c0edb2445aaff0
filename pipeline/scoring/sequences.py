"""Scoring ImageNet-P: a model's top-1 predictions and rankings over every frame of every
video, reduced per video as they arrive to the flip probability (FP), the unnormalised top-5
distance (uT5D) and the Zipf distance, as ``ImageNet-P/test.py`` defines them; then FR, T5D,
mFR and mT5D (``metrics.summarize_p``).

- Pairs: noise sequences, every frame against the first (their difficulty is their folder:
  ``gaussian_noise_2`` ...); temporal sequences, each frame against the one ``d`` frames
  before, over every starting offset, for d = 1, 2, 3 (test.py's ``--difficulty``), all from
  the same predictions.
- Frames go to the model at their stored size, as test.py fed them (no resize, no crop);
  videos of other frame sizes (ImageNet 64x64 and Tiny ImageNet motion blur, shorter side 64)
  are batched apart, which is test.py with one video per batch.
- Memory is flat in the dataset's size: rankings live on the device for one batch; per video
  only its frame count, size, first-frame prediction and the three distances are kept.
- Bad videos (undecodable, frames changing size, a frame count other than the kind's) are
  named and left out; the rest is scored.
"""
from __future__ import annotations

import collections
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perturbations import family, split_kind

from .. import metrics
from ..formats import DataError, SequenceReader
from ..progress import progress
from .config import load_baseline, wnid_class_folders
from .errors import ScoreError
from .evaluate import check_logits, run_model
from .loader import before_fork, worker_settings

STEPS = (1, 2, 3)  # frame distances measured for temporal kinds (test.py's --difficulty)
MEASURES = ("fp", "ut5d", "zipf")
VIDEOS_PER_BATCH_FRAMES = 31  # the common frame count: batches hold batch_size // 31 videos


@dataclass(frozen=True)
class Video:
    kind: str
    index: int  # within its kind, as the reader counts
    label: int
    name: str


# ------------------------------------------------------------------ metrics on the device

def video_metrics(logits, noise: bool, steps=STEPS) -> tuple[dict, object]:
    """Per video of ``logits`` (V x T x C): {step: (flips, top-5 distance, Zipf distance)},
    each a float64 tensor (V,) averaged over the video's pairs, and the top-1 class of frame 0.

    Rankings are ordinal (ties by class order, as test.py's ``rankdata(-scores, 'ordinal')``);
    top-1 is the first maximum (``argmax``). With sigma the rank under x' of the class ranked i
    under x: top-5 distance = sum_{i<=5} |i - min(sigma(i), 6)|, Zipf = sum_i |1/i - 1/sigma(i)| / i.
    """
    import torch
    videos, frames, classes = logits.shape
    scores = logits if logits.dtype == torch.float64 else logits.float()  # half precision ranked as float32
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(-1, order, torch.arange(1, classes + 1, device=logits.device).expand_as(order))
    top1 = order[..., 0]
    weights = 1.0 / torch.arange(1, classes + 1, dtype=torch.float64, device=logits.device)
    top = torch.arange(1, min(5, classes) + 1, device=logits.device)
    out = {}
    for step in ((1,) if noise else steps):
        earlier, later = metrics.frame_pairs(frames, noise, step)
        if len(earlier) == 0:
            continue
        earlier, later = torch.as_tensor(earlier, device=logits.device), torch.as_tensor(later, device=logits.device)
        flips = (top1[:, earlier] != top1[:, later]).double().mean(1)
        sigma = torch.gather(ranks[:, later], -1, order[:, earlier])  # rank under x' of the class ranked i under x
        top5 = (top - sigma[..., :len(top)].clamp(max=6)).abs().sum(-1).double().mean(1)
        zipf = (weights * (weights - weights[sigma - 1]).abs()).sum(-1).mean(1)
        out[step] = (flips, top5, zipf)
    return out, top1[:, 0]


# ------------------------------------------------------------------ batches of videos

class _VideoBatches:
    """Items are a few videos (of one kind, or one source image's of every kind), loaded (MP4:
    decoded) in a worker process and returned as uint8 frame arrays of whole videos, one per
    family and frame size and at most ``batch_size`` frames each (one video where it is longer),
    with each video's frame count and id. Videos that cannot be read are named in the item's
    last element."""

    def __init__(self, reader: SequenceReader, table: list[Video], chunks: list[list[int]], batch_size: int):
        self.reader, self.table, self.chunks, self.batch_size = reader, table, chunks, batch_size

    def __len__(self):
        return len(self.chunks)

    def __getitem__(self, index):
        import torch
        groups: dict[tuple, list] = {}
        failed = []
        for video_id in self.chunks[index]:
            video = self.table[video_id]
            try:
                frames = self.reader.load(video.kind, video.index)
            except DataError as exc:
                failed.append((video_id, str(exc)))
                continue
            if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
                failed.append((video_id, f"{video.name}: frames of shape {frames.shape} and type {frames.dtype}, "
                                         "expected T x H x W x 3 uint8"))
                continue
            batches = groups.setdefault((family(video.kind), frames.shape[1:3]), [[]])
            if batches[-1] and sum(len(f) for _, f in batches[-1]) + len(frames) > self.batch_size:
                batches.append([])
            batches[-1].append((video_id, frames))
        out = [(torch.from_numpy(np.concatenate([f for _, f in members])),
                torch.tensor([len(f) for _, f in members], dtype=torch.int64),
                torch.tensor([v for v, _ in members], dtype=torch.int64))
               for batches in groups.values() for members in batches]
        return out, failed


def _chunks(reader: SequenceReader, table: list[Video], batch_size: int) -> list[list[int]]:
    """Which videos each loader item holds: a source image's videos of every kind where the
    reader produces them from the source (``by_source``), else runs of one kind's videos."""
    if reader.by_source:
        by_index: dict[int, list[int]] = {}
        for video_id, video in enumerate(table):
            by_index.setdefault(video.index, []).append(video_id)
        return list(by_index.values())
    per_batch = max(1, batch_size // VIDEOS_PER_BATCH_FRAMES)
    chunks, current = [], []
    for video_id, video in enumerate(table):
        if current and (len(current) == per_batch or table[current[0]].kind != video.kind):
            chunks.append(current)
            current = []
        current.append(video_id)
    return chunks + ([current] if current else [])


def _loader(reader: SequenceReader, table: list[Video], chunks: list[list[int]], config, pin: bool):
    import torch
    workers = config.workers if config.workers is not None else (os.cpu_count() or 1)
    if not reader.in_workers and not pin:
        workers = 0  # stored arrays on a CPU: reading costs next to nothing, the model needs the cores
    workers = min(workers, len(chunks))
    reader.prepare()
    before_fork(workers)
    return torch.utils.data.DataLoader(
        _VideoBatches(reader, table, chunks, config.batch_size), batch_size=None, num_workers=workers,
        pin_memory=pin, shuffle=False,
        prefetch_factor=4 if workers else None, worker_init_fn=worker_settings if workers else None,
        multiprocessing_context="fork" if workers and sys.platform == "linux" else None)


# ------------------------------------------------------------------ the loop

class _PerVideo:
    """What is kept of each video: frame count and size, frame 0's top-1, and per step the
    three per-video means. O(videos), whatever the frames."""

    def __init__(self, n: int):
        self.frames = np.zeros(n, np.int64)
        self.size = np.zeros((n, 2), np.int64)
        self.first = np.full(n, -1, np.int64)
        self.values = np.full((n, len(STEPS), len(MEASURES)), np.nan)
        self.failed: dict[int, str] = {}


def evaluate_sequences(model, reader: SequenceReader, table: list[Video], config, device, normalise,
                       bar) -> _PerVideo:
    """Run the model over every video of ``table`` (``evaluate.run_model``, reducing each batch
    to its videos' measures on the device); per-video results."""
    import torch
    kept = _PerVideo(len(table))

    def reduce(logits, context):
        frames, lengths, ids = context
        entries = []
        lengths_list, ids_list = lengths.tolist(), ids.tolist()
        noise = family(table[ids_list[0]].kind) == "noise"
        offsets = np.concatenate([[0], np.cumsum(lengths_list)])
        by_length = collections.defaultdict(list)
        for position, length in enumerate(lengths_list):
            by_length[length].append(position)
        for length, positions in by_length.items():
            stacked = torch.stack([logits[offsets[p]:offsets[p] + length] for p in positions])
            per_step, first = video_metrics(stacked, noise)
            per_step = {s: [v.to("cpu", non_blocking=True) for v in values] for s, values in per_step.items()}
            entries.append(([ids_list[p] for p in positions], tuple(frames.shape[1:3]), [length] * len(positions),
                            per_step, first.to("cpu", non_blocking=True)))
        return entries

    def account(entries, context):
        for ids, size, lengths, per_step, first in entries:
            kept.frames[ids] = lengths
            kept.size[ids] = size
            kept.first[ids] = first.numpy()
            for step, values in per_step.items():
                kept.values[ids, STEPS.index(step)] = torch.stack(values, 1).numpy()
            bar.update(len(ids))

    def inputs():
        for groups, failed in _loader(reader, table, _chunks(reader, table, config.batch_size), config,
                                      device.type == "cuda"):
            for video_id, reason in failed:
                kept.failed[int(video_id)] = reason
            for frames, lengths, ids in groups:
                yield frames, (frames, lengths, ids)

    run_model(model, inputs(), config, device, normalise, reduce, account,
              lambda context: f"(videos {table[int(context[2][0])].name} ...)")
    return kept


# ------------------------------------------------------------------ expectations and results

def expected_frames(kind: str, sizes: collections.Counter) -> int | None:
    """The frame count a kind's videos must have: the shipped variants' count for the frame size
    found (the shorter side for ImageNet 64x64 / Tiny motion blur); where the size names no
    variant, the count most videos have (None: decide by majority)."""
    from corruptions.config import VARIANTS, load_variant
    from perturbations import load_sequences
    if not sizes:
        return None
    (height, width), _ = sizes.most_common(1)[0]
    counts = {load_sequences(v).frames(kind) for v in VARIANTS if tuple(load_variant(v).size) == (height, width)}
    if not counts:
        side = min(height, width)
        counts = {load_sequences(v).frames(kind) for v in VARIANTS if tuple(load_variant(v).size) == (side, side)}
    return counts.pop() if len(counts) == 1 else None


def summarise(kept: _PerVideo, table: list[Video], kinds: list[str]) -> tuple[dict, dict, list[str]]:
    """(per perturbation and difficulty: fp, ut5d, zipf, videos, kind; per kind: videos,
    frames, frame sizes, first-frame error; videos left out with why)."""
    measured: dict[str, dict[str, dict]] = {}
    per_kind: dict[str, dict] = {}
    left_out = [kept.failed[i] + "; left out" for i in sorted(kept.failed)]
    ids_of = collections.defaultdict(list)
    for video_id, video in enumerate(table):
        if video_id not in kept.failed:
            ids_of[video.kind].append(video_id)
    for kind in kinds:
        ids = np.asarray(ids_of.get(kind, []), np.int64)
        sizes = collections.Counter(tuple(map(int, s)) for s in kept.size[ids])
        expected = expected_frames(kind, sizes)
        if expected is None and len(ids):
            expected = collections.Counter(kept.frames[ids].tolist()).most_common(1)[0][0]
        wrong = ids[kept.frames[ids] != expected] if len(ids) else ids
        left_out += [f"{table[i].name}: {kept.frames[i]} frames, but {kind} videos have {expected}; left out"
                     for i in wrong]
        good = ids[kept.frames[ids] == expected] if len(ids) else ids
        if not len(good):
            left_out.append(f"{kind}: no video could be scored; left out")
            continue
        labels = np.asarray([table[i].label for i in good])
        per_kind[kind] = {"videos": int(len(good)), "frames": int(expected),
                          "frame_sizes": {f"{w}x{h}": n for (h, w), n in sorted(sizes.items())},
                          "first_frame_error": float(np.mean(kept.first[good] != labels))}
        perturbation, difficulty = split_kind(kind)
        noise = family(kind) == "noise"
        for step_index, step in enumerate(STEPS):
            if noise and step != 1:
                continue
            values = kept.values[good, step_index]
            if np.isnan(values).any():
                continue  # too few frames for pairs this far apart
            cell = {m: float(np.mean(values[:, k])) for k, m in enumerate(MEASURES)}
            cell.update(videos=int(len(good)), kind=kind)
            measured.setdefault(perturbation, {})[str(difficulty if noise else step)] = cell
    return measured, per_kind, left_out


def clean_error_of(per_kind: dict) -> float | None:
    """The error on the clean crops: frame 0 of the noise sequences is the unperturbed image
    (the mean over the noise kinds present at difficulty 1, whose first frames all are)."""
    firsts = [cell["first_frame_error"] for kind, cell in per_kind.items()
              if family(kind) == "noise" and split_kind(kind)[1] == 1]
    return float(np.mean(firsts)) if firsts else None


# ------------------------------------------------------------------ the command

def video_table(data: SequenceReader) -> list[Video]:
    """Every video of every kind present, kind by kind in the reader's order."""
    return [Video(kind, i, label, name) for kind in data.kinds()
            for i, (name, label) in enumerate(zip(data.videos(kind).names, data.videos(kind).labels))]


def _first_video(reader: SequenceReader, table: list[Video]) -> np.ndarray:
    problems = []
    for video in table[:50]:
        try:
            return reader.load(video.kind, video.index)
        except DataError as exc:
            problems.append(str(exc))
    raise DataError(f"no readable video among the first {min(len(table), 50)}: {problems[0] if problems else ''}")


def check_sequence_model(model, frames: np.ndarray, normalise):
    """``evaluate.check_logits`` on a video's first two frames."""
    import torch
    return check_logits(model, torch.from_numpy(np.ascontiguousarray(frames[:2])), normalise, " frames")


def score_sequences(model, data: SequenceReader, data_path, config, device, normalise, classes,
                    reopen, stream=sys.stderr) -> tuple[dict, object]:
    """ImageNet-P results of ``model`` on ``data`` (without the model's description), and the
    model as run. ``reopen(classes)`` opens the data again with a class list."""
    from ..readers import imagenet_wnids
    from .models import EAGER, optimise
    kinds = data.kinds()
    if not kinds:
        raise DataError(f"{data_path}: no ImageNet-P sequences found" + (f" ({data.problems[0]})" if data.problems
                                                                          else ""))
    table = video_table(data)
    num_classes, example = check_sequence_model(model, _first_video(data, table), normalise)
    inference = EAGER
    if config.optimize:
        model, inference = optimise(model, example, say=lambda line: print(line, file=stream, flush=True))
    if classes is None and data.classes is None and data.class_folders:
        if wnid_class_folders({Path(name).parent.name for name in data.videos(kinds[0]).names}, num_classes):
            data = reopen(list(imagenet_wnids()))
            table = video_table(data)
    labels = np.asarray([v.label for v in table])
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ScoreError(f"{data.kind}: labels outside the model's {num_classes} classes (min {int(labels.min())}, "
                         f"max {int(labels.max())})")
    baseline = load_baseline(config.baseline, num_classes, metrics.FlipBaseline)
    bar = progress(len(table), unit="videos", stream=stream)
    started = time.monotonic()
    kept = evaluate_sequences(model, data, table, config, device, normalise, bar)
    bar.close()
    seconds = time.monotonic() - started
    measured, per_kind, left_out = summarise(kept, table, kinds)
    left_out = list(data.problems) + left_out
    frames = int(kept.frames.sum())
    results = {
        "task": data.task,
        "data": {"path": str(Path(data_path).resolve()), "kind": data.kind, "sequences": per_kind,
                 "left_out": left_out},
        "device": str(device), "seconds": round(seconds, 3), "frames": frames,
        "frames_per_second": round(frames / max(seconds, 1e-9), 1),
        "clean_error": clean_error_of(per_kind),
        "first_frame_error": {k: c["first_frame_error"] for k, c in per_kind.items()},
        "perturbations": measured, **metrics.summarize_p(measured, baseline), "inference": inference,
    }
    return results, model
