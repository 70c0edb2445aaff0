"""Contact sheet like the paper's Figure 1: one row per corruption, clean + severities 1-5.

    python -m pipeline.preview --variant imagenet --photo astronaut --out sheet.png
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from corruptions import corrupt, corruption_names, load_variant, rng_for

SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
LABEL_WIDTH, HEADER, GAP, MIN_CELL = 150, 22, 4, 128


def load_photo(photo: str) -> Image.Image:
    """A scikit-image sample photo by name, or an image file path."""
    if photo in SAMPLE_PHOTOS:
        import skimage.data
        return Image.fromarray(getattr(skimage.data, photo)())
    path = Path(photo)
    if not path.is_file():
        raise ValueError(f"photo {photo!r} is neither a file nor one of {', '.join(SAMPLE_PHOTOS)}")
    return Image.open(path)


def contact_sheet(clean: np.ndarray, variant: str, names: list[str], seed: int = 0, image_id: str = "preview") -> Image.Image:
    height, width = clean.shape[:2]
    zoom = max(1, -(-MIN_CELL // max(height, width)))  # small variants are enlarged (nearest) to be seen
    cell_w, cell_h = width * zoom, height * zoom
    sheet = Image.new("RGB", (LABEL_WIDTH + 6 * (cell_w + GAP), HEADER + len(names) * (cell_h + GAP)), "white")
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(["clean"] + [f"severity {s}" for s in range(1, 6)]):
        draw.text((LABEL_WIDTH + column * (cell_w + GAP) + 4, 4), title, fill="black")

    def paste(array, row, column):
        tile = Image.fromarray(array).resize((cell_w, cell_h), Image.NEAREST)
        sheet.paste(tile, (LABEL_WIDTH + column * (cell_w + GAP), HEADER + row * (cell_h + GAP)))

    for row, name in enumerate(names):
        draw.text((6, HEADER + row * (cell_h + GAP) + cell_h // 2 - 6), name.replace("_", " "), fill="black")
        paste(clean, row, 0)
        for severity in range(1, 6):
            paste(corrupt(clean, name, severity, rng_for(seed, variant, name, severity, image_id), variant), row, severity)
    return sheet


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="imagenet", help="imagenet, inception, imagenet64, tiny or cifar")
    parser.add_argument("--photo", default="astronaut", help=f"one of {', '.join(SAMPLE_PHOTOS)}, or an image path")
    parser.add_argument("--corruptions", default="all", help="benchmark, extra or all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from corruptions.config import preprocess
    variant = load_variant(args.variant)
    clean = preprocess(load_photo(args.photo), variant)
    sheet = contact_sheet(clean, args.variant, corruption_names(args.corruptions), args.seed, Path(args.photo).name)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.part")
    sheet.save(tmp, format="PNG", optimize=True)
    tmp.replace(args.out)
    print(f"preview: {args.out}")
    return args.out


if __name__ == "__main__":
    main()


STEPS = 8  # frames shown per sequence in the ImageNet-P sheet


def sequence_sheet(photo: np.ndarray, variant: str, kinds: list[str], seed: int = 0,
                   image_id: str = "preview") -> Image.Image:
    """ImageNet-P like the paper's Figure 2: one row per sequence kind, frames at regular steps
    (the first and the last included)."""
    from perturbations import perturb
    rows = []
    for kind in kinds:
        frames = perturb(photo, kind, rng_for(seed, variant, kind, 1, image_id, task="imagenet-p"), variant)
        picks = np.linspace(0, len(frames) - 1, STEPS).round().astype(int)
        rows.append((kind, [(int(i), frames[i]) for i in picks]))
    height, width = max(f.shape[0] for _, r in rows for _, f in r), max(f.shape[1] for _, r in rows for _, f in r)
    zoom = max(1, -(-MIN_CELL // max(height, width)))
    cell_w, cell_h = width * zoom, height * zoom
    sheet = Image.new("RGB", (LABEL_WIDTH + STEPS * (cell_w + GAP), len(rows) * (cell_h + GAP + HEADER)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (kind, picks) in enumerate(rows):
        top = row * (cell_h + GAP + HEADER)
        draw.text((6, top + HEADER + cell_h // 2 - 6), kind.replace("_", " "), fill="black")
        for column, (index, frame) in enumerate(picks):
            left = LABEL_WIDTH + column * (cell_w + GAP)
            draw.text((left + 4, top + 4), f"frame {index}", fill="black")
            tile = Image.fromarray(frame).resize((frame.shape[1] * zoom, frame.shape[0] * zoom), Image.NEAREST)
            sheet.paste(tile, (left, top + HEADER))
    return sheet


def animation(photo: np.ndarray, variant: str, kinds: list[str], path: Path, seed: int = 0) -> Path:
    """An animated GIF of a few kinds side by side, every frame of each (shorter ones wait on
    their last frame), 4 frames per second."""
    from perturbations import perturb
    sequences = [perturb(photo, kind, rng_for(seed, variant, kind, 1, "preview", task="imagenet-p"), variant)
                 for kind in kinds]
    height, width = sequences[0].shape[1:3]
    length = max(len(s) for s in sequences)
    frames = []
    for index in range(length):
        canvas = Image.new("RGB", (len(kinds) * (width + GAP), height + HEADER), "white")
        draw = ImageDraw.Draw(canvas)
        for column, (kind, sequence) in enumerate(zip(kinds, sequences)):
            draw.text((column * (width + GAP) + 4, 4), kind.replace("_", " "), fill="black")
            canvas.paste(Image.fromarray(sequence[min(index, len(sequence) - 1)]), (column * (width + GAP), HEADER))
        frames.append(canvas)
    tmp = path.with_name(f".{path.name}.part")
    frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=250, loop=0)
    tmp.replace(path)
    return path
