"""Command line: ``python -m pipeline generate CONFIG --source PATH --out PATH ...``."""
from __future__ import annotations

import argparse
import sys

from .readers import SourceError
from .runconfig import RunConfigError, load_run_config, parse_override


def _generate(args) -> int:
    from .generate import RunError, generate
    overrides = [parse_override(text) for text in args.set or []]
    for key, value in (("source", args.source), ("out", args.out), ("seed", args.seed),
                       ("shard_size", args.shard_size), ("variant", args.variant)):
        if value is not None:
            overrides.append({key: value})
    if args.only:
        overrides.append({"corruptions": list(args.only)})
    if args.severities:
        overrides.append({"severities": list(args.severities)})
    if args.formats:
        overrides.append({"outputs": {"formats": list(args.formats)}})
    if args.scheduler:
        overrides.append({"cluster": {"kind": "address", "address": args.scheduler}})
    if args.workers is not None:
        overrides.append({"cluster": {"workers": args.workers, "jobs": args.workers}})
    if args.allow_failures:
        overrides.append({"allow_failures": True})
    try:
        config = load_run_config(args.config, overrides)
        summary = generate(config)
    except (RunConfigError, SourceError, RunError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"done in {summary.seconds:.1f} s: {summary.units_run} units run, {summary.units_skipped} already done; "
          f"{summary.images} source images, {summary.outputs_written} corrupted images")
    for path in summary.paths:
        print(f"  {path}")
    if summary.failures:
        print(f"{len(summary.failures)} source images could not be read: see {summary.out / 'failures.jsonl'}")
        return 0 if config["allow_failures"] else 1
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description="ImageNet-C generation and scoring")
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="materialise a corrupted dataset from a run config")
    gen.add_argument("config", help="run config YAML, e.g. configs/imagenet-c.yaml")
    gen.add_argument("--source", help="the validation set (folder or tar, as the config's reader expects)")
    gen.add_argument("--out", help="output folder")
    gen.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://10.0.0.1:8786")
    gen.add_argument("--workers", type=int, help="local worker processes (or SLURM/PBS jobs)")
    gen.add_argument("--only", nargs="+", metavar="CORRUPTION", help="only these corruptions")
    gen.add_argument("--severities", nargs="+", type=int, metavar="S", help="only these severities")
    gen.add_argument("--formats", nargs="+", metavar="FORMAT", help="jpeg, zarr, cifar_npy")
    gen.add_argument("--seed", type=int)
    gen.add_argument("--shard-size", type=int)
    gen.add_argument("--variant")
    gen.add_argument("--allow-failures", action="store_true", help="exit 0 even when some images were unreadable")
    gen.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override any config key, e.g. --set outputs.zarr.level=9 --set cluster.memory_limit=4GiB")
    gen.set_defaults(run=_generate)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
