"""The release's dataset card (README.md) and Croissant metadata."""
from __future__ import annotations

from perturbations import TEST, split_kind

from ..formats import release_format
from ..formats.jpeg_tree import parse_path
from ..metrics import ALEXNET_ERRORS, Baseline, FlipBaseline, image_names
from ..tasks import task_spec
from .plan import SINGLE_RELEASES, TITLES, Member, PublishError, imagenet_classes, kernel_names

CROISSANT_1_1 = "http://mlcommons.org/croissant/1.1"
# Croissant's responsible-AI fields: what the project knows of every release it makes
RAI = {
    "data_collection": "Generated: the source validation images (ImageNet, Tiny ImageNet or CIFAR, as the run "
                       "config names) run through synthetic corruptions; no new images were collected.",
    "data_collection_type": ["Synthetic"],
    "data_preprocessing_protocol": ["The variant's preprocessing of every source image (for ImageNet 224 px: shorter "
                                    "side 256, bilinear, centre crop 224), then each corruption at each severity with "
                                    "the original generator's constants, order of operations and truncation, saved as "
                                    "the original saved it."],
    "data_use_cases": "Evaluating the robustness of image classifiers to common corruptions (top-1 error per "
                      "corruption and severity, CE, mCE). Not for training: a model trained on these corruptions no "
                      "longer measures robustness to unseen ones.",
    "data_limitations": "The corruptions are synthetic approximations of real ones; severities are the original "
                        "benchmark's, not calibrated to human perception. Random draws follow the original's "
                        "distributions, not its exact files, so per-image results differ from the official release's; "
                        "the originals' quirks are kept on purpose.",
    "data_biases": "Inherits the source dataset's biases: ImageNet's class list, geographic and demographic skew, "
                   "and labelling errors of its validation set.",
    "personal_sensitive_information": "The source photographs may show people; no personal information was added.",
    "data_social_impact": "Intended to measure and improve the reliability of vision models under distribution "
                          "shift; the images carry the source dataset's terms of access.",
}

# ---------------------------------------------------------------- card and Croissant

def member_counts(members: dict[str, list[Member]]) -> dict[tuple[str, str], int]:
    """Images per (corruption, severity) among the members of a JPEG release, or videos per
    (kind, "1") among an MP4 release's."""
    counts: dict[tuple[str, str], int] = {}
    for group in members.values():
        for member in group:
            parsed = parse_path(member.name)
            if parsed is None and member.name.endswith(".mp4") and member.name.count("/") >= 2:
                parsed = (member.name.split("/")[-3], 1)
            if parsed is not None:
                key = (parsed[0], str(parsed[1]))
                counts[key] = counts.get(key, 0) + 1
    return counts


def _stored_as(config, sequences: bool) -> str:
    if sequences:
        return ("stored as the original stored them (CIFAR-P: raw uint8 arrays of frames)"
                if release_format(config.outputs.formats).RELEASE_ARRAYS else
                "encoded as the originals encoded them (H.264 MP4, 1 frame per second)")
    if release_format(config.outputs.formats).RELEASE_ARRAYS:
        return "stored as the original stored it (CIFAR: raw uint8 arrays)"
    return (f"written as the original wrote it (JPEG quality {config.outputs.jpeg.quality}, optimised)")


