"""``make demo``: the main job on a small sample of real photos that ship with scikit-image.

Builds a tiny validation set in class folders (real ImageNet wnids), runs the ``imagenet``
configuration with all 19 corruptions x 5 severities on a local cluster of two worker
processes, writes the JPEG tree, the Zarr store and a preview sheet, then scores the result
with a small model built here (no weights can be downloaded), publishes it (tarballs,
SHA256SUMS, dataset card, Croissant metadata), verifies the release by regenerating a sample.
Then ImageNet-P from the same sample: all 20 sequence kinds as MP4 (a fast x264 preset, so the
demo stays short; the originals' veryslow is the default of `make imagenet-p`) and Zarr, a
sheet of frames per kind (the paper's Figure 2) and an animated GIF. Prints where everything is.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

# photo -> its ImageNet-1k class folder
SAMPLE = {
    "chelsea": "n02123045",  # tabby, tabby cat
    "coffee": "n07920052",  # espresso
    "rocket": "n04008634",  # projectile, missile
    "astronaut": "n04592741",  # wing: the nearest class in sight (the shuttle's)
    "motorcycle_left": "n03785016",  # moped
    "motorcycle_right": "n03785016",
}

# A model for the demo's scoring step: the nearest class by mean colour, among the sample's
# classes (their centroids measured on the clean photos), so corruptions that shift colours
# cost it accuracy and the report has something to show.
DEMO_MODEL = '''
import torch

CENTROIDS = {centroids}


class NearestMeanColour(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("classes", torch.tensor(list(CENTROIDS), dtype=torch.long))
        self.register_buffer("centroids", torch.tensor(list(CENTROIDS.values()), dtype=torch.float32))

    def forward(self, x):
        colour = x.mean(dim=(2, 3))
        distance = ((colour[:, None, :] - self.centroids[None]) ** 2).sum(-1)
        logits = torch.full((x.shape[0], 1000), -1e4, dtype=x.dtype, device=x.device)
        return logits.index_copy(1, self.classes, -distance)


def demo():
    return NearestMeanColour()
'''
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def centroids(source: Path) -> dict[int, list[float]]:
    """Mean normalised colour of each class's clean 224 crops (what the model sees)."""
    import numpy as np

    from corruptions.config import preprocess

    from .readers import imagenet_wnids
    colours: dict[int, list] = {}
    for wnid in sorted(set(SAMPLE.values())):
        for path in sorted((source / wnid).glob("*.JPEG")):
            pixels = preprocess(Image.open(path), "imagenet").reshape(-1, 3).mean(0) / 255.0
            colours.setdefault(imagenet_wnids().index(wnid), []).append((pixels - MEAN) / STD)
    return {k: [round(float(v), 6) for v in np.mean(c, axis=0)] for k, c in colours.items()}


def sample_photo(name: str) -> Image.Image:
    import skimage.data
    if name.startswith("motorcycle_"):
        left, right, _ = skimage.data.stereo_motorcycle()
        return Image.fromarray(left if name.endswith("left") else right)
    return Image.fromarray(getattr(skimage.data, name)())


def build_sample(root: Path) -> Path:
    """Write the sample as ``root/<wnid>/<photo>.JPEG`` (quality 95); returns ``root``."""
    for index, (name, wnid) in enumerate(SAMPLE.items(), start=1):
        path = root / wnid / f"sample_{index:02d}_{name}.JPEG"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            sample_photo(name).save(path, quality=95)
    return root


