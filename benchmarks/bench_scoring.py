"""Scoring throughput: our data path and loop against a naive loop shaped like the original
ImageNet-C/test.py (folder dataset, PIL decode, per-image float tensors, default DataLoader).

    python benchmarks/bench_scoring.py [--images 512] [--loop-images 256] [--passes 1] [--device auto]
                                       [--videos 8] [--fly-images 8] [--fly-p-images 2] [--only-p]
                                       [--rounds 3]

Builds 224 x 224 ImageNet-C-style data (one JPEG tree and one Zarr store holding the same
images), then prints images/s for (1) decode + preprocessing alone on one core and
(2) the whole scoring loop with a ResNet-18-sized model built without weights. On a GPU,
use more images and --passes (the loop reads its images that many times, as one run over
that many cells would) so that starting the decoding processes does not dominate.

ImageNet-P (``--videos``): MP4s of real photos' rotate and gaussian_noise sequences, encoded
with the originals' settings; frames/s of the data path per core (CPU seconds, all threads
counted) against a naive path shaped like ImageNet-P/test.py (``VideoFolder``: OpenCV
``VideoCapture``, PIL per frame, ToTensor + Normalize, default DataLoader) and against FFmpeg's
H.264 decoder alone (what every path pays: the ratio's ceiling), per kind and together, best of
``--rounds`` interleaved rounds; and the whole loop
with the ResNet-18-sized model against test.py's loop (per-frame ``rankdata``, metrics after).

On the fly (``--fly-images``, ``--fly-p-images``): the benchmark produced in the loader, per
core, against generating it and scoring the materialised files; the model alone on the device
and how many loader cores keep it busy; core-hours for ImageNet's 50,000 validation images.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline.scoring import Normaliser, batches, evaluate, load_scoring_config, open_data, optimise, pick_device  # noqa: E402

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
WNIDS = ("n01440764", "n02123045", "n07920052", "n04008634")
TARGET_DATA_RATE, TARGET_LOOP_RATIO = 1000.0, 1.5
TARGET_P_DATA_RATIO = 3.0


# ---------------------------------------------------------------- a ResNet-18, without torchvision

class Block(torch.nn.Module):
    def __init__(self, inputs, outputs, stride):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(outputs)
        self.conv2 = torch.nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(outputs)
        self.shortcut = (torch.nn.Sequential(torch.nn.Conv2d(inputs, outputs, 1, stride, bias=False),
                                             torch.nn.BatchNorm2d(outputs))
                         if stride != 1 or inputs != outputs else torch.nn.Identity())

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def resnet18(num_classes: int = 1000) -> torch.nn.Module:
    layers = [torch.nn.Conv2d(3, 64, 7, 2, 3, bias=False), torch.nn.BatchNorm2d(64), torch.nn.ReLU(),
              torch.nn.MaxPool2d(3, 2, 1)]
    inputs = 64
    for outputs, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [Block(inputs, outputs, stride), Block(outputs, outputs, 1)]
        inputs = outputs
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(512, num_classes)]
    return torch.nn.Sequential(*layers).eval()


# ---------------------------------------------------------------- data

def build_data(root: Path, count: int) -> tuple[Path, Path]:
    import skimage.data

    from pipeline.formats.zarr_store import from_arrays
    from pipeline.readers import Item, imagenet_wnids
    photos = [np.asarray(getattr(skimage.data, n)()) for n in ("astronaut", "chelsea", "coffee", "rocket")]
    images, items = [], []
    for index in range(count):
        photo = photos[index % 4]
        top, left = (index * 37) % (photo.shape[0] - 224), (index * 53) % (photo.shape[1] - 224)
        image = np.ascontiguousarray(photo[top:top + 224, left:left + 224])
        wnid = WNIDS[index % 4]
        path = root / "tree" / "fog" / "3" / wnid / f"ILSVRC2012_val_{index:08d}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path, quality=85, optimize=True)
        images.append(image)
        items.append(Item(str(index), path.name, wnid, imagenet_wnids().index(wnid), "file", str(path)))
    order = sorted(range(count), key=lambda i: (items[i].wnid, items[i].name))  # the tree's order
    items, images = tuple(items[i] for i in order), np.stack([images[i] for i in order])
    from_arrays(str(root / "store.zarr"), items, imagenet_wnids(), {("fog", 3): images}, codec="zstd")
    return root / "tree", root / "store.zarr"


# ---------------------------------------------------------------- the naive loop (test.py's shape)

class NaiveFolder(torch.utils.data.Dataset):
    """ImageFolder + CenterCrop(224) + ToTensor + Normalize, one image at a time, in PIL."""
    pattern = "*.JPEG"

    def __init__(self, root: Path):
        self.samples = [(str(p), WNIDS.index(p.parent.name)) for p in sorted(root.rglob(self.pattern))]
        self.mean = torch.tensor(MEAN).view(3, 1, 1)
        self.std = torch.tensor(STD).view(3, 1, 1)

    def __len__(self):
        return len(self.samples)

    def to_tensor(self, image: Image.Image) -> torch.Tensor:
        """torchvision's ToTensor then Normalize."""
        tensor = torch.from_numpy(np.asarray(image, np.float32) / 255.0).permute(2, 0, 1)
        return (tensor - self.mean) / self.std

    def __getitem__(self, index):
        path, label = self.samples[index]
        with open(path, "rb") as handle:
            image = Image.open(handle).convert("RGB")
        width, height = image.size
        left, top = int(round((width - 224) / 2.0)), int(round((height - 224) / 2.0))
        return self.to_tensor(image.crop((left, top, left + 224, top + 224))), label


