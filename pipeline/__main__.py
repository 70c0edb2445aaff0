"""Command line: ``python -m pipeline generate CONFIG --source PATH --out PATH ...``."""
from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import threading

from corruptions.settings import ConfigError

from .formats import formats_for, mp4_tree
from .readers import SourceError
from .runconfig import SEQUENCE_GROUPS, load_run_config, parse_override
from .tasks import scoring_kind, task_spec


def run_overrides(args, names_key: str = "corruptions", **values) -> list[dict]:
    """Run config overrides from the flags generate and score --on-the-fly share (--seed,
    --variant, --only: the task's ``names_key``, --severities) and from ``values`` (None: not given)."""
    values.update(seed=args.seed, variant=args.variant)
    overrides = [{key: value} for key, value in values.items() if value is not None]
    if args.only:
        overrides.append({names_key: list(args.only)})
    if args.severities:
        overrides.append({"severities": list(args.severities)})
    return overrides


def sequences_override(kinds: list[str]) -> dict:
    """``--sequences`` / ``--only`` for ImageNet-P: a list of kinds, or one group's name."""
    return {"sequences": kinds[0] if len(kinds) == 1 and kinds[0] in SEQUENCE_GROUPS else list(kinds)}


def _on_the_fly_config(args) -> dict:
    """The run config ``score --on-the-fly`` produces: --only names corruptions (ImageNet-C) or
    sequence kinds (ImageNet-P)."""
    from .scoring import ScoreError
    if not args.clean:
        raise ScoreError("--on-the-fly needs --clean VAL: the clean source, read as the run config's reader reads it")
    spec = task_spec(load_run_config(args.on_the_fly).task)
    if spec.names_key != "sequences":
        if args.mp4_round_trip and mp4_tree.NAME not in formats_for(spec.dims):
            raise ScoreError(f"--mp4-round-trip is for ImageNet-P run configs; {args.on_the_fly} is {spec.name}")
        return load_run_config(args.on_the_fly, run_overrides(args, spec.names_key, source=args.clean))
    if args.severities and not spec.severities:
        raise ScoreError("--severities: ImageNet-P has no severities; its noise difficulties are sequence kinds "
                         "(--only gaussian_noise_2 ...)")
    only, args.only = args.only, None
    overrides = run_overrides(args, source=args.clean) + ([sequences_override(only)] if only else [])
    return load_run_config(args.on_the_fly, overrides)


def _generate(args) -> int:
    from .engine import generate
    spec = task_spec(load_run_config(args.config).task)
    if args.only and spec.names_key == "sequences":  # one meaning of --only
        if args.sequences:
            raise ConfigError("give the ImageNet-P sequence kinds with --only or with --sequences, not both")
        args.sequences, args.only = args.only, None
    overrides = run_overrides(args, spec.names_key, source=args.source, out=args.out, shard_size=args.shard_size,
                              labels=args.labels)
    if args.formats:
        overrides.append({"outputs": {"formats": list(args.formats)}})
    if args.sequences:
        overrides.append(sequences_override(list(args.sequences)))
    if args.scheduler:
        overrides.append({"cluster": {"kind": "address", "address": args.scheduler}})
    if args.allow_failures:
        overrides.append({"allow_failures": True})
    overrides = [parse_override(text) for text in args.set or []] + overrides
    config = load_run_config(args.config, overrides, workers=args.workers)
    summary = generate(config)
    made = task_spec(config.task).noun
    print(f"done in {summary.seconds:.1f} s: {summary.units_run} units run, {summary.units_skipped} already done; "
          f"{summary.images} source images, {summary.outputs_written} {made}")
    for path in summary.paths:
        print(f"  {path}")
    if summary.failures:
        print(f"{len(summary.failures)} source images could not be read: see {summary.out / 'failures.jsonl'}")
        return 0 if config.allow_failures else 1
    return 0


