"""The generation engine, top to bottom.

    plan_run -> prepare -> execute (Dask: load a shard once, then produce and write each key)
             -> finalise

A task (``task.py``) says which keys exist and how a key's block is produced; formats
(``formats/``) write blocks, each into the region its key names. Each output's random
generator comes from (root seed, task, variant, name, level, image id) alone, so the bytes
do not depend on workers, shard size, scheduling or retries. Finished keys are recorded in
``manifest.jsonl`` with the sha256 of every file or chunk written, keyed by format; a re-run
skips them.
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from corruptions import __version__, load_variant

from . import formats
from .files import atomic_write_bytes
from .imagenet_c import task_from_config
from .progress import progress
from .readers import Source, read_source
from .task import Key, Shard

MANIFEST, FAILURES, RUN = "manifest.jsonl", "failures.jsonl", "run.json"


class RunError(RuntimeError):
    pass


def byte_versions() -> dict[str, str]:
    """Versions of what decides the output bytes: a resumed run must have the same."""
    import cv2
    import numba
    import numcodecs
    import numpy
    import PIL
    import scipy
    import skimage
    import zarr
    from PIL import features
    return {"imagenet-c-generator": __version__, "numpy": numpy.__version__, "scipy": scipy.__version__,
            "scikit-image": skimage.__version__, "opencv": cv2.__version__, "pillow": PIL.__version__,
            "libjpeg-turbo": str(features.version("libjpeg_turbo")), "numba": numba.__version__,
            "zarr": zarr.__version__, "numcodecs": numcodecs.__version__}


@dataclass
class Plan:
    config: dict
    out: Path
    source: Source
    task: object
    writers: tuple
    keys: list[Key] = field(default_factory=list)
    version: str = __version__
    versions: dict = field(default_factory=byte_versions)

    @property
    def items(self):
        return self.source.items

    @property
    def classes(self):
        return self.source.classes

    @property
    def shard_size(self) -> int:
        return self.config["shard_size"]

    def shard_items(self, shard: int) -> tuple:
        return self.items[shard * self.shard_size:(shard + 1) * self.shard_size]

    def identity(self) -> dict:
        """What a resumed run must agree on: everything that decides which bytes go where."""
        config = self.config
        return {"task": config["task"], "name": config["name"], "reader": config["reader"],
                "source_digest": self.source.digest(), "images": len(self.items), "variant": config["variant"],
                "variant_sha256": load_variant(config["variant"]).sha256, "corruptions": config["corruptions"],
                "severities": config["severities"], "seed": config["seed"], "shard_size": config["shard_size"],
                "outputs": config["outputs"], "versions": self.versions}

    def identity_digest(self) -> str:
        import hashlib
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()


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

def make_writers(config: dict, out: Path) -> tuple:
    outputs = config["outputs"]
    writers = []
    for name in outputs["formats"]:
        if name == "jpeg":
            writers.append(formats.jpeg_tree.Writer(str(out), outputs["jpeg"]["quality"], outputs["jpeg"]["optimize"]))
        elif name == "zarr":
            writers.append(formats.zarr_store.Writer(str(out / f"{config['name']}.zarr"), config["shard_size"],
                                                     outputs["zarr"]["codec"], outputs["zarr"]["level"],
                                                     outputs["jpeg"]["quality"], outputs["jpeg"]["optimize"]))
        else:
            writers.append(formats.cifar_npy.Writer(str(out)))
    return tuple(writers)


def plan_run(config: dict) -> Plan:
    if not config.get("source"):
        raise RunError("no source: give --source PATH (or `source:` in the run config)")
    if not config.get("out"):
        raise RunError("no output folder: give --out PATH (or `out:` in the run config)")
    source = read_source(config["reader"], config["source"], config.get("labels"))
    if not source.items:
        raise RunError(f"source {config['source']} holds no images for reader {config['reader']!r}")
    out = Path(config["out"]).expanduser().resolve()
    task = task_from_config(config)
    writers = make_writers(config, out)
    for writer in writers:
        if tuple(writer.dims) != tuple(task.dims):
            raise RunError(f"format {writer.format!r} stores blocks of {writer.dims}, task {task.name!r} makes {task.dims}")
    plan = Plan(config, out, source, task, writers)
    plan.keys = task.keys(len(source.items), plan.shard_size)
    return plan


def read_manifest(out: Path) -> dict[str, dict]:
    records = {}
    path = out / MANIFEST
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill: that key runs again
            records[record["key"]] = record
    return records


def prepare(plan: Plan) -> dict[str, dict]:
    """Create the outputs (or check that OUT holds this same run) and return finished keys."""
    plan.out.mkdir(parents=True, exist_ok=True)
    run_file = plan.out / RUN
    identity, digest = plan.identity(), plan.identity_digest()
    if run_file.exists():
        previous = json.loads(run_file.read_text())
        if previous.get("identity_digest") != digest:
            before = previous.get("identity", {})
            differing = [k for k, v in identity.items() if before.get(k) != v]
            detail = "; ".join(f"{k}: {before.get(k)!r} then, {identity[k]!r} now" for k in differing
                               if k not in ("source_digest", "versions", "variant_sha256"))
            raise RunError(f"{plan.out} holds another run (differs in: {', '.join(differing) or 'settings'}"
                           f"{'; ' + detail if detail else ''}); use a new --out, or remove that folder")
    else:
        atomic_write_bytes(run_file, json.dumps({"identity": identity, "identity_digest": digest,
                                                 "config": plan.config, "version": plan.version},
                                                indent=1, sort_keys=True).encode())
    for writer in plan.writers:
        writer.prepare(plan)
    return {k: r for k, r in read_manifest(plan.out).items() if r.get("run") == digest}


# ---------------------------------------------------------------- the two kinds of work (workers)

def load_shard(task, items, start: int) -> Shard:
    return task.load_shard(items, start)


def run_key(task, key: Key, shard: Shard, writers: tuple) -> dict:
    """Produce ``key``'s block and hand it to every writer; returns the manifest record."""
    block = task.produce(key, shard)
    outputs = {writer.format: writer.write(block) for writer in writers}
    return {"key": key.id, "name": key.name, "shard": key.shard, "start": key.start, "stop": key.stop,
            "images": int(shard.ok.sum()), "outputs": outputs, "failures": list(shard.failures)}