def dataset_card(run: dict, config, files: list[tuple[str, str, int]], counts: dict, failures: int) -> str:
    """The release's README.md; ``config``: the run's ``runconfig.RunConfig``; ``files``: every
    tarball, shard and parquet file (name, sha256, size)."""
    identity = run["identity"]
    spec = task_spec(config.task)
    sequences = spec.scoring == "sequences"
    names, levels = kernel_names(config), ((1,) if sequences else config.severities)
    title = TITLES.get(config.name, config.name)
    card = spec.card
    extension = ("" if not card.released or config.variant in card.released else
                 f"\n\n**An extension**: no published release of {title} has the `{config.variant}` variant; its "
                 "constants follow the original's rules for this image size.")
    if sequences:
        rows = ["| sequence kind | videos |", "|---|---|"]
        rows += [f"| {n} | {counts.get((n, '1'), '-')} |" for n in names]
        what = f"{len(names)} sequence kinds of {identity['images']} validation images"
    else:
        rows = ["| corruption | " + " | ".join(f"severity {s}" for s in levels) + " |",
                "|---|" + "---|" * len(levels)]
        rows += [f"| {n} | " + " | ".join(str(counts.get((n, str(s)), "-")) for s in levels) + " |" for n in names]
        what = f"{len(names)} corruptions x {len(levels)} severities of {identity['images']} validation images"
    tarballs = [entry for entry in files if "/" not in entry[0]]
    table = ["| file | bytes | sha256 |", "|---|---|---|"]
    table += [f"| {name} | {size} | `{digest}` |" for name, digest, size in tarballs]
    others = len(files) - len(tarballs)
    versions = "\n".join(f"- {k}: {v}" for k, v in identity["versions"].items())
    layout = ("one tarball, `" + title + "/...`" if config.name in SINGLE_RELEASES else
              "one tarball per family (noise, blur, weather, digital; extra for the 4 extra corruptions), "
              "members `<corruption>/<severity>/<wnid>/<file>`")
    forms = _forms(files, sequences, config)
    return f"""# {title}

{title} is {card.about} in
its `{config.variant}` variant: {what} ({failures} source images could not be read and are absent),
generated by imagenet-c-generator {run['version']} with root seed {config.seed}. Every output is the
original generator's (constants, order of operations, quantisation by truncation),
{_stored_as(config, sequences)}.{extension}

## Contents

{chr(10).join(rows)}

{f"The official layout: {layout}." if tarballs else ""}

{chr(10).join(table) if tarballs else ""}
{f"{others} files of the streaming forms below are listed, with their sha256, in `SHA256SUMS`." if others else ""}

`SHA256SUMS` covers every file here; `MEMBERS/<tarball>.sha256` lists every member of each
tarball and shard with its sha256; `run.json` is the generator's record of the run (settings,
source listing digest, variant file digest, library versions).

## Reproducibility

Every file is byte-reproducible: the same source, seed and library versions give the same
bytes, whatever the machine or worker count. Versions that decide the bytes:

{versions}

## Verify

```bash
sha256sum -c SHA256SUMS
python -m pipeline verify DIST                      # checksums, every member, counts
python -m pipeline verify DIST --source VAL --sample 32   # regenerate 32 outputs and compare bytes
```

## Score a model

```bash
mkdir data && for t in *.tar; do tar xf $t -C data; done
python -m pipeline score --model SPEC --data data --clean VAL --out results
```
{_measures(config, names, sequences, title)}{forms}
## Fidelity to the original generator

{card.fidelity}

## Known differences from the official release

{card.differences}

## Licence

Derived from the ImageNet validation set (or CIFAR / Tiny ImageNet): their terms of access
apply to these images. The frost corruption overlays textures from the original repository
(distributed in the `imagecorruptions` package, Apache-2.0). The generator is Apache-2.0.

## Citation

```bibtex
{card.citation}
```
"""