def naive_loop(model, root: Path, device, workers: int, batch_size: int, passes: int = 1) -> int:
    dataset = torch.utils.data.ConcatDataset([NaiveFolder(root)] * passes)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                         num_workers=workers, pin_memory=device.type == "cuda")
    correct = 0
    with torch.no_grad():
        for data, target in loader:
            output = model(data.to(device))
            correct += int(output.argmax(1).cpu().eq(target).sum())
    return len(loader.dataset)


class _Quiet:
    """A progress display that shows nothing."""

    def update(self, count: int) -> None:
        pass


QUIET = _Quiet()


def on_the_fly(tmp: Path, count: int, device, batch_size: int) -> None:
    """ImageNet-C produced in the loader against scoring the generated JPEG tree of the same
    source images (all 19 corruptions x 5 severities, quality-85 JPEG round trip)."""
    import io

    from bench_pipeline import synthetic_validation_set

    from corruptions.runtime import producer_process
    from pipeline.engine import generate
    from pipeline.runconfig import load_run_config
    from pipeline.scoring.on_the_fly import OnTheFly
    workers = os.cpu_count() or 1
    source = synthetic_validation_set(tmp / "fly-val", count)
    config = load_run_config("imagenet-c", [{"source": str(source), "out": str(tmp / "fly-out"), "shard_size": 4,
                                             "outputs": {"formats": ["jpeg"]}, "cluster": {"workers": workers}}])
    generate(config, stream=io.StringIO())
    fly = OnTheFly(load_run_config("imagenet-c", [{"source": str(source)}]), None)
    cells = fly.cells()
    settings = load_scoring_config(None, {"device": device.type, "batch_size": batch_size, "workers": 0})
    produced = fly.produced_batches(cells, settings)
    producer_process()  # as in each loader worker
    torch.set_num_threads(1)
    produced[0]  # numba and tables compiled before timing
    per_core = cpu_rate(lambda: sum(len(produced[i][1]) for i in range(count)))
    print(f"on the fly: {count} ImageNet-sized source images x {len(cells)} corrupted images each")
    print(f"  produced in the loader, per CPU second (decode, kernels, JPEG encode + decode): {per_core:7.0f} images/s "
          f"(target >= 400)")
    torch.set_num_threads(workers)
    model = resnet18().to(device).to(memory_format=torch.channels_last)
    settings = load_scoring_config(None, {"device": device.type, "batch_size": batch_size, "workers": workers})
    normalise = Normaliser(settings, device)
    model = optimise(model, normalise(torch.zeros(2, 224, 224, 3, dtype=torch.uint8)))[0]
    alone = model_rate(model, normalise, device, batch_size)
    print(f"  the model alone on {device}: {alone:.0f} images/s; loader cores to keep it busy: {alone / per_core:.1f}")
    tree = open_data(tmp / "fly-out", None)
    total = count * len(cells)
    loop = {"materialised JPEG tree": rate(lambda: evaluate(model, tree, cells, settings, device, normalise, QUIET),
                                           total),
            "on the fly": rate(lambda: evaluate(model, fly, cells, settings, device, normalise, QUIET), total)}
    print(f"  whole loop, ResNet-18-sized model (compiled, channels_last), {workers} loader workers:")
    for name, value in loop.items():
        print(f"    {name:<28} {value:8.1f} images/s")