def _score(args) -> int:
    from .scoring import ScoreError, load_scoring_config, markdown_tables, p_tables, score
    if (args.data is None) == (args.on_the_fly is None):
        raise ScoreError("give --data PATH (a generated benchmark) or --on-the-fly CONFIG with --clean VAL")
    if args.mp4_round_trip and args.on_the_fly is None:
        raise ScoreError("--mp4-round-trip goes with --on-the-fly (materialised MP4s are read as they are)")
    on_the_fly = _on_the_fly_config(args) if args.on_the_fly is not None else None
    config = load_scoring_config(args.config, auto=True, overrides={"batch_size": args.batch_size, "workers": args.workers,
                                               "device": args.device, "amp": args.amp, "baseline": args.baseline})
    results = score(args.model, args.data, args.clean, args.out, args.weights, config, args.classes,
                    args.allow_partial, name=args.name, random_weights=args.random_weights, on_the_fly=on_the_fly,
                    mp4_round_trip=args.mp4_round_trip)
    if scoring_kind(results["task"]) == "sequences":
        print(p_tables([results]))
        chart, bad = "fr.png", results["data"]["left_out"]
        what = "videos or folders could not be scored and were left out"
    else:
        print(markdown_tables([results]))
        chart, bad = "ce.png", results["data"]["unreadable"]
        what = "files could not be read and were left out of their cells' errors"
    if args.out:
        print(f"results: {args.out}/results.json, results.csv, report.md, {chart}")
    if bad:
        print(f"{len(bad)} {what}:", file=sys.stderr)
        for line in bad:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


def _report(args) -> int:
    from .scoring import compare
    print(compare(args.results, args.out))
    return 0


def _publish(args) -> int:
    from .publish import publish
    tarballs = publish(args.out, args.to, args.compress, args.workers, args.check, tuple(args.format),
                       args.shard_mb << 20)
    for name, digest, size in tarballs:
        print(f"{digest}  {name}  ({size / 2**20:.1f} MiB)")
    print(f"release: {args.to} (SHA256SUMS, README.md, croissant.json, MEMBERS/, run.json)")
    return 0


