"""Results on disk: results.json, results.csv, report.md laid out like the paper's Tables 1 and 2,
a CE chart, and comparisons of several models."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..files import make_folders, write_bytes
from ..metrics import image_names
from ..tasks import TASKS, scoring_kind


def scored_as(results: dict) -> str | None:
    """How a results record was scored (``tasks.scoring_kind``), None for a task this version lacks."""
    return scoring_kind(results["task"]) if results.get("task") in TASKS else None

SHORT = {"gaussian_noise": "Gauss.", "shot_noise": "Shot", "impulse_noise": "Impulse", "defocus_blur": "Defocus",
         "glass_blur": "Glass", "motion_blur": "Motion", "zoom_blur": "Zoom", "snow": "Snow", "frost": "Frost",
         "fog": "Fog", "brightness": "Bright", "contrast": "Contrast", "elastic_transform": "Elastic",
         "pixelate": "Pixel", "jpeg_compression": "JPEG", "speckle_noise": "Speckle", "gaussian_blur": "G. Blur",
         "spatter": "Spatter", "saturate": "Saturate"}


def _fmt(value, digits=0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _md(text) -> str:
    """A name as one markdown table cell: no line breaks, ``|`` escaped, so a model name cannot
    forge rows or columns."""
    return " ".join(str(text).split()).replace("\\", "\\\\").replace("|", "\\|")


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
    every, benchmark_names = image_names(results_list[0].get("task", "imagenet-c"))
    names = [n for n in every if any(n in r["errors"] for r in results_list)]
    out = ["### Top-1 error (%), mean over severities; no baseline to normalise by (give --baseline results.json)\n",
           "| Network | Error | mean | " + " | ".join(SHORT.get(n, n) for n in names) + " |",
           "|" + "---|" * (3 + len(names))]
    for results in results_list:
        means = {n: 100 * float(np.mean(list(results["errors"][n].values()))) for n in names if n in results["errors"]}
        benchmark = [means[n] for n in benchmark_names if n in means]
        clean = None if results["clean_error"] is None else 100 * results["clean_error"]
        out.append("| " + " | ".join([_md(results["model"]["name"]), _fmt(clean, 1), _fmt(np.mean(benchmark) if benchmark
                                                                                    else None, 1)]
                                     + [_fmt(means.get(n), 1) for n in names]) + " |")
    return "\n".join(out) + "\n"


def markdown_tables(results_list: list[dict]) -> str:
    """Rows like the paper's Table 1 (CE, mCE) and Table 2 (relative CE, relative mCE)."""
    if results_list and results_list[0].get("baseline", "AlexNet") is None:
        return error_table(results_list)
    every, names = image_names(results_list[0].get("task", "imagenet-c"))
    extras = [n for n in every if n not in names and any(n in r["ce"] for r in results_list)]
    header = ["Network", "Error", "{m}"] + [SHORT.get(n, n) for n in names + extras]
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
            row = [_md(results["model"]["name"]), _fmt(clean, 1), _fmt(results[mean_key], 1)]
            row += [_fmt(results[key].get(n)) for n in names + extras]
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    notes = []
    for results in results_list:
        if results["missing"]:
            notes.append(f"- {_md(results['model']['name'])}: missing cells {', '.join(results['missing'])}; "
                         + ("means over the corruptions present (--allow-partial)." if results["partial"]
                            else "mCE left out."))
        unreadable = results["data"].get("unreadable") or []
        if unreadable:
            notes.append(f"- {_md(results['model']['name'])}: {len(unreadable)} unreadable files skipped, e.g. "
                         f"{unreadable[0]} (all of them under data.unreadable in results.json).")
        if results["clean_error"] is None:
            notes.append(f"- {_md(results['model']['name'])}: no clean set scored (--clean), so no relative CE.")
    return "\n".join(out + notes) + "\n"