def model_rate(model, normalise, device, batch_size: int, size: int = 224, repeats: int = 4) -> float:
    """Images/s of the model alone on ``device`` (uint8 batches already there): what the
    loader must produce to keep it busy."""
    batch = torch.zeros(batch_size, size, size, 3, dtype=torch.uint8, device=device)
    with torch.inference_mode():
        model(normalise(batch))
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            model(normalise(batch))
        if device.type == "cuda":
            torch.cuda.synchronize()
    return batch_size * repeats / (time.perf_counter() - start)


VALIDATION_IMAGES = 50_000  # ImageNet's validation set: what the cost lines extrapolate to


def on_the_fly_p(tmp: Path, count: int, device, batch_size: int) -> None:
    """ImageNet-P produced in the loader (all 20 sequence kinds of each source image; lossless,
    and with the MP4 round trip at the originals' x264 settings) against generating it and
    scoring the materialised MP4 tree and Zarr store of the same source images."""
    import io

    from bench_pipeline import synthetic_validation_set

    from corruptions.runtime import producer_process
    from pipeline.engine import generate
    from pipeline.runconfig import load_run_config
    from pipeline.scoring.on_the_fly import OnTheFlySequences
    from pipeline.scoring.sequences import evaluate_sequences, video_table
    workers = os.cpu_count() or 1
    source = synthetic_validation_set(tmp / "flyp-val", count)
    run = load_run_config("imagenet-p", [{"source": str(source), "out": str(tmp / "flyp-out"), "shard_size": 1,
                                          "cluster": {"workers": workers}}])
    started = time.perf_counter()
    generate(run, stream=io.StringIO())
    generating = (time.perf_counter() - started) * workers / count  # core-seconds per source image
    config = load_run_config("imagenet-p", [{"source": str(source)}])
    lossless, coded = OnTheFlySequences(config, None), OnTheFlySequences(config, None, mp4_round_trip=True)
    coded.prepare()
    producer_process()  # as in each loader worker
    torch.set_num_threads(1)
    lossless.load("rotate", 0)  # numba compiled before timing
    frames = sum(len(lossless.load(kind, 0)) for kind in lossless.kinds())
    per_image = {}
    for name, reader in (("lossless frames", lossless), ("MP4 round trip (x264 veryslow)", coded)):
        start = time.process_time()
        for index in range(count):
            for kind in reader.kinds():
                reader.load(kind, index)
        per_image[name] = (time.process_time() - start) / count
    print(f"ImageNet-P on the fly: {count} ImageNet-sized source images x {len(lossless.kinds())} sequences "
          f"({frames} frames) each")
    print("  produced in the loader, one core (decode, stages, kernels[, x264 encode + decode]):")
    for name, seconds in per_image.items():
        print(f"    {name:<34} {seconds:7.2f} s per source image  {frames / seconds:6.0f} frames/s")
    print(f"  generating (MP4 veryslow + Zarr, {workers} workers): {generating:.2f} core-s per source image")
    torch.set_num_threads(workers)
    settings = load_scoring_config(None, {"device": device.type, "batch_size": batch_size, "workers": workers})
    normalise = Normaliser(settings, device)
    model = optimise(resnet18().to(device).to(memory_format=torch.channels_last),
                     normalise(torch.zeros(2, 224, 224, 3, dtype=torch.uint8)))[0]
    alone = model_rate(model, normalise, device, batch_size)
    print(f"  the model alone on {device}: {alone:.0f} frames/s; loader cores to keep it busy: "
          + ", ".join(f"{name.split(' (')[0]} {alone * seconds / frames:.1f}" for name, seconds in per_image.items()))
    total = count * frames
    loop = {}
    for name, reader in (("materialised MP4 tree", open_data(tmp / "flyp-out", None)),
                         ("materialised Zarr store", open_data(tmp / "flyp-out" / "imagenet-p.zarr", None)),
                         ("on the fly, lossless", lossless), ("on the fly, MP4 round trip", coded)):
        table = video_table(reader)
        loop[name] = rate(lambda: evaluate_sequences(model, reader, table, settings, device, normalise, QUIET), total)
    print(f"  whole loop, ResNet-18-sized model (compiled, channels_last), {workers} loader workers:")
    for name, value in loop.items():
        print(f"    {name:<34} {value:8.1f} frames/s")
    hours = VALIDATION_IMAGES / 3600
    print(f"  cost for {VALIDATION_IMAGES:,} source images, core-hours: generate once "
          f"{generating * hours:,.0f} (then decode per model); on the fly per model: "
          + ", ".join(f"{name.split(' (')[0]} {seconds * hours:,.0f}" for name, seconds in per_image.items()))