def _measures(config, names, sequences: bool, title: str) -> str:
    """The card's part on the paper's measures: their formulas, and AlexNet's figures where the
    paper gives them for this release's classes and kernels (the baselines ``score`` normalises
    by, ``pipeline.metrics``)."""
    def pct(fraction: float) -> str:
        return f"{100 * fraction:.1f}"

    if sequences:
        flips = FlipBaseline.alexnet().values
        known = [n for n in names if split_kind(n) in flips]
        head = f"""
## Measures: flip rate, mFR, mT5D

`score` runs the model over every frame of every video. With d the kind's difficulty:

```
FP_p   = mean over videos of the share of compared frame pairs whose top-1 prediction differs
         (noise kinds: every frame against the first; the others: each frame against the one d before)
uT5D_p = the same mean of the top-5 distance between the compared frames' predictions
FR_p   = FP_p / FP_p(AlexNet)         T5D_p = uT5D_p / uT5D_p(AlexNet)        (in percent)
mFR, mT5D = means of FR_p, T5D_p over the {len(TEST)} test perturbations at difficulty 1
```
"""
        if not (imagenet_classes(config) and known):
            return head + f"""
The paper gives no AlexNet figures for {title}: `score` reports FP and uT5D per kind; with
`--baseline results.json` (another model scored on this release) it normalises by that model's.
"""
        # FP to two decimals, as Appendix E gives it (23.65, 7.05: one decimal would round them away)
        rows = [f"| {n} | {100 * flips[split_kind(n)][0]:.2f} | {flips[split_kind(n)][1]:.2f} |" for n in known]
        return head + f"""
AlexNet's figures at difficulty 1 (the paper's Appendix E), the default baseline of `score` for
1000-class models:

| perturbation | FP (%) | uT5D |
|---|---|---|
{chr(10).join(rows)}
"""
    every, benchmark = image_names(config.task)
    extra = f" (not the {len(every) - len(benchmark)} extra ones)" if len(every) > len(benchmark) else ""
    head = f"""
## Measures: CE and mCE

`score` measures E_c,s, the top-1 error on corruption c at severity s, and E_clean on the clean
validation images:

```
CE_c          = sum_s E_c,s / sum_s E_c,s(AlexNet)                                   (s = 1..5, in percent)
mCE           = mean of CE_c over the benchmark's {len(benchmark)} corruptions{extra}
relative CE_c = sum_s (E_c,s - E_clean) / sum_s (E_c,s(AlexNet) - E_clean(AlexNet))
```
"""
    alexnet = Baseline.alexnet()
    known = [n for n in names if n in alexnet.mean_errors]
    if not (imagenet_classes(config) and known):
        return head + f"""
The paper gives no AlexNet errors for {title}: `score` reports the errors and their mean; with
`--baseline results.json` (another model scored on this release) it normalises by that model's.
"""
    rows = [f"| {n} | {' | '.join(pct(e) for e in ALEXNET_ERRORS.get(n, ())) or '- | - | - | - | -'} | "
            f"{pct(alexnet.mean_errors[n])} |" for n in known]
    return head + f"""
AlexNet's top-1 errors (%), the default baseline of `score` for 1000-class models (measured on the
224 px ImageNet-C; clean {pct(alexnet.clean_error)}): per severity as the benchmark's author gave them
(hendrycks/robustness issue 10), the extra corruptions' means from the paper's Appendix D:

| corruption | 1 | 2 | 3 | 4 | 5 | mean |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}
"""


def sample_extension(config, sequences: bool) -> str:
    """What a per-sample form's samples of this run are: jpg, png (CIFAR image rows), mp4 or npy
    (CIFAR-P video rows)."""
    arrays = release_format(config.outputs.formats).RELEASE_ARRAYS
    return ("npy" if arrays else "mp4") if sequences else ("png" if arrays else "jpg")


def _forms(files: list[tuple[str, str, int]], sequences: bool, config) -> str:
    """The card's part on each form the release has: what it is for and how to load it."""
    from .parquet import FOLDER, ROBUSTBENCH, SUBSET_FOLDER
    from .webdataset import FOLDER as SHARDS
    names = [name for name, _, _ in files]
    shards = sorted(name for name in names if name.startswith(f"{SHARDS}/"))
    tables = [name for name in names if name.startswith(f"{FOLDER}/")]
    subset = [name for name in names if name.startswith(f"{SUBSET_FOLDER}/")]
    content = sample_extension(config, sequences)
    parts = []
    if any("/" not in name for name in names):
        folder = "data/" + (SINGLE_RELEASES[config.name] + "/" if config.name in SINGLE_RELEASES else "")
        parts.append(f"""
## The tree (official layout)

For the original evaluators and anything reading folders. After extracting the tarballs:

```python
import torchvision
cell = torchvision.datasets.ImageFolder("{folder}fog/3")   # <corruption>/<severity>: one cell
image, label = cell[0]
```
""" if not sequences else f"""
## The tree (official layout)

`<kind>/<wnid>/<file>.mp4`, as ImageNet-P's `test.py` reads it:

```python
from pipeline.formats.mp4_tree import decode
frames = decode("{folder}rotate/n01440764/ILSVRC2012_val_00000293.mp4")   # (frames, H, W, 3) uint8
```
""")
    if shards:
        first = shards[0][len(SHARDS) + 1:-len(".tar")].rsplit("-", 1)[0]
        kinds = {"mp4": "`.mp4` (the tree's video) with kind, perturbation, difficulty and frames",
                 "npy": "`.npy` (the video's frames, as the arrays store them) with kind, perturbation, difficulty and "
                        "frames",
                 "png": "`.png` (the array row, lossless)", "jpg": "`.jpg` (the tree's JPEG bytes)"}[content]
        parts.append(f"""
## WebDataset form

For streaming at scale: `webdataset/`, {len(shards)} tar shards, one or more per cell
(`<name>-<level>-NNNNNN.tar`), each sample {kinds}, `.cls` (the class index) and `.json` (its
columns and the run's: variant, task, generator_version, seed). `webdataset/index.json` is a `wids`
shard index (each shard's samples, size, sha256) with each cell's shards in brace notation.

```python
import webdataset as wds
cell = wds.WebDataset("webdataset/{first}-{{000000..000000}}.tar", shardshuffle=False)
for sample in cell: data, label, meta = sample["{content}"], sample["cls"], sample["json"]
```
""")
    if tables:
        example = "rotate" if sequences else "fog_3"
        column = "video" if sequences else "image"
        robust = (f"""
`robustbench` (and `robustbench_<cell>`) holds the rows of RobustBench's 5,000-image ImageNet subset
that the source holds ({ROBUSTBENCH['repository']}, `{ROBUSTBENCH['path']}` at {ROBUSTBENCH['commit'][:12]},
sha256 `{ROBUSTBENCH['sha256'][:16]}...`, MIT).
""" if subset else "")
        parts.append(f"""
## Hugging Face form

For the Hub and `datasets`: `{FOLDER}/<config>/validation-NNNNN-of-NNNNN.parquet`, a config per
cell (`{example}`){"" if sequences else ", per corruption (`fog`)"} and `all`, declared in this card's front matter; the
`{column}` column holds the same bytes as the tree, `label` is a `ClassLabel`.
{robust}
```python
import datasets
cell = datasets.load_dataset("DIST", "{example}", split="validation", streaming=True)
for row in cell: data, label = row["{column}"], row["label"]
```
""")
    return "".join(parts)