def grouped_bars(series: list[tuple[str, list[float]]], labels: list[str], ylabel: str, path: Path,
                 reference: str | None = None, divider: int | None = None, title: str | None = None) -> None:
    """One bar group per label, one bar per (legend, values) series; ``reference`` draws the
    baseline's 100 line, ``divider`` a line before that bar group."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    width = 0.8 / max(len(series), 1)
    figure, axes = plt.subplots(figsize=(max(8, 0.7 * len(labels)), 4.2))
    x = np.arange(len(labels))
    for index, (legend, values) in enumerate(series):
        axes.bar(x + index * width - 0.4 + width / 2, values, width, label=legend)
    if reference:
        axes.axhline(100, color="black", linewidth=1, linestyle="--", label=f"{reference} = 100")
    if divider is not None:
        axes.axvline(divider - 0.5, color="grey", linewidth=0.8)
    axes.set_xticks(x, labels, rotation=45, ha="right")
    axes.set_ylabel(ylabel)
    if title:
        axes.set_title(title, fontsize=9)
    axes.legend(fontsize=8)
    figure.tight_layout()
    _save(figure, path)
    plt.close(figure)


def _save(figure, path: Path) -> None:
    import io
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=120, format="png")
    write_bytes(path.parent, path.name, buffer.getvalue())


def _csv(rows: list[list]) -> bytes:
    import io
    text = io.StringIO(newline="")
    csv.writer(text).writerows(rows)
    return text.getvalue().encode()


def bar_chart(results_list: list[dict], path: Path) -> None:
    normalised = results_list[0].get("baseline", "AlexNet") is not None
    field = "ce" if normalised else "errors"
    names = [n for n in image_names(results_list[0].get("task", "imagenet-c"))[0]
             if any(n in r[field] for r in results_list)]
    series = []
    for results in results_list:
        if normalised:
            values, label = [results["ce"].get(n, np.nan) for n in names], f"mCE {_fmt(results['mce'], 1)}"
        else:
            values = [100 * float(np.mean(list(results["errors"][n].values()))) if n in results["errors"] else np.nan
                      for n in names]
            label = "mean top-1 error"
        series.append((f"{results['model']['name']} ({label})", values))
    grouped_bars(series, [SHORT.get(n, n) for n in names],
                 "Corruption Error (%)" if normalised else "Top-1 error (%), mean over severities", path,
                 reference=baseline_of(results_list)[0] if normalised else None)


def write_results(results: dict, out: Path) -> None:
    if scored_as(results) == "sequences":
        return write_p_results(results, out)
    make_folders(out)
    write_bytes(out, "results.json", json.dumps(results, indent=1, sort_keys=True).encode())
    rows = [["corruption", "severity", "top1_error", "ce", "relative_ce"]]
    if results["clean_error"] is not None:
        rows.append(["clean", 0, f"{results['clean_error']:.6f}", "", ""])
    for name in image_names(results.get("task", "imagenet-c"))[0]:
        for severity, error in sorted(results["errors"].get(name, {}).items()):
            rows.append([name, severity, f"{error:.6f}", _fmt(results["ce"].get(name), 3),
                         _fmt(results["relative_ce"].get(name), 3)])
    write_bytes(out, "results.csv", _csv(rows))
    report = [f"# {TASKS[results['task']].title} results: {_md(results['model']['name'])}\n",
              f"Data: `{results['data']['path']}` ({results['data']['kind']}); device {results['device']}; "
              f"{results['images_per_second']} images/s.\n", markdown_tables([results]),
              "![CE per corruption](ce.png)\n"]
    write_bytes(out, "report.md", "\n".join(report).encode())
    bar_chart([results], out / "ce.png")


# ------------------------------------------------------------------ ImageNet-P

P_SHORT = {"gaussian_noise": "Gauss.", "shot_noise": "Shot", "motion_blur": "Motion", "zoom_blur": "Zoom",
           "snow": "Snow", "brightness": "Bright", "translate": "Translate", "rotate": "Rotate", "tilt": "Tilt",
           "scale": "Scale", "speckle_noise": "Speckle", "gaussian_blur": "G. Blur", "spatter": "Spatter",
           "shear": "Shear"}


def _cell(results: dict, perturbation: str, difficulty: int = 1) -> dict | None:
    return results["perturbations"].get(perturbation, {}).get(str(difficulty))


def p_tables(results_list: list[dict]) -> str:
    """Rows like the paper's Table 3 (FR, mFR) and Table 4 (T5D, mT5D) over the 10 test
    perturbations at difficulty 1; without a baseline, FP (%) and uT5D unnormalised. Then every
    other measurement (validation perturbations, difficulties 2-3), never in the means."""
    from perturbations import TEST
    baseline = results_list[0].get("baseline") if results_list else None
    out = []
    for title, rate, mean, raw, scale in (("Flip Rate (FR) and mFR", "fr", "mfr", "fp", 100.0),
                                          ("Top-5 Distance (T5D) and mT5D", "t5d", "mt5d", "ut5d", 1.0)):
        head = ["Network", "Error", f"m{rate.upper()}" if baseline else "-"] + [P_SHORT[p] for p in TEST]
        if baseline:
            out.append(f"### {title} ({baseline} = 100; difficulty 1)\n")
        else:
            out.append(f"### {'Flip probability (%)' if raw == 'fp' else 'Unnormalised top-5 distance'}; "
                       "no baseline to normalise by (give --baseline results.json)\n")
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        if baseline:
            out.append(f"| {baseline} | {_fmt(43.5 if baseline == 'AlexNet' else None, 1)} | 100.0 | "
                       + " | ".join("100" for _ in TEST) + " |")
        for results in results_list:
            clean = None if results["clean_error"] is None else 100 * results["clean_error"]
            if baseline:
                values = [_fmt(_rate(results, rate, p, 1)) for p in TEST]
                row = [_md(results["model"]["name"]), _fmt(clean, 1), _fmt(results[mean], 1)] + values
            else:
                row = [_md(results["model"]["name"]), _fmt(clean, 1), "-"] + [
                    _fmt(None if _cell(results, p) is None else scale * _cell(results, p)[raw], 2) for p in TEST]
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    out += ["### Every measurement (FP, uT5D and Zipf distance per perturbation and difficulty; only difficulty 1 "
            "of the 10 test perturbations enters mFR and mT5D)\n",
            "| Network | Perturbation | Difficulty | Videos | FP (%) | uT5D | Zipf | FR | T5D |",
            "|---|---|---|---|---|---|---|---|---|"]
    for results in results_list:
        for perturbation, cells in results["perturbations"].items():
            for difficulty, cell in sorted(cells.items()):
                out.append(f"| {_md(results['model']['name'])} | {_md(perturbation)} | {difficulty} | {cell['videos']} | "
                           f"{100 * cell['fp']:.2f} | {cell['ut5d']:.3f} | {cell['zipf']:.5f} | "
                           f"{_fmt(_rate(results, 'fr', perturbation, difficulty))} | "
                           f"{_fmt(_rate(results, 't5d', perturbation, difficulty))} |")
    notes = []
    for results in results_list:
        left = results["data"].get("left_out") or []
        if left:
            notes.append(f"- {_md(results['model']['name'])}: {len(left)} left out, e.g. {left[0]} (all under "
                         "data.left_out in results.json).")
        if results.get("missing"):
            notes.append(f"- {_md(results['model']['name'])}: test perturbations not measured: "
                         f"{', '.join(results['missing'])}; mFR and mT5D left out.")
    return "\n".join(out + [""] + notes) + "\n"


def _rate(results: dict, field: str, perturbation: str, difficulty) -> float | None:
    """FR or T5D of a perturbation at a difficulty (None where no baseline value exists)."""
    return results[field].get(perturbation, {}).get(str(difficulty))


def fr_chart(results_list: list[dict], path: Path) -> None:
    """FR per perturbation (difficulty 1) against the baseline's 100, or FP without one."""
    from perturbations import TEST, VALIDATION
    baseline = results_list[0].get("baseline")
    names = [p for p in TEST + VALIDATION if any(_cell(r, p) is not None for r in results_list)]
    series = []
    for results in results_list:
        if baseline:
            values = [_rate(results, "fr", p, 1) if _rate(results, "fr", p, 1) is not None else np.nan for p in names]
            series.append((f"{results['model']['name']} (mFR {_fmt(results['mfr'], 1)})", values))
        else:
            series.append((results["model"]["name"],
                           [100 * _cell(results, p)["fp"] if _cell(results, p) else np.nan for p in names]))
    grouped_bars(series, [P_SHORT[n] for n in names], "Flip Rate (%)" if baseline else "Flip probability (%)", path,
                 reference=baseline, divider=names.index(VALIDATION[0]) if VALIDATION[0] in names else None,
                 title="ImageNet-P, difficulty 1 (validation perturbations right of the line)")