# ---------------------------------------------------------------- execute (client drives Dask)

def execute(plan: Plan, client, todo: list[Key], on_done) -> None:
    """Submit shard loads and their keys, keeping a window of shards in flight that follows the
    cluster's size as workers join and leave (batch jobs start late), so memory stays flat."""
    from distributed import as_completed

    from .cluster import WorkerSetup
    client.register_plugin(WorkerSetup())  # on every worker, now and as they join
    by_shard: dict[int, list[Key]] = defaultdict(list)
    for key in todo:
        by_shard[key.shard].append(key)
    queue = iter(sorted(by_shard))
    in_flight: dict[int, list] = {}  # shard -> [shard future, keys left]
    completed = as_completed()
    sized = [0.0, 2]  # when the window was last computed, and its size

    def window() -> int:
        now = time.monotonic()
        if now - sized[0] > 1.0:
            sized[:] = [now, max(2, 2 * sum(client.nthreads().values()))]
        return sized[1]

    def launch() -> bool:
        shard = next(queue, None)
        if shard is None:
            return False
        items = plan.shard_items(shard)
        start = shard * plan.shard_size
        loaded = client.submit(load_shard, plan.task, items, start, pure=False, priority=-shard)
        for key in by_shard[shard]:
            completed.add(client.submit(run_key, plan.task, key, loaded, plan.writers, pure=False, priority=-shard))
        in_flight[shard] = [loaded, len(by_shard[shard])]
        return True

    def fill() -> None:
        while len(in_flight) < window() and launch():
            pass

    fill()
    for future in completed:
        record = future.result()
        on_done(record)
        entry = in_flight[record["shard"]]
        entry[1] -= 1
        if entry[1] == 0:
            del in_flight[record["shard"]]  # releases the decoded shard on its worker
        fill()


# ---------------------------------------------------------------- finalise and the whole run

def finalise(plan: Plan, records: dict[str, dict]) -> tuple[list[dict], list[str]]:
    failures = {f["image_id"]: f for r in records.values() for f in r["failures"]}
    ordered = sorted(failures.values(), key=lambda f: f["row"])
    atomic_write_bytes(plan.out / FAILURES, "".join(json.dumps(f, sort_keys=True) + "\n" for f in ordered).encode())
    paths = []
    for writer in plan.writers:
        paths += writer.finalise(plan, ordered)
    return ordered, paths


def generate(config: dict, client=None, stream=sys.stderr) -> Summary:
    started = time.monotonic()
    plan = plan_run(config)
    finished = prepare(plan)
    todo = [k for k in plan.keys if k.id not in finished]
    per_key = len(plan.task.levels)
    total = sum((k.stop - k.start) * per_key for k in plan.keys)
    done = sum((k.stop - k.start) * per_key for k in plan.keys if k.id in finished)
    records = dict(finished)
    if todo:
        digest = plan.identity_digest()
        with open(plan.out / MANIFEST, "a") as manifest, progress(total, done=done, stream=stream) as bar:
            def on_done(record):
                record["run"] = digest
                manifest.write(json.dumps(record, sort_keys=True) + "\n")
                manifest.flush()
                os.fsync(manifest.fileno())
                records[record["key"]] = record
                bar.update((record["stop"] - record["start"]) * per_key)

            if client is None:
                from .cluster import open_client
                with open_client(config["cluster"]) as own_client:
                    if own_client.dashboard_link:
                        print(f"dashboard: {own_client.dashboard_link}", file=stream, flush=True)
                    execute(plan, own_client, todo, on_done)
            else:
                execute(plan, client, todo, on_done)
    failures, paths = finalise(plan, records)
    return Summary(plan.out, len(todo), len(plan.keys) - len(todo), len(plan.items),
                   sum(r["images"] for r in records.values()) * per_key, failures,
                   time.monotonic() - started, paths)