def croissant(run: dict, config, files: list[tuple[str, str, int]], single: bool, npy: bool) -> dict:
    """Croissant 1.1 metadata: every file of the release with its sha256 (tarballs, WebDataset
    shards, parquet files), a file set and a record set per form (the tree's images with their
    corruption, severity and class, or CIFAR's arrays, or ImageNet-P's videos; the shards'
    samples; the parquet rows), the benchmark's creators and date, and the responsible-AI fields
    (``RAI``)."""
    try:
        import mlcroissant as mlc
    except ImportError:
        raise PublishError("Croissant metadata need mlcroissant: pip install 'imagenet-c-generator[publish]'") from None
    from .parquet import FOLDER, SUBSET_FOLDER
    from .webdataset import FOLDER as SHARDS
    title = TITLES.get(config.name, config.name)
    spec = task_spec(config.task)
    card, sequences = spec.card, spec.scoring == "sequences"
    ctx = mlc.Context(conforms_to=CROISSANT_1_1)  # every node of a 1.1 document in 1.1's vocabulary

    def file_object(name, digest, size):
        kind = ("application/x-parquet" if name.endswith(".parquet") else "application/x-tar"
                if name.endswith(".tar") else "application/gzip")
        return mlc.FileObject(ctx=ctx, id=name, name=name, content_url=name, content_size=f"{size} B", sha256=digest,
                              encoding_formats=[kind])

    objects = [file_object(*entry) for entry in files]
    tarballs = [o.id for o in objects if "/" not in o.id]
    shards = [o.id for o in objects if o.id.startswith(f"{SHARDS}/")]
    tables = [o.id for o in objects if o.id.startswith((f"{FOLDER}/", f"{SUBSET_FOLDER}/"))]

    def field(record: str, name: str, kind, file_set: str, prop: str | None = None, regex: str | None = None,
              column: str | None = None):
        extract = mlc.Extract(ctx=ctx, column=column) if column else mlc.Extract(ctx=ctx, file_property=prop)
        transforms = [mlc.Transform(ctx=ctx, regex=regex)] if regex else []
        return mlc.Field(ctx=ctx, id=f"{record}/{name}", name=name, data_types=[kind],
                         source=mlc.Source(ctx=ctx, file_set=file_set, extract=extract, transforms=transforms))

    text, integer = mlc.DataType.TEXT, mlc.DataType.INTEGER
    prefix = r"[^/]+/" if single else ""
    sets, records = [], []
    if tarballs and npy:
        sets.append(mlc.FileSet(ctx=ctx, id="array-files", name="array-files", contained_in=tarballs,
                                encoding_formats=["application/octet-stream"], includes=["*/*.npy"]))
        records.append(mlc.RecordSet(ctx=ctx, id="arrays", name="arrays",
                                     fields=[field("arrays", "file", text, "array-files", "fullpath")],
                                     description="One (videos, frames, 32, 32, 3) uint8 array per sequence kind, and "
                                                 "labels.npy" if sequences else
                                                 "One (severities x images, 32, 32, 3) uint8 array per corruption, "
                                                 "severity-major, and labels.npy"))
    elif tarballs and sequences:
        sets.append(mlc.FileSet(ctx=ctx, id="video-files", name="video-files", contained_in=tarballs,
                                encoding_formats=["video/mp4"], includes=["*/*/*.mp4", "*/*/*/*.mp4"]))
        records.append(mlc.RecordSet(ctx=ctx, id="videos", name="videos", fields=[
            field("videos", "file", text, "video-files", "fullpath"),
            field("videos", "kind", text, "video-files", "fullpath", rf"^{prefix}([^/]+)/[^/]+/[^/]+$"),
            field("videos", "wnid", text, "video-files", "fullpath", rf"^{prefix}[^/]+/([^/]+)/[^/]+$")],
            description="Perturbation sequences (H.264 MP4) with their kind and class"))
    elif tarballs:
        sets.append(mlc.FileSet(ctx=ctx, id="image-files", name="image-files", contained_in=tarballs,
                                encoding_formats=["image/jpeg"], includes=["*.JPEG", "*/*.JPEG", "*/*/*/*.JPEG",
                                                                           "*/*/*/*/*.JPEG"]))
        records.append(mlc.RecordSet(ctx=ctx, id="images", name="images", fields=[
            field("images", "image", mlc.DataType.IMAGE_OBJECT, "image-files", "content"),
            field("images", "corruption", text, "image-files", "fullpath", rf"^{prefix}([^/]+)/[^/]+/[^/]+/[^/]+$"),
            field("images", "severity", integer, "image-files", "fullpath", rf"^{prefix}[^/]+/([1-5])/[^/]+/[^/]+$"),
            field("images", "wnid", text, "image-files", "fullpath", rf"^{prefix}[^/]+/[^/]+/([^/]+)/[^/]+$")],
            description="Corrupted validation images with their corruption, severity and class"))
    if shards:
        content = sample_extension(config, sequences)
        kind = {"mp4": "video/mp4", "npy": "application/octet-stream", "png": "image/png", "jpg": "image/jpeg"}[content]
        sets.append(mlc.FileSet(ctx=ctx, id="webdataset-samples", name="webdataset-samples", contained_in=shards,
                                encoding_formats=[kind], includes=[f"*.{content}"]))
        sample_fields = [field("webdataset", "key", text, "webdataset-samples", "filename", r"^([^.]+)\..*$")]
        if not sequences:
            sample_fields.insert(0, field("webdataset", "image", mlc.DataType.IMAGE_OBJECT, "webdataset-samples",
                                          "content"))
        records.append(mlc.RecordSet(ctx=ctx, id="webdataset", name="webdataset", fields=sample_fields,
                                     description="The WebDataset shards' samples by key; each key's .cls and .json "
                                                 "beside it give its class and columns"))
    if tables:
        sets.append(mlc.FileSet(ctx=ctx, id="parquet-files", name="parquet-files",
                                encoding_formats=["application/x-parquet"], includes=[f"{FOLDER}/*/*.parquet"]))
        columns = ([("kind", text), ("perturbation", text), ("difficulty", integer), ("frames", integer)]
                   if sequences else [("corruption", text), ("level", integer)])
        records.append(mlc.RecordSet(ctx=ctx, id="parquet", name="parquet", fields=[
            field("parquet", name, kind, "parquet-files", column=name)
            for name, kind in [("label", integer), *columns, ("source_file", text)]],
            description=f"The Hugging Face form's rows (data/<config>/*.parquet; the {'video' if sequences else 'image'} "
                        "column holds the same bytes as the tree)"))
    metadata = mlc.Metadata(ctx=ctx,
        name=title, url=card.url, version=str(run["version"]),
        description=f"{title}: {card.about} ({config.variant} variant), {len(kernel_names(config))} "
                    f"{'sequence kinds' if sequences else 'corruptions x ' + str(len(config.severities)) + ' severities'}"
                    f", generated with root seed {config.seed}.",
        cite_as=card.citation, license=["https://image-net.org/download"], conforms_to=CROISSANT_1_1,
        creators=[mlc.Person(ctx=ctx, name=name) for name in card.creators], date_published=card.published or None,
        **RAI,
        distribution=[*objects, *sets], record_sets=records)
    return metadata.to_json()