def _measured(results: Path) -> dict:
    import json
    return json.loads((results / "results.json").read_text())["perturbations"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path(".demo"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    from corruptions import corruption_names
    from corruptions.config import preprocess

    from .__main__ import main as cli
    from .preview import animation, contact_sheet, sequence_sheet
    source = build_sample(args.dir / "val")
    out = args.dir / "imagenet-c"
    status = cli(["generate", "imagenet-c", "--source", str(source), "--out", str(out),
                  "--workers", str(args.workers), "--shard-size", "2"])
    if status:
        return status
    sheet = args.dir / "preview-imagenet-chelsea.png"
    contact_sheet(preprocess(sample_photo("chelsea"), "imagenet"), "imagenet", corruption_names("all")).save(sheet)
    model = args.dir / "demo_model.py"
    model.write_text(DEMO_MODEL.replace("{centroids}", repr(centroids(source))))
    results = args.dir / "results"
    status = cli(["score", "--model", f"{model}:demo", "--data", str(out), "--clean", str(source),
                  "--out", str(results), "--workers", str(args.workers), "--name", "demo-nearest-colour"])
    if status:
        return status
    dist = args.dir / "release"
    status = cli(["publish", str(out), "--to", str(dist)]) or cli(["verify", str(dist), "--source", str(source)])
    if status:
        return status
    out_p = args.dir / "imagenet-p"
    status = cli(["generate", "imagenet-p", "--source", str(source), "--out", str(out_p), "--workers",
                  str(args.workers), "--shard-size", "2", "--set", "outputs.mp4.preset=veryfast"])
    if status:
        return status
    results_p = args.dir / "results-p"
    status = cli(["score", "--model", f"{model}:demo", "--data", str(out_p), "--out", str(results_p),
                  "--workers", str(args.workers), "--name", "demo-nearest-colour"])
    if status:
        return status
    # the same scores without materialising: ImageNet-P produced in the loader, against its store
    stored, fly = args.dir / "results-p-store", args.dir / "results-p-on-the-fly"
    status = (cli(["score", "--model", f"{model}:demo", "--data", str(out_p / "imagenet-p.zarr"), "--out", str(stored),
                   "--workers", str(args.workers), "--name", "demo-nearest-colour"])
              or cli(["score", "--model", f"{model}:demo", "--on-the-fly", "imagenet-p", "--clean", str(source),
                      "--out", str(fly), "--workers", str(args.workers), "--name", "demo-nearest-colour"]))
    if status:
        return status
    same = _measured(stored) == _measured(fly)
    print(f"on the fly == the generated Zarr store, every FP / uT5D / Zipf cell: {same}")
    if not same:
        return 1
    comparison = args.dir / "comparison"
    status = cli(["report", str(results / "results.json"), str(results_p / "results.json"), "--out", str(comparison)])
    if status:
        return status
    import numpy as np
    photo = np.asarray(sample_photo("chelsea"))
    p_sheet = args.dir / "preview-imagenet-p-chelsea.png"
    from perturbations import sequence_names
    sequence_sheet(photo, "imagenet", sequence_names("all")).save(p_sheet)
    gif = animation(photo, "imagenet", ["rotate", "snow", "brightness", "spatter"],
                    args.dir / "preview-imagenet-p-chelsea.gif")
    print("\ndemo outputs:")
    print(f"  sample validation set  {source.resolve()}")
    print(f"  JPEG tree              {out.resolve()}/<corruption>/<severity>/<wnid>/")
    print(f"  Zarr store             {(out / 'imagenet-c.zarr').resolve()}")
    print(f"  preview sheet          {sheet.resolve()}")
    print(f"  scores of a small model {(results / 'report.md').resolve()}")
    print(f"  release (tarballs, SHA256SUMS, dataset card, Croissant)  {dist.resolve()}")
    print(f"  ImageNet-P MP4 tree    {out_p.resolve()}/<sequence kind>/<wnid>/<name>.mp4")
    print(f"  ImageNet-P Zarr store  {(out_p / 'imagenet-p.zarr').resolve()}")
    print(f"  ImageNet-P previews    {p_sheet.resolve()}, {gif.resolve()}")
    print(f"  ImageNet-P scores      {(results_p / 'report.md').resolve()}")
    print(f"  ImageNet-P on the fly  {(fly / 'report.md').resolve()} (= {(stored / 'report.md').resolve()})")
    print(f"  both, one leaderboard  {(comparison / 'comparison.md').resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