def write_p_results(results: dict, out: Path) -> None:
    make_folders(out)
    write_bytes(out, "results.json", json.dumps(results, indent=1, sort_keys=True).encode())
    rows = [["perturbation", "difficulty", "sequence", "videos", "fp", "ut5d", "zipf", "fr", "t5d",
                         "first_frame_error"]]
    for perturbation, cells in results["perturbations"].items():
        for difficulty, cell in sorted(cells.items()):
            rows.append([perturbation, difficulty, cell["kind"], cell["videos"], f"{cell['fp']:.6f}",
                         f"{cell['ut5d']:.6f}", f"{cell['zipf']:.6f}",
                         _fmt(_rate(results, "fr", perturbation, difficulty), 3),
                         _fmt(_rate(results, "t5d", perturbation, difficulty), 3),
                         f"{results['first_frame_error'][cell['kind']]:.6f}"])
    write_bytes(out, "results.csv", _csv(rows))
    clean = results["clean_error"]
    report = [f"# ImageNet-P results: {_md(results['model']['name'])}\n",
              f"Data: `{results['data']['path']}` ({results['data']['kind']}); device {results['device']}; "
              f"{results['frames_per_second']} frames/s. Error: top-1 error on the noise sequences' first frames "
              f"(the clean crops): {_fmt(None if clean is None else 100 * clean, 2)}%.\n",
              p_tables([results]), "![FR per perturbation](fr.png)\n"]
    write_bytes(out, "report.md", "\n".join(report).encode())
    fr_chart([results], out / "fr.png")


