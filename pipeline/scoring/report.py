"""Results on disk: results.json, results.csv, report.md laid out like the paper's Tables 1 and 2,
a CE chart, and comparisons of several models."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from corruptions import corruption_names


SHORT = {"gaussian_noise": "Gauss.", "shot_noise": "Shot", "impulse_noise": "Impulse", "defocus_blur": "Defocus",
         "glass_blur": "Glass", "motion_blur": "Motion", "zoom_blur": "Zoom", "snow": "Snow", "frost": "Frost",
         "fog": "Fog", "brightness": "Bright", "contrast": "Contrast", "elastic_transform": "Elastic",
         "pixelate": "Pixel", "jpeg_compression": "JPEG", "speckle_noise": "Speckle", "gaussian_blur": "G. Blur",
         "spatter": "Spatter", "saturate": "Saturate"}


def _fmt(value, digits=0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def baseline_of(results_list: list[dict]) -> tuple[str, float | None]:
    """The baseline the results were normalised by (AlexNet unless ``--baseline``), and its
    clean error in percent."""
    first = results_list[0] if results_list else {}
    name = first.get("baseline", "AlexNet")
    clean = first.get("baseline_clean_error", 0.435 if name == "AlexNet" else None)
    return name, None if clean is None else 100 * clean


def error_table(results_list: list[dict]) -> str:
    """Without a baseline (CIFAR, Tiny ImageNet: the paper gives no AlexNet errors): the mean
    top-1 error over severities per corruption, in percent, unnormalised."""
    names = [n for n in corruption_names("all") if any(n in r["errors"] for r in results_list)]
    out = ["### Top-1 error (%), mean over severities; no baseline to normalise by (give --baseline results.json)\n",
           "| Network | Error | mean | " + " | ".join(SHORT[n] for n in names) + " |",
           "|" + "---|" * (3 + len(names))]
    for results in results_list:
        means = {n: 100 * float(np.mean(list(results["errors"][n].values()))) for n in names if n in results["errors"]}
        benchmark = [means[n] for n in corruption_names("benchmark") if n in means]
        clean = None if results["clean_error"] is None else 100 * results["clean_error"]
        out.append("| " + " | ".join([results["model"]["name"], _fmt(clean, 1), _fmt(np.mean(benchmark) if benchmark
                                                                                    else None, 1)]
                                     + [_fmt(means.get(n), 1) for n in names]) + " |")
    return "\n".join(out) + "\n"


def markdown_tables(results_list: list[dict]) -> str:
    """Rows like the paper's Table 1 (CE, mCE) and Table 2 (relative CE, relative mCE)."""
    if results_list and results_list[0].get("baseline", "AlexNet") is None:
        return error_table(results_list)
    names = corruption_names("benchmark")
    extras = [n for n in corruption_names("extra") if any(n in r["ce"] for r in results_list)]
    header = ["Network", "Error", "{m}"] + [SHORT[n] for n in names + extras]
    baseline, baseline_clean = baseline_of(results_list)
    out = []
    for title, key, mean_key in (("Corruption Error (CE) and mCE", "ce", "mce"),
                                 ("Relative CE and relative mCE", "relative_ce", "relative_mce")):
        out.append(f"### {title} ({baseline} = 100)\n")
        head = [h.replace("{m}", "mCE" if key == "ce" else "Rel. mCE") for h in header]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        out.append(f"| {baseline} | {_fmt(baseline_clean, 1)} | 100.0 | " + " | ".join("100" for _ in names + extras)
                   + " |")
        for results in results_list:
            clean = None if results["clean_error"] is None else 100 * results["clean_error"]
            row = [results["model"]["name"], _fmt(clean, 1), _fmt(results[mean_key], 1)]
            row += [_fmt(results[key].get(n)) for n in names + extras]
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    notes = []
    for results in results_list:
        if results["missing"]:
            notes.append(f"- {results['model']['name']}: missing cells {', '.join(results['missing'])}; "
                         + ("means over the corruptions present (--allow-partial)." if results["partial"]
                            else "mCE left out."))
        unreadable = results["data"].get("unreadable") or []
        if unreadable:
            notes.append(f"- {results['model']['name']}: {len(unreadable)} unreadable files skipped, e.g. "
                         f"{unreadable[0]} (all of them under data.unreadable in results.json).")
        if results["clean_error"] is None:
            notes.append(f"- {results['model']['name']}: no clean set scored (--clean), so no relative CE.")
    return "\n".join(out + notes) + "\n"


def bar_chart(results_list: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    normalised = results_list[0].get("baseline", "AlexNet") is not None
    field = "ce" if normalised else "errors"
    names = [n for n in corruption_names("all") if any(n in r[field] for r in results_list)]
    width = 0.8 / max(len(results_list), 1)
    figure, axes = plt.subplots(figsize=(max(8, 0.7 * len(names)), 4.2))
    x = np.arange(len(names))
    for index, results in enumerate(results_list):
        if normalised:
            values, label = [results["ce"].get(n, np.nan) for n in names], f"mCE {_fmt(results['mce'], 1)}"
        else:
            values = [100 * float(np.mean(list(results["errors"][n].values()))) if n in results["errors"] else np.nan
                      for n in names]
            label = "mean top-1 error"
        axes.bar(x + index * width - 0.4 + width / 2, values, width, label=f"{results['model']['name']} ({label})")
    if normalised:
        axes.axhline(100, color="black", linewidth=1, linestyle="--", label=f"{baseline_of(results_list)[0]} = 100")
    axes.set_xticks(x, [SHORT[n] for n in names], rotation=45, ha="right")
    axes.set_ylabel("Corruption Error (%)" if normalised else "Top-1 error (%), mean over severities")
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_results(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True))
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["corruption", "severity", "top1_error", "ce", "relative_ce"])
        if results["clean_error"] is not None:
            writer.writerow(["clean", 0, f"{results['clean_error']:.6f}", "", ""])
        for name in corruption_names("all"):
            for severity, error in sorted(results["errors"].get(name, {}).items()):
                writer.writerow([name, severity, f"{error:.6f}", _fmt(results["ce"].get(name), 3),
                                 _fmt(results["relative_ce"].get(name), 3)])
    report = [f"# ImageNet-C results: {results['model']['name']}\n",
              f"Data: `{results['data']['path']}` ({results['data']['kind']}); device {results['device']}; "
              f"{results['images_per_second']} images/s.\n", markdown_tables([results]),
              "![CE per corruption](ce.png)\n"]
    (out / "report.md").write_text("\n".join(report))
    bar_chart([results], out / "ce.png")


def read_results(path: str) -> dict:
    """A results.json written by ``score``; anything else is a ``ScoreError`` naming the file."""
    from .errors import ScoreError
    try:
        results = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ScoreError(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScoreError(f"{path}: not a JSON file ({type(exc).__name__})") from None
    if not isinstance(results, dict) or not {"model", "errors", "ce"} <= set(results):
        raise ScoreError(f"{path}: not a results.json written by `python -m pipeline score`")
    return results


def compare(paths: list[str], out: str | None) -> str:
    results_list = [read_results(p) for p in paths]
    table = markdown_tables(results_list)
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        bar_chart(results_list, Path(out) / "comparison.png")
        (Path(out) / "comparison.md").write_text("# ImageNet-C comparison\n\n" + table + "\n![CE](comparison.png)\n")
    return table