# ---------------------------------------------------------------- ImageNet-P

def build_videos(root: Path, count: int) -> Path:
    """``root/<kind>/<wnid>/<name>.mp4``: rotate and gaussian_noise sequences of real photos
    (224 px), encoded with the originals' x264 settings by our writer."""
    import skimage.data

    from perturbations import family, perturb
    from pipeline.formats.mp4_tree import Encoding, encode
    photos = [np.asarray(getattr(skimage.data, n)()) for n in ("astronaut", "chelsea", "coffee", "rocket")]
    for kind in ("rotate", "gaussian_noise"):
        settings = Encoding(crf=None, tune="grain") if family(kind) == "noise" else Encoding()
        for index in range(count // 2):
            frames = perturb(photos[index % 4], kind, np.random.default_rng(index), "imagenet")
            path = root / kind / WNIDS[index % 4] / f"ILSVRC2012_val_{index:08d}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode(frames, settings))
    return root


class NaiveVideoFolder(NaiveFolder):
    """ImageNet-P/test.py's ``VideoFolder``: OpenCV reads each frame, BGR -> RGB, PIL image,
    ToTensor + Normalize per frame, ``torch.cat`` per video."""
    pattern = "*.mp4"

    def __getitem__(self, index):
        import cv2
        path, label = self.samples[index]
        capture = cv2.VideoCapture(path)
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(self.to_tensor(Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))).unsqueeze(0))
        capture.release()
        return torch.cat(frames, 0), label


def naive_video_loop(model, root: Path, device, workers: int, passes: int = 1) -> int:
    """test.py's loop: 5 videos a batch (its ResNet-18 batch), argmax and a scipy ``rankdata``
    per frame, kept for every video; FP and top-5 distance computed after."""
    from scipy.stats import rankdata
    dataset = torch.utils.data.ConcatDataset([NaiveVideoFolder(root)] * passes)
    loader = torch.utils.data.DataLoader(dataset, batch_size=5, shuffle=False, num_workers=workers,
                                         pin_memory=device.type == "cuda")
    predictions, ranks = [], []
    with torch.no_grad():
        for data, _ in loader:
            videos = data.size(0)
            output = model(data.view(-1, 3, 224, 224).to(device))
            for video in output.view(videos, -1, 1000):
                predictions.append(video.argmax(1).cpu().numpy())
                ranks.append([np.uint16(rankdata(-frame, method="ordinal")) for frame in video.cpu().numpy()])
    cumulative = np.cumsum([0] + [1] * 5 + [0] * 994)
    flips, distances = [], []
    for video_predictions, video_ranks in zip(predictions, ranks):
        flips.append(np.mean(video_predictions[1:] != video_predictions[:-1]))
        video_distances = []
        for first, second in zip(video_ranks[:-1], video_ranks[1:]):
            sigma = second[np.argsort(first)]
            video_distances.append(np.sum(np.abs(cumulative[:5] - cumulative[sigma - 1][:5])))
        distances.append(np.mean(video_distances))
    return sum(len(p) for p in predictions)


def cpu_rate(function) -> float:
    """Frames per CPU second of this process (every thread counted): a per-core rate."""
    start = time.process_time()
    frames = function()
    return frames / (time.process_time() - start)


def decoder_alone(paths) -> int:
    """FFmpeg's H.264 decoder and nothing else (frames left in YUV): what any path that reads
    these MP4s pays, a ceiling for the data path's ratio."""
    from pipeline.formats.mp4_tree import video_stream
    frames = 0
    for path in paths:
        with video_stream(str(path)) as (container, stream):
            frames += sum(1 for _ in container.decode(stream))
    return frames