# ------------------------------------------------------------------ several models

def read_results(path: str) -> dict:
    """A results.json written by ``score`` (ImageNet-C or -P); anything else is a ``ScoreError``."""
    from .errors import ScoreError
    try:
        results = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ScoreError(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScoreError(f"{path}: not a JSON file ({type(exc).__name__})") from None
    if not isinstance(results, dict) or not ({"model", "errors", "ce"} <= set(results)
                                             or {"model", "perturbations", "fr"} <= set(results)):
        raise ScoreError(f"{path}: not a results.json written by `python -m pipeline score`")
    results.setdefault("task", "imagenet-p" if "perturbations" in results else "imagenet-c")
    problem = _malformed(results)
    if problem:
        raise ScoreError(f"{path}: not a results.json written by `python -m pipeline score` ({problem})")
    return results


def _number(value, none: bool = True) -> bool:
    import math
    return (value is None and none) or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                        and math.isfinite(value))


def _malformed(results: dict) -> str | None:
    """What a report needs of a results.json and does not find (a missing key, a string where a
    number belongs), or None."""
    def numbers(table, depth: int) -> bool:
        if not isinstance(table, dict):
            return False
        return all(numbers(v, depth - 1) if depth > 1 else _number(v) for v in table.values())

    model = results.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        return "model.name is not a string"
    if not _number(results.get("clean_error")):
        return "clean_error is not a number"
    if not isinstance(results.get("data", {}), dict) or not isinstance(results.get("missing", []), list):
        return "data or missing is malformed"
    if scored_as(results) is None:
        return f"task {results['task']!r} is not a benchmark of this version"
    if scored_as(results) == "images":
        for key, depth in (("errors", 2), ("ce", 1), ("relative_ce", 1)):
            if not numbers(results.get(key), depth):
                return f"{key} is not a table of numbers"
        for key in ("mce", "relative_mce"):
            if not _number(results.get(key)):
                return f"{key} is not a number"
    else:
        for key, depth in (("fr", 2), ("t5d", 2), ("first_frame_error", 1)):
            if not numbers(results.get(key, {}), depth):
                return f"{key} is not a table of numbers"
        for key in ("mfr", "mt5d"):
            if not _number(results.get(key)):
                return f"{key} is not a number"
        cells = results.get("perturbations")
        if not isinstance(cells, dict) or not all(
                isinstance(c, dict) and all(isinstance(cell, dict) and all(_number(cell.get(f), False)
                                                                          for f in ("fp", "ut5d", "zipf", "videos"))
                                            for cell in c.values()) for c in cells.values()):
            return "perturbations is not a table of measurements"
    return None