def _verify(args) -> int:
    from .publish import verify
    problems = verify(args.dist, args.source, args.sample)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    print("verified: everything holds" if not problems else f"{len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


def user_errors() -> tuple[type, ...]:
    """The errors that are a user's mistake (a config, a source, a model, data, a release):
    one `error:` line and exit status 2, never a traceback."""
    from .engine import RunError
    from .files import UnsafePath
    from .formats import DataError
    from .publish import PublishError
    from .scoring import ScoreError
    return ConfigError, SourceError, RunError, DataError, ScoreError, PublishError, UnsafePath


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch system's or a user's kill): stopped as Ctrl-C stops, exit 143."""


# environment errors that a user fixes (a read-only or full folder, permissions): one line
USER_OS_ERRORS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG,
                  errno.ENOTDIR, errno.EISDIR, errno.ENOENT, errno.ELOOP)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description="ImageNet-C generation and scoring")
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="materialise a corrupted dataset from a run config")
    gen.add_argument("config", help="run config: a shipped one by name (imagenet-c, imagenet-c-inception, "
                     "imagenet-64-c, tiny-imagenet-c, cifar-10-c, cifar-100-c; imagenet-p, imagenet-p-inception, "
                     "imagenet-64-p, tiny-imagenet-p, cifar-10-p, cifar-100-p) or a YAML path")
    gen.add_argument("--source", help="the validation set (folder or tar, as the config's reader expects); "
                     "required unless the run config sets `source`")
    gen.add_argument("--out", help="output folder; required unless the run config sets `out`")
    gen.add_argument("--labels", help="LOC_val_solution.csv for the flat and tar layouts, where it is not beside "
                     "the source")
    gen.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://10.0.0.1:8786")
    gen.add_argument("--workers", type=int, help="local worker processes (or SLURM/PBS jobs)")
    gen.add_argument("--only", nargs="+", metavar="CORRUPTION", help="only these corruptions")
    gen.add_argument("--severities", nargs="+", type=int, metavar="S", help="only these severities")
    gen.add_argument("--sequences", nargs="+", metavar="KIND", help="ImageNet-P: only these sequence kinds (or one "
                     "group: test, validation, difficulties, all)")
    gen.add_argument("--formats", nargs="+", metavar="FORMAT", help="jpeg, zarr, cifar_npy (ImageNet-C); mp4, zarr, "
                     "cifar_npy (ImageNet-P)")
    gen.add_argument("--seed", type=int, help="root seed (default 0): every image's streams derive from it")
    gen.add_argument("--shard-size", type=int, help="source images per unit of work and per Zarr shard (default 64; "
                     "16 for ImageNet-P)")
    gen.add_argument("--variant", help="imagenet, inception, imagenet64, tiny or cifar (constants and preprocessing)")
    gen.add_argument("--allow-failures", action="store_true", help="exit 0 even when some images were unreadable")
    gen.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override any config key, e.g. --set outputs.zarr.level=9 --set cluster.memory_limit=4GiB")
    gen.set_defaults(run=_generate)

    sc = commands.add_parser("score", help="score a PyTorch model on ImageNet-C (errors, CE, mCE, relative mCE) or "
                             "ImageNet-P (FP, FR, mFR, uT5D, T5D, mT5D, Zipf), whichever --data holds")
    sc.add_argument("--model", required=True,
                    help="TorchScript file, module.py:factory, torchvision:NAME or timm:NAME")
    sc.add_argument("--weights", help="state dict to load into the model")
    sc.add_argument("--name", help="the model's name in reports (default: from --model)")
    sc.add_argument("--data", help="ImageNet-C: a JPEG tree, our Zarr store, a CIFAR-10-C folder; ImageNet-P: an MP4 "
                    "tree (<sequence>/<class>/<video>.mp4, or one sequence's folder), our Zarr store, a CIFAR-10-P "
                    "folder")
    sc.add_argument("--on-the-fly", metavar="CONFIG", help="no --data: produce the benchmark of this run config "
                    "(imagenet-c, cifar-10-c, imagenet-p, ...) in the loader from --clean (the source), byte for "
                    "byte as `generate` stores it (ImageNet-P: the lossless frames of its Zarr store)")
    sc.add_argument("--mp4-round-trip", action="store_true", help="--on-the-fly ImageNet-P: encode and decode each "
                    "sequence with the run config's x264 settings, the pixels of its MP4 tree (the official form)")
    sc.add_argument("--only", nargs="+", metavar="NAME", help="--on-the-fly: only these corruptions (ImageNet-C) or "
                    "sequence kinds / one group (ImageNet-P)")
    sc.add_argument("--severities", nargs="+", type=int, metavar="S", help="--on-the-fly: only these severities")
    sc.add_argument("--seed", type=int, help="--on-the-fly: the root seed (default the run config's, 0)")
    sc.add_argument("--variant", help="--on-the-fly: another variant than the run config's")
    sc.add_argument("--clean", help="ImageNet-C: clean validation set in class folders (for the clean error and "
                    "relative CE); ImageNet-P measures it on the noise sequences' first frames")
    sc.add_argument("--out", help="results folder: results.json, results.csv, report.md, ce.png (fr.png)")
    sc.add_argument("--config", help="scoring YAML (default configs/scoring.yaml)")
    sc.add_argument("--classes", help="text file of class names in index order (default: ImageNet's 1000 wnids)")
    sc.add_argument("--batch-size", type=int)
    sc.add_argument("--workers", type=int, help="decoding processes")
    sc.add_argument("--device", choices=["auto", "cuda", "cpu"])
    sc.add_argument("--amp", choices=["bf16", "fp16"])
    sc.add_argument("--baseline", help="'alexnet' (default; ImageNet models) or another model's results.json of the "
                    "same benchmark (CIFAR, Tiny ImageNet: unnormalised without one)")
    sc.add_argument("--allow-partial", action="store_true",
                    help="score what is there: an incomplete store, empty cells; mCE over the corruptions present")
    sc.add_argument("--random-weights", action="store_true",
                    help="torchvision:/timm: models without --weights: score them randomly initialised (a smoke test) "
                         "instead of refusing when the library's pretrained weights cannot be had")
    sc.set_defaults(run=_score)

    pub = commands.add_parser("publish", help="release tarballs in the official layout, SHA256SUMS, dataset card, "
                              "Croissant metadata")
    pub.add_argument("out", help="the OUT folder of a finished generate run")
    pub.add_argument("--to", required=True, help="release folder (DIST)")
    pub.add_argument("--compress", choices=["gzip"], help="gzip the tarballs (the official releases are plain tar)")
    pub.add_argument("--workers", type=int, help="tarballs written at once (default: one per core)")
    pub.add_argument("--check", action="store_true", help="hash every file on the way and stop at one that changed "
                     "since generation (otherwise `verify` finds it)")
    pub.add_argument("--format", nargs="+", choices=["tree", "webdataset", "parquet"], default=["tree"],
                     help="release forms: tree (the official tarballs, the default), webdataset (tar shards per "
                          "cell, with a wids index) and/or parquet (the Hugging Face layout: data/<config>/*.parquet "
                          "and configs in README.md); for ImageNet-C, C-bar, ImageNet-P and CIFAR runs")
    pub.add_argument("--shard-mb", type=int, default=1024,
                     help="WebDataset shard and parquet file size in MiB (default 1024)")
    pub.set_defaults(run=_publish)

    ver = commands.add_parser("verify", help="check a release: checksums, every member, counts; with --source, "
                              "regenerate a sample and compare bytes")
    ver.add_argument("dist", help="release folder written by `publish`")
    ver.add_argument("--source", help="the clean validation set, to regenerate a sample from")
    ver.add_argument("--sample", type=int, default=8, help="images to regenerate (a seeded choice; default 8)")
    ver.set_defaults(run=_verify)

    rep = commands.add_parser("report", help="compare models: ImageNet-C and ImageNet-P results.json files in one "
                              "leaderboard (error, mCE, relative mCE, mFR, mT5D), the paper's tables, charts")
    rep.add_argument("results", nargs="+", help="results.json files written by `score` (matched by model name)")
    rep.add_argument("--out", help="folder for comparison.md and comparison.png")
    rep.set_defaults(run=_report)
    args = parser.parse_args(argv)
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}

    def interrupted(signum, frame):
        quiet_exit()
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        for number in previous:
            signal.signal(number, interrupted)
    try:
        return args.run(args)
    except KeyboardInterrupt as exc:
        print("\ninterrupted; re-run the same command to resume", file=sys.stderr, flush=True)
        return 143 if isinstance(exc, Terminated) else 130
    except user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in USER_OS_ERRORS:
            raise
        where = " ".join(str(f) for f in (exc.filename, exc.filename2) if f)
        print(f"error: {exc.strerror or exc}{': ' + where if where else ''}", file=sys.stderr)
        return 2
    finally:
        if main_thread:
            for number, handler in previous.items():
                signal.signal(number, handler)


def quiet_exit() -> None:
    """After Ctrl-C: the Dask cluster's own shutdown messages and worker tracebacks are noise
    (everything finished is on disk and a re-run resumes), so silence this process's logging
    and stderr before the cluster is torn down."""
    import logging
    logging.disable(logging.CRITICAL)
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(2)
    os.dup2(devnull, 2)
    sys.stderr = os.fdopen(saved, "w", closefd=False)


if __name__ == "__main__":
    sys.exit(main())