def imagenet_p(tmp: Path, count: int, device, passes: int, rounds: int) -> None:
    import cv2

    from pipeline.formats import open_data as open_any
    from pipeline.scoring.sequences import Video, _chunks, _VideoBatches, evaluate_sequences
    root = build_videos(tmp / "videos", count)
    reader = open_any(root, None)
    reader.prepare()
    table = [Video(kind, i, label, name) for kind in reader.kinds()
             for i, (name, label) in enumerate(zip(reader.videos(kind).names, reader.videos(kind).labels))]
    frames = len(table) * 31
    print(f"ImageNet-P: {len(table)} videos of 224 px (rotate, gaussian_noise; x264 as the originals), "
          f"{frames} frames; device {device}")
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    paths = {"rotate + gaussian_noise": (table, root)}
    paths.update({kind: ([v for v in table if v.kind == kind], root / kind) for kind in reader.kinds()})
    best: dict[str, dict[str, float]] = {}
    for _ in range(rounds):  # interleaved rounds, each path's best: this machine's speed drifts
        for subset, (videos, folder) in paths.items():
            ours = _VideoBatches(reader, videos, _chunks(reader, videos, 128), 128)
            naive = torch.utils.data.DataLoader(NaiveVideoFolder(folder), batch_size=5, shuffle=False,
                                                num_workers=0)
            ours[0], naive.dataset[0]  # warm
            measured = {
                "ours (PyAV, uint8 batches)": cpu_rate(
                    lambda: sum(int(g[1].sum()) for i in range(len(ours)) for g in ours[i][0])),
                "naive (VideoFolder shape)": cpu_rate(lambda: sum(d.shape[0] * d.shape[1] for d, _ in naive)),
                "H.264 decoder alone (ceiling)": cpu_rate(lambda: decoder_alone(v.name for v in videos)),
            }
            for name, value in measured.items():
                cell = best.setdefault(subset, {})
                cell[name] = max(cell.get(name, 0.0), value)
    print(f"  data path, frames per CPU second (one core's worth), best of {rounds} interleaved rounds:")
    for subset, measured in best.items():
        base = measured["naive (VideoFolder shape)"]
        print(f"   {subset}:")
        for name, value in measured.items():
            print(f"    {name:<34} {value:8.0f} frames/s  {value / base:4.2f}x")
    print(f"  target: data path >= {TARGET_P_DATA_RATIO}x the naive one per core")
    workers = os.cpu_count() or 1
    torch.set_num_threads(workers)
    model = resnet18().to(device)
    settings = load_scoring_config(None, {"device": device.type, "batch_size": 128, "workers": workers})
    normalise = Normaliser(settings, device)
    fast = optimise(model.to(memory_format=torch.channels_last), normalise(torch.zeros(2, 224, 224, 3, dtype=torch.uint8)))[0]
    looped = table * passes
    evaluate_sequences(fast, reader, table[:2], settings.model_copy(update={"workers": 0}), device, normalise, QUIET)  # warm
    ours_loop = rate(lambda: evaluate_sequences(fast, reader, looped, settings, device, normalise, QUIET),
                     len(looped) * 31)
    model = model.to(memory_format=torch.contiguous_format)
    naive_video_loop(model, root, device, 0)  # warm
    naive_rate = rate(lambda: naive_video_loop(model, root, device, workers, passes), len(looped) * 31)
    print(f"  whole loop, ResNet-18-sized model, {len(looped)} videos, {workers} loader workers:")
    print(f"    {'naive loop (test.py shape), fp32':<44} {naive_rate:8.1f} frames/s")
    print(f"    {'ours (compiled, channels_last)':<44} {ours_loop:8.1f} frames/s  {ours_loop / naive_rate:4.2f}x "
          f"(target >= {TARGET_LOOP_RATIO}x)")


