"""``make imagenet-c``: the run, top to bottom.

    plan_run -> prepare -> execute (Dask: load a shard once, then one unit per corruption)
             -> finalise

A unit is (shard of source images, corruption): it produces every severity of that
corruption for the shard and writes one region of every output. Each output image's
generator comes from (root seed, variant, corruption, severity, image id) alone, so the
bytes do not depend on workers, shard size, scheduling or retries. Finished units are
recorded in ``manifest.jsonl``; a re-run skips them.
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from corruptions import __version__, corrupt, load_variant, rng_for

from .preprocess import preprocess
from .readers import Item, load_pixels, read_source
from .runconfig import identity, identity_digest
from .writers import CifarNpy, JpegTree, ZarrStore, atomic_write_bytes

MANIFEST, FAILURES, RUN = "manifest.jsonl", "failures.jsonl", "run.json"


class RunError(RuntimeError):
    pass


@dataclass(frozen=True)
class Unit:
    """Immutable key of one unit of work; it maps to rows [start, stop) of every output."""
    corruption: str
    shard: int
    start: int
    stop: int

    @property
    def key(self) -> str:
        return f"{self.corruption}/{self.shard:06d}"


@dataclass(frozen=True)
class UnitContext:
    """What a worker needs to run any unit of this run (small, picklable)."""
    variant: str
    seed: int
    severities: tuple[int, ...]
    writers: tuple
    total: int


@dataclass
class Plan:
    config: dict
    out: Path
    items: tuple[Item, ...]
    classes: tuple[str, ...]
    image_size: tuple[int, int]
    writers: tuple
    version: str = __version__
    units: list[Unit] = field(default_factory=list)

    @property
    def corruptions(self) -> list[str]:
        return self.config["corruptions"]

    @property
    def severities(self) -> list[int]:
        return self.config["severities"]

    @property
    def shard_size(self) -> int:
        return self.config["shard_size"]

    def shard_items(self, shard: int) -> list[Item]:
        return list(self.items[shard * self.shard_size:(shard + 1) * self.shard_size])

    def context(self) -> UnitContext:
        return UnitContext(self.config["variant"], self.config["seed"], tuple(self.severities), self.writers,
                           len(self.items))


@dataclass(frozen=True)
class Shard:
    images: np.ndarray  # (n, H, W, 3) uint8, zeros where loading failed
    ok: np.ndarray  # (n,) bool
    failures: tuple[dict, ...]


@dataclass
class Summary:
    out: Path
    units_run: int
    units_skipped: int
    images: int
    outputs_written: int
    failures: list[dict]
    seconds: float
    paths: list[str]


# ---------------------------------------------------------------- plan and prepare (client)

def plan_run(config: dict) -> Plan:
    if not config.get("source"):
        raise RunError("no source: give --source PATH (or `source:` in the run config)")
    if not config.get("out"):
        raise RunError("no output folder: give --out PATH (or `out:` in the run config)")
    source = read_source(config["reader"], config["source"])
    if not source.items:
        raise RunError(f"source {config['source']} holds no images for reader {config['reader']!r}")
    out = Path(config["out"]).expanduser().resolve()
    outputs = config["outputs"]
    writers = []
    for fmt in outputs["formats"]:
        if fmt == "jpeg":
            writers.append(JpegTree(str(out), outputs["jpeg"]["quality"], outputs["jpeg"]["optimize"]))
        elif fmt == "zarr":
            writers.append(ZarrStore(str(out / f"{config['name']}.zarr"), config["shard_size"],
                                     outputs["zarr"]["compressor"], outputs["zarr"]["level"]))
        else:
            writers.append(CifarNpy(str(out)))
    plan = Plan(config, out, source.items, source.classes, load_variant(config["variant"]).size, tuple(writers))
    shards = range(-(-len(source.items) // plan.shard_size))
    plan.units = [Unit(c, s, s * plan.shard_size, min((s + 1) * plan.shard_size, len(source.items)))
                  for s in shards for c in plan.corruptions]
    return plan


def read_manifest(out: Path) -> dict[str, dict]:
    records = {}
    path = out / MANIFEST
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill: that unit runs again
            records[record["unit"]] = record
    return records


def prepare(plan: Plan) -> dict[str, dict]:
    """Create the outputs (or check that OUT holds this same run) and return finished units."""
    plan.out.mkdir(parents=True, exist_ok=True)
    run_file = plan.out / RUN
    digest = identity_digest(plan.config)
    if run_file.exists():
        previous = json.loads(run_file.read_text())
        if previous.get("identity_digest") != digest:
            differing = [k for k, v in identity(plan.config).items() if previous.get("identity", {}).get(k) != v]
            raise RunError(f"{plan.out} holds another run (differs in: {', '.join(differing) or 'settings'}); "
                           "use a new --out, or remove that folder")
    else:
        atomic_write_bytes(run_file, json.dumps({"identity": identity(plan.config), "identity_digest": digest,
                                                 "config": plan.config, "version": plan.version},
                                                indent=1, sort_keys=True).encode())
    for writer in plan.writers:
        writer.prepare(plan)
    return {k: r for k, r in read_manifest(plan.out).items() if r.get("run") == digest}


# ---------------------------------------------------------------- the two tasks (workers)

def load_shard(items: list[Item], variant: str) -> Shard:
    """Decode and preprocess a shard once for all its units; unreadable images are reported."""
    size = load_variant(variant).size
    images = np.zeros((len(items),) + tuple(size) + (3,), np.uint8)
    ok = np.zeros(len(items), bool)
    failures = []
    for index, item in enumerate(items):
        try:
            clean = preprocess(load_pixels(item), variant)
            if clean.shape[:2] != tuple(size):
                raise ValueError(f"preprocessed to {clean.shape[:2]}, expected {tuple(size)}")
            images[index], ok[index] = clean, True
        except Exception as exc:  # noqa: BLE001 - any decoder error is this file's failure, not the run's
            failures.append({"image_id": item.image_id, "path": item.path if item.kind != "tar" else
                             f"{item.path}:{item.name}", "reason": f"{type(exc).__name__}: {exc}"})
    return Shard(images, ok, tuple(failures))


def run_unit(unit: Unit, shard: Shard, items: list[Item], context: UnitContext) -> dict:
    variant = load_variant(context.variant)
    digests: dict[str, dict[str, str]] = defaultdict(dict)
    for position, severity in enumerate(context.severities):
        block = np.zeros_like(shard.images)
        for index, item in enumerate(items):
            if shard.ok[index]:
                rng = rng_for(context.seed, context.variant, unit.corruption, severity, item.image_id)
                block[index] = corrupt(shard.images[index], unit.corruption, severity, rng, variant)
        for writer in context.writers:
            digests[type(writer).__name__][str(severity)] = writer.write(
                unit.corruption, severity, position, unit.start, items, block, shard.ok, context.total)
    return {"unit": unit.key, "corruption": unit.corruption, "shard": unit.shard, "start": unit.start,
            "stop": unit.stop, "images": int(shard.ok.sum()), "sha256": dict(digests),
            "failures": list(shard.failures)}


# ---------------------------------------------------------------- execute (client drives Dask)

class Progress:
    def __init__(self, units: int, outputs: int, stream=sys.stderr):
        self.units, self.outputs, self.stream = units, outputs, stream
        self.units_done = self.outputs_done = 0
        self.printed = -1
        self.started = self.last = time.monotonic()

    def update(self, outputs: int, final: bool = False) -> None:
        self.units_done += 0 if final else 1
        self.outputs_done += outputs
        now = time.monotonic()
        if final and self.printed == self.outputs_done:
            return
        if not final and now - self.last < 1.0 and self.units_done < self.units:
            return
        self.last, self.printed = now, self.outputs_done
        rate = self.outputs_done / max(now - self.started, 1e-9)
        left = (self.outputs - self.outputs_done) / rate if rate > 0 else float("inf")
        eta = time.strftime("%H:%M:%S", time.gmtime(left)) if np.isfinite(left) else "--:--:--"
        print(f"units {self.units_done}/{self.units}  images {self.outputs_done}/{self.outputs} "
              f"({100 * self.outputs_done / max(self.outputs, 1):.0f}%)  {rate:.1f} images/s  ETA {eta}",
              file=self.stream, flush=True)


def execute(plan: Plan, client, todo: list[Unit], on_done) -> None:
    """Submit shard loads and their units, keeping a bounded window of shards in flight so
    memory stays flat however large the dataset."""
    from distributed import as_completed

    context = client.scatter(plan.context(), broadcast=True)
    by_shard: dict[int, list[Unit]] = defaultdict(list)
    for unit in todo:
        by_shard[unit.shard].append(unit)
    queue = iter(sorted(by_shard))
    window = max(2, 2 * sum(client.nthreads().values()))
    in_flight: dict[int, list] = {}  # shard -> [shard future, units left]
    completed = as_completed()

    def launch() -> bool:
        shard = next(queue, None)
        if shard is None:
            return False
        items = plan.shard_items(shard)
        loaded = client.submit(load_shard, items, plan.config["variant"], pure=False, priority=-shard)
        for unit in by_shard[shard]:
            completed.add(client.submit(run_unit, unit, loaded, items, context, pure=False, priority=-shard))
        in_flight[shard] = [loaded, len(by_shard[shard])]
        return True

    for _ in range(window):
        if not launch():
            break
    for future in completed:
        record = future.result()
        on_done(record)
        entry = in_flight[record["shard"]]
        entry[1] -= 1
        if entry[1] == 0:
            del in_flight[record["shard"]]  # releases the decoded shard on its worker
            launch()


# ---------------------------------------------------------------- finalise and the whole run

def finalise(plan: Plan, records: dict[str, dict]) -> tuple[list[dict], list[str]]:
    failures = {f["image_id"]: f for r in records.values() for f in r["failures"]}
    ordered = sorted(failures.values(), key=lambda f: f["image_id"])
    atomic_write_bytes(plan.out / FAILURES, "".join(json.dumps(f) + "\n" for f in ordered).encode())
    paths = []
    for writer in plan.writers:
        paths += writer.finalise(plan, ordered)
    return ordered, paths


def generate(config: dict, client=None, stream=sys.stderr) -> Summary:
    started = time.monotonic()
    plan = plan_run(config)
    finished = prepare(plan)
    todo = [u for u in plan.units if u.key not in finished]
    per_unit = len(plan.severities)
    progress = Progress(len(plan.units), sum((u.stop - u.start) * per_unit for u in plan.units), stream)
    for unit in plan.units:
        if unit.key in finished:
            progress.units_done += 1
            progress.outputs_done += (unit.stop - unit.start) * per_unit
    records = dict(finished)
    if todo:
        digest = identity_digest(plan.config)
        with open(plan.out / MANIFEST, "a") as manifest:
            def on_done(record):
                record["run"] = digest
                manifest.write(json.dumps(record, sort_keys=True) + "\n")
                manifest.flush()
                os.fsync(manifest.fileno())
                records[record["unit"]] = record
                progress.update((record["stop"] - record["start"]) * per_unit)

            if client is None:
                from .cluster import open_client
                with open_client(config["cluster"]) as own_client:
                    if own_client.dashboard_link:
                        print(f"dashboard: {own_client.dashboard_link}", file=stream, flush=True)
                    execute(plan, own_client, todo, on_done)
            else:
                execute(plan, client, todo, on_done)
    progress.update(0, final=True)
    failures, paths = finalise(plan, records)
    return Summary(plan.out, len(todo), len(plan.units) - len(todo), len(plan.items),
                   sum(r["images"] for r in records.values()) * per_unit, failures,
                   time.monotonic() - started, paths)