def leaderboard(results_list: list[dict]) -> tuple[str, list[dict]]:
    """One row per model (its ImageNet-C and ImageNet-P results joined by name), sorted by
    mCE: clean error, mCE, relative mCE, mFR, mT5D."""
    models: dict[str, dict] = {}
    for results in results_list:
        row = models.setdefault(results["model"]["name"], {"name": results["model"]["name"]})
        if scored_as(results) == "images":
            row.update(error=results["clean_error"], mce=results["mce"], relative_mce=results["relative_mce"])
        else:
            row.update(mfr=results["mfr"], mt5d=results["mt5d"])
            row.setdefault("error", results["clean_error"])
    rows = sorted(models.values(), key=lambda r: (r.get("mce") is None, r.get("mce") or 0, r["name"]))
    out = ["### Leaderboard (sorted by mCE; Error: clean top-1 error, from ImageNet-C's --clean where scored)\n",
           "| Network | Error | mCE | Rel. mCE | mFR | mT5D |", "|---|---|---|---|---|---|"]
    for row in rows:
        error = row.get("error")
        out.append(f"| {_md(row['name'])} | {_fmt(None if error is None else 100 * error, 1)} | {_fmt(row.get('mce'), 1)} | "
                   f"{_fmt(row.get('relative_mce'), 1)} | {_fmt(row.get('mfr'), 1)} | {_fmt(row.get('mt5d'), 1)} |")
    return "\n".join(out) + "\n", rows


def scatter(rows: list[dict], path: Path) -> None:
    """As the paper's Figures 3-4: mCE against clean error, and mFR against mCE."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    for axes, (x_key, y_key, x_label, y_label) in ((left, ("error", "mce", "Clean error (%)", "mCE (%)")),
                                                   (right, ("mce", "mfr", "mCE (%)", "mFR (%)"))):
        for row in rows:
            x, y = row.get(x_key), row.get(y_key)
            if x is None or y is None:
                continue
            x = 100 * x if x_key == "error" else x
            axes.scatter([x], [y])
            axes.annotate(row["name"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        axes.set_xlabel(x_label)
        axes.set_ylabel(y_label)
        axes.grid(alpha=0.3)
    figure.tight_layout()
    _save(figure, path)
    plt.close(figure)


def compare(paths: list[str], out: str | None) -> str:
    """ImageNet-C and ImageNet-P results of several models in one comparison: a leaderboard,
    the paper's tables for each benchmark present, charts."""
    results_list = [read_results(p) for p in paths]
    images: dict[str, list[dict]] = {}  # per image benchmark (ImageNet-C, C-bar): their corruptions differ
    for results in results_list:
        if scored_as(results) == "images":
            images.setdefault(results["task"], []).append(results)
    c_results = [r for group in images.values() for r in group]
    p_results = [r for r in results_list if scored_as(r) == "sequences"]
    board, rows = leaderboard(results_list)
    parts = [board] if p_results or len(c_results) > 1 else []
    for task, group in images.items():
        parts += [f"## {TASKS[task].title}\n", markdown_tables(group)]
    if p_results:
        parts += ["## ImageNet-P\n", p_tables(p_results)]
    table = "\n".join(parts)
    if out:
        make_folders(out)
        pictures = []
        for task, group in images.items():
            chart = "comparison.png" if task == "imagenet-c" else f"comparison-{task}.png"
            bar_chart(group, Path(out) / chart)
            pictures.append(f"![{TASKS[task].title}]({chart})")
        if p_results:
            fr_chart(p_results, Path(out) / "comparison-p.png")
            pictures.append("![FR](comparison-p.png)")
        scatter(rows, Path(out) / "scatter.png")
        pictures.append("![mCE against clean error; mFR against mCE](scatter.png)")
        write_bytes(out, "comparison.md", ("# ImageNet-C and ImageNet-P comparison\n\n" + table + "\n"
                                           + "\n".join(pictures) + "\n").encode())
    return table