def rate(function, count: int) -> float:
    start = time.perf_counter()
    function()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--loop-images", type=int, default=256, help="images for the whole-loop comparison")
    parser.add_argument("--passes", type=int, default=1, help="times the loop reads its images")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--fly-images", type=int, default=8, help="source images for the on-the-fly lines (0: none)")
    parser.add_argument("--videos", type=int, default=8, help="ImageNet-P videos for its lines (0: none)")
    parser.add_argument("--fly-p-images", type=int, default=2, help="source images for the ImageNet-P on-the-fly "
                        "lines (0: none)")
    parser.add_argument("--only-p", action="store_true", help="only the ImageNet-P lines")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the ImageNet-P data-path "
                        "lines (each path's best is printed)")
    args = parser.parse_args()
    device = pick_device(args.device)
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        if args.videos:
            imagenet_p(Path(tmp), args.videos, device, args.passes, args.rounds)
        if args.fly_p_images:
            on_the_fly_p(Path(tmp), args.fly_p_images, device, args.batch_size)
        if args.only_p:
            return
        tree, store = build_data(Path(tmp), args.images)
        config = load_scoring_config(None, {"device": device.type, "batch_size": args.batch_size, "workers": 0})
        cell = [("fog", 3)]
        print(f"{args.images} images of 224 x 224; device {device}; {workers} cores; torch {torch.__version__}")
        print("decode + preprocessing alone, one core:")
        torch.set_num_threads(1)
        jpeg = open_data(tree, None)
        zarr_data = open_data(store, None)
        naive = NaiveFolder(tree / "fog" / "3")
        encoded = [np.fromfile(path, np.uint8) for path in sorted((tree / "fog" / "3").rglob("*.JPEG"))]
        import cv2
        cv2.setNumThreads(1)
        results = {
            "JPEG decode alone (libjpeg-turbo)": rate(lambda: [cv2.imdecode(e, cv2.IMREAD_COLOR_RGB) for e in encoded],
                                                     args.images),
            "ours, JPEG tree": rate(lambda: [b for b in batches(jpeg, cell, config, False)], args.images),
            "ours, Zarr store": rate(lambda: [b for b in batches(zarr_data, cell, config, False)], args.images),
            "naive (PIL, per-image tensors)": rate(lambda: [naive[i] for i in range(len(naive))], args.images),
        }
        for name, value in results.items():
            flag = "" if "ours" not in name or value >= TARGET_DATA_RATE else f"  (< {TARGET_DATA_RATE:.0f})"
            print(f"  {name:<36} {value:8.0f} images/s{flag}")
        torch.set_num_threads(workers)

        loop_cells, looped = cell * args.passes, args.loop_images * args.passes
        print(f"whole scoring loop, ResNet-18-sized model (random weights), {looped} images, "
              f"batch {args.batch_size}, {workers} decoding workers:")
        small_tree, small_store = build_data(Path(tmp) / "loop", args.loop_images)
        model = resnet18().to(device)
        loop = {}
        for label, amp, channels_last, optimize in (
                ("fp32, defaults (eager: the model's own logits)", None, False, False),
                ("fp32, opt-in fast path (compiled, channels_last)", None, True, True),
                ("bf16 autocast, channels_last", "bf16", True, False)):
            settings = load_scoring_config(None, {"device": device.type, "batch_size": args.batch_size,
                                                  "workers": workers, "amp": amp, "channels_last": channels_last})
            net = model.to(memory_format=torch.channels_last) if channels_last else model
            normalise = Normaliser(settings, device)
            if optimize:
                net = optimise(net, normalise(torch.zeros(2, 224, 224, 3, dtype=torch.uint8)))[0]
            for name, data in (("JPEG tree", open_data(small_tree, None)), ("Zarr", open_data(small_store, None))):
                evaluate(net, data, cell, settings.model_copy(update={"workers": 0}), device, normalise, QUIET)  # warm
                loop[f"ours, {name}, {label}"] = rate(
                    lambda: evaluate(net, data, loop_cells, settings, device, normalise, QUIET), looped)
        model = model.to(memory_format=torch.contiguous_format)
        naive_loop(model, small_tree / "fog" / "3", device, 0, args.batch_size)  # warm
        baseline = rate(lambda: naive_loop(model, small_tree / "fog" / "3", device, workers, args.batch_size,
                                           args.passes), looped)
        print(f"  {'naive loop (test.py shape), fp32':<68} {baseline:8.1f} images/s")
        for name, value in loop.items():
            print(f"  {name:<68} {value:8.1f} images/s  {value / baseline:4.2f}x")
        print(f"targets: data path >= {TARGET_DATA_RATE:.0f} images/s per core (224 px); "
              f"whole loop >= {TARGET_LOOP_RATIO}x the naive loop on the same device")
        if args.fly_images:
            on_the_fly(Path(tmp), args.fly_images, device, args.batch_size)


if __name__ == "__main__":
    main()
