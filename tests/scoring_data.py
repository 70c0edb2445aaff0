"""A model whose predictions are known in advance, and ImageNet-C data built around it.

The model reads a class index that the data hides in a flat 16 x 16 block at the top left
(red = 8 (c // 32) + 4, green = 8 (c % 32) + 4; flat blocks survive JPEG). To make a
corruption "destroy" an image, the fixture writes the code of another class there, so the
error of every cell is fixed by construction.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from corruptions import corruption_names

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
MODEL_SOURCE = '''
import torch


class CodeReader(torch.nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.num_classes = num_classes
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, x):
        pixels = (x * self.std + self.mean) * 255.0
        block = pixels[:, :, 4:12, 4:12].mean(dim=(2, 3))
        code = torch.floor(block[:, 0] / 8.0) * 32 + torch.floor(block[:, 1] / 8.0)
        index = code.clamp(0, self.num_classes - 1).long()
        return torch.nn.functional.one_hot(index, self.num_classes).float()


def imagenet():
    return CodeReader(1000)


def cifar():
    return CodeReader(10)


def bad_shape():
    class Flat(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(1, 2, 3))
    return Flat()


class Ranked(CodeReader):
    """Scores fall off with the distance after the code: the ranking is code, code + 1, ...
    (cyclically), so every top-5 distance follows from the codes alone."""

    def forward(self, x):
        index = super().forward(x).argmax(1)
        classes = torch.arange(self.num_classes, device=x.device)
        return -((classes.view(1, -1) - index.view(-1, 1)) % self.num_classes).float()


def ranked():
    return Ranked(1000)


def ranked_cifar():
    return Ranked(10)


def tiny_cnn():
    """Continuous, untied scores from fixed weights (no torch RNG): a full ranking per frame."""
    import numpy as np
    rng = np.random.default_rng(0)
    conv = torch.nn.Conv2d(3, 16, 5, stride=2)
    head = torch.nn.Linear(16, 1000)
    with torch.no_grad():
        for layer in (conv, head):
            layer.weight.copy_(torch.from_numpy(rng.normal(0, 0.3, layer.weight.shape).astype("float32")))
            layer.bias.copy_(torch.from_numpy(rng.normal(0, 0.1, layer.bias.shape).astype("float32")))
    return TopLeft(torch.nn.Sequential(conv, torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), head))


class TopLeft(CodeReader):
    """The code's class on top (so top-1 flips where the code changes), the other classes
    ranked by continuous features of the corner that holds the code. float64, so how frames
    are batched cannot reorder nearly equal scores."""

    def __init__(self, body):
        super().__init__(1000)
        self.body = body.double()

    def forward(self, x):
        return self.body(x[:, :, :20, :20].double()) + 100.0 * super().forward(x).double()


def three_classes():
    return CodeReader(3)


def not_finite():
    class Broken(CodeReader):
        def forward(self, x):
            out = super().forward(x)
            return out / (out.sum(dim=1, keepdim=True) - 1)  # 0 / 0 for every image
    return Broken(1000)
'''.replace("MEAN", repr(MEAN)).replace("STD", repr(STD))

WNIDS = ("n01440764", "n02123045", "n07920052")  # class indices 0, 281, 967
LABELS = (0, 281, 967)
IMAGES_PER_CLASS = 2


def write_model(folder: Path) -> Path:
    path = folder / "code_reader.py"
    path.write_text(MODEL_SOURCE)
    return path


def coded_image(label: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(40, 216, (size, size, 3), dtype=np.uint8)
    image[:16, :16] = (8 * (label // 32) + 4, 8 * (label % 32) + 4, 128)
    return image


def destroyed(name: str, severity: int, n: int) -> set[int]:
    """Which images a cell destroys: a different, known number for every cell."""
    k = (corruption_names("all").index(name) + severity) % (n + 1)
    return set(range(k))


def expected_errors(names, n) -> dict[str, dict[int, float]]:
    return {c: {s: len(destroyed(c, s, n)) / n for s in range(1, 6)} for c in names}


def cell_images(name, severity, labels, size):
    out = []
    for index, label in enumerate(labels):
        wrong = index in destroyed(name, severity, len(labels))
        out.append(coded_image((label + 1) % 1000 if wrong else label, size, seed=index * 97 + severity))
    return out


def jpeg_tree(root: Path, names) -> tuple[Path, Path]:
    labels = [LABELS[k] for k in range(len(WNIDS)) for _ in range(IMAGES_PER_CLASS)]
    wnids = [WNIDS[k] for k in range(len(WNIDS)) for _ in range(IMAGES_PER_CLASS)]
    for name in names:
        for severity in range(1, 6):
            for index, image in enumerate(cell_images(name, severity, labels, 224)):
                path = root / "c" / name / str(severity) / wnids[index] / f"ILSVRC2012_val_{index:08d}.JPEG"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(path, quality=85, optimize=True)
    clean = root / "clean"
    for index, label in enumerate(labels):
        # clean images at full size: the scorer resizes to 256 and crops 224 as test.py does;
        # one clean image carries a wrong code, so the clean error is 1 / 6
        code = (label + 1) % 1000 if index == 3 else label
        canvas = np.full((300, 256, 3), 90, np.uint8)
        canvas[38:262, 16:240] = coded_image(code, 224, index)  # where Resize(256) + CenterCrop(224) looks
        path = clean / wnids[index] / f"ILSVRC2012_val_{index:08d}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(canvas).save(path, quality=95)
    return root / "c", clean


def zarr_store(root: Path, names, codec: str = "zstd") -> Path:
    """The same cells written by the pipeline's own Zarr writer."""
    from pipeline.formats.zarr_store import from_arrays
    from pipeline.readers import Item, imagenet_wnids
    labels = [LABELS[k] for k in range(len(WNIDS)) for _ in range(IMAGES_PER_CLASS)]
    items = tuple(Item(str(i), f"{i}.JPEG", WNIDS[i // IMAGES_PER_CLASS], labels[i], "file", "") for i in range(6))
    cells = {(name, s): np.stack(cell_images(name, s, labels, 224)) for name in names for s in range(1, 6)}
    return Path(from_arrays(str(root / "test.zarr"), items, imagenet_wnids(), cells, shard_rows=4, codec=codec))


def cifar_folder(root: Path, names, n: int = 8) -> Path:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n)
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        rows = [np.stack(cell_images(name, s, labels, 32)) for s in range(1, 6)]
        np.save(root / f"{name}.npy", np.concatenate(rows))
    np.save(root / "labels.npy", np.tile(labels, 5))
    return root


# ------------------------------------------------------------------ ImageNet-P

def shift_points(kind_index: int, video: int, frames: int) -> list[int]:
    """The frames at which a video's code moves on by one class: two known points per video."""
    return sorted({(3 + 5 * video + kind_index) % (frames - 1) + 1, (11 + 7 * video + 2 * kind_index) % (frames - 1) + 1})


def video_codes(kind_index: int, video: int, label: int, frames: int, classes: int = 1000) -> np.ndarray:
    """Code of every frame: the label, plus one at each shift point reached (mod 3)."""
    points = shift_points(kind_index, video, frames)
    return np.asarray([(label + sum(t >= p for p in points) % 3) % classes for t in range(frames)])


def coded_frames(codes: np.ndarray, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    background = rng.integers(40, 216, (size, size, 3), dtype=np.uint8)
    frames = np.repeat(background[None], len(codes), axis=0)
    for t, code in enumerate(codes):
        frames[t, :16, :16] = (8 * (code // 32) + 4, 8 * (code % 32) + 4, 128)
    return frames


def sequence_data(kinds, n_videos: int, size: int, variant: str, classes: int = 1000, labels=None):
    """{kind: (N, T, size, size, 3) frames}, {kind: (N, T) codes}, labels: ``variant``'s frame counts."""
    from perturbations import ALL_KINDS, load_sequences
    sequences = load_sequences(variant)
    labels = list(labels if labels is not None else [LABELS[i % len(LABELS)] for i in range(n_videos)])
    frames, codes = {}, {}
    for kind in kinds:
        k = ALL_KINDS.index(kind)
        t = sequences.frames(kind)
        codes[kind] = np.stack([video_codes(k, v, labels[v], t, classes) for v in range(n_videos)])
        frames[kind] = np.stack([coded_frames(codes[kind][v], size, seed=100 * k + v) for v in range(n_videos)])
    return frames, codes, labels


def write_sequences(writer, frames: dict, labels, wnids=None) -> None:
    """``frames`` written through one of the pipeline's ImageNet-P writers, one key per kind."""
    from perturbations import family
    from pipeline.formats.common import Layout
    from pipeline.imagenet_p import SequenceBlock
    from pipeline.readers import Item, imagenet_wnids
    from pipeline.task import SEQUENCE_DIMS, Key
    n = len(labels)
    wnids = wnids or [imagenet_wnids()[label] for label in labels]
    items = tuple(Item(str(i), f"ILSVRC2012_val_{i:08d}.JPEG", wnids[i], int(labels[i]), "file", "")
                  for i in range(n))
    first = next(iter(frames.values()))
    layout = Layout("imagenet-p", "custom", tuple(frames), (1,), tuple(first.shape[2:4]), items,
                    tuple(imagenet_wnids()), {kind: array.shape[1] for kind, array in frames.items()},
                    {"seed": None, "source": "arrays"}, version="arrays")
    writer.prepare(layout)
    for kind, array in frames.items():
        writer.write(SequenceBlock(Key(kind, 0, 0, n), SEQUENCE_DIMS, tuple(array.shape[2:4]), array.shape[1],
                                   list(array), items, np.ones(n, bool), family(kind)))
    writer.finalise(layout, [])
