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

import contextlib
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from corruptions import __version__, load_variant

from . import formats
from .files import Busy, FolderLock, UnsafePath, make_folders, open_append, read_bytes, write_bytes
from .formats.common import Layout
from .progress import exclude_wait, progress
from .readers import Source, read_source, safe_component
from .runconfig import RunConfig
from .task import SEQUENCE_DIMS, Key, Shard
from .tasks import task_from_config, task_spec

MANIFEST, FAILURES, RUN = "manifest.jsonl", "failures.jsonl", "run.json"


class RunError(RuntimeError):
    pass


def cpu_class() -> str:
    """The machine as far as it decides output bytes (docs/fidelity.md, "Reproducibility"): on
    x86-64 every output is the same from SSE4.2 to AVX-512 (tested with lowered dispatch), so the
    class of CPU does not matter; other architectures are untested."""
    import platform
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64"):
        return f"{machine} (untested: bytes may differ from x86-64's)"
    return "x86-64"


def byte_versions() -> dict[str, str]:
    """Versions of what decides the output bytes, and the architecture: a resumed run must have
    the same, and ``verify --source`` names what differs."""
    import av
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
            "zarr": zarr.__version__, "numcodecs": numcodecs.__version__, "pyav": av.__version__,
            "libavcodec": ".".join(map(str, av.library_versions["libavcodec"])), "cpu": cpu_class()}


@dataclass
class Plan:
    config: RunConfig
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
        return self.config.shard_size

    def shard_items(self, shard: int) -> tuple:
        return self.items[shard * self.shard_size:(shard + 1) * self.shard_size]

    def identity(self) -> dict:
        """What a resumed run must agree on: everything that decides which bytes go where. The
        corruptions and formats are not part of it: a key's record says what it wrote, so a run
        into a finished OUT with more corruptions or formats extends it."""
        config = self.config.as_json()  # JSON values: compared with the identity stored in run.json
        derived = {"source_digest": self.source.digest(), "images": len(self.items),
                   "variant_sha256": load_variant(self.config.variant).sha256}
        order = ("task", "name", "reader", "source_digest", "images", "variant", "variant_sha256", "severities", "seed",
                 "shard_size", "max_pixels")
        return {**{key: derived[key] if key in derived else config[key] for key in order},
                **{name: config["outputs"][name] for name in formats.SETTINGS}, "versions": self.versions}

    def layout(self) -> Layout:
        """The template the writers lay their outputs out by."""
        task = self.task
        frames = {name: task.frame_count(name) for name in task.names} if tuple(task.dims) == SEQUENCE_DIMS else {}
        return Layout(task.name, task.variant, tuple(task.names), tuple(task.levels), tuple(task.image_size),
                      tuple(self.items), tuple(self.classes), frames, self.config.as_json(), self.config.seed,
                      self.version, self.versions)

    def identity_digest(self) -> str:
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

def make_writers(config, out: Path) -> tuple:
    """Each of the run's formats' writer, for its task's blocks (``make_writer`` of the format's
    module)."""
    dims = task_spec(config.task).dims
    return tuple(formats.FORMATS[name].make_writer(config, out, dims) for name in config.outputs.formats)


def check_names(source: Source, format_names) -> None:
    """Every name that becomes part of an output path is one safe component, and no two items
    land on the same output file of any of the run's formats (``item_file_name`` of the format
    modules that write a file per item): refused, with the names, before any work."""
    namers = [namer for namer in (getattr(formats.FORMATS[name], "item_file_name", None) for name in format_names)
              if namer is not None]
    bad = [i for i in source.items if not (safe_component(i.wnid) and safe_component(i.name)
                                           and all(safe_component(namer(i)) for namer in namers))]
    if bad:
        raise RunError(f"{len(bad)} source images have class or file names that cannot be output names, e.g. "
                       f"{bad[0].where!r}: class {bad[0].wnid!r}, file {bad[0].name!r}")
    collisions = []
    for namer in namers:
        outputs: dict = defaultdict(list)
        for item in source.items:
            outputs[(item.wnid, namer(item))].append(item.where)
        collisions += [paths for paths in outputs.values() if len(paths) > 1]
    ids = defaultdict(list)
    for item in source.items:
        ids[item.image_id].append(item.where)
    collisions += [paths for paths in ids.values() if len(paths) > 1]
    if collisions:
        shown = "; ".join(" and ".join(paths) for paths in collisions[:5])
        raise RunError(f"{len(collisions)} groups of source images would be written to the same output file, so "
                       f"all but one would be lost: {shown}{' ...' if len(collisions) > 5 else ''}. Rename or "
                       "remove the duplicates")


def check_locations(out: Path, source_root: str) -> None:
    """OUT may not be, or lie inside, the source (a run would read its own outputs), nor be a
    file or under one."""
    source = Path(source_root).resolve()
    if out == source or source in out.parents:
        raise RunError(f"--out {out} is inside the source {source}; write the outputs elsewhere")
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                raise RunError(f"--out {out}: {folder} is a file, not a folder")
            break


def plan_run(config) -> Plan:
    """The plan of a run: its source listed, its task and writers, every check that can fail
    before anything is created. ``config``: a resolved ``runconfig.RunConfig``."""
    if not config.source:
        raise RunError("no source: give --source PATH (or `source:` in the run config)")
    if not config.out:
        raise RunError("no output folder: give --out PATH (or `out:` in the run config)")
    source = read_source(config.reader, config.source, config.labels)
    if not source.items:
        raise RunError(f"source {config.source} holds no images for reader {config.reader!r}")
    task = task_from_config(config)
    check_names(source, config.outputs.formats)
    out = Path(config.out).expanduser().resolve()
    check_locations(out, source.root)
    writers = make_writers(config, out)
    for writer in writers:
        if tuple(writer.dims) != tuple(task.dims):
            raise RunError(f"format {writer.format!r} stores blocks of {writer.dims}, task {task.name!r} makes {task.dims}")
    check_assets(task)
    try:
        _ = task.image_size  # the variant file read and checked now, before anything is created
    except ValueError as exc:
        raise RunError(str(exc)) from None
    plan = Plan(config, out, source, task, writers)
    plan.keys = task.keys(len(source.items), plan.shard_size)
    return plan


def check_assets(task) -> None:
    """frost overlays six textures that are not in the package (see ``corruptions.assets``): with
    one missing, they are fetched once here, on the client, or the run stops before any work
    with the command that fetches them (never a traceback in every worker)."""
    from corruptions.assets import AssetError, fetch_textures, missing_textures
    if "frost" not in task.names or not missing_textures():
        return
    print("frost textures missing: fetching them (python -m corruptions.assets)", file=sys.stderr, flush=True)
    try:
        fetch_textures()
    except (AssetError, OSError, subprocess.CalledProcessError, StopIteration) as exc:
        raise RunError(f"the frost textures are missing and could not be fetched ({type(exc).__name__}); run "
                       "`python -m corruptions.assets` where the network is reachable (or set CORRUPTIONS_FROST_DIR "
                       "to a folder holding them), or leave frost out with --only") from None


def _well_formed(record) -> bool:
    """A manifest line as this module writes it: anything else (a line cut short by a kill, or
    edited) is not trusted, and its key runs again. Output names must stay inside their root."""
    from .files import split
    try:
        ok = (isinstance(record["key"], str) and isinstance(record["images"], int)
              and isinstance(record["start"], int) and isinstance(record["stop"], int)
              and isinstance(record["failures"], list) and all(isinstance(f, dict) for f in record["failures"])
              and isinstance(record["outputs"], dict))
        sources = record.get("sources", {})
        ok = ok and isinstance(sources, dict) and all(
            isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], int)
            for v in sources.values())
        for names in record["outputs"].values():
            for name, digest in names.items():
                split(name.split("[", 1)[0])
                ok = ok and isinstance(digest, str)
        return ok
    except (KeyError, TypeError, AttributeError, UnsafePath):
        return False


def read_manifest(out: Path) -> dict[str, dict]:
    records = {}
    try:
        text = read_bytes(out, MANIFEST).decode("utf-8", "replace")
    except FileNotFoundError:
        return records
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if _well_formed(record):
            records[record["key"]] = record
    return records


def prepare(plan: Plan) -> dict[str, dict]:
    """Create the outputs (or check that OUT holds this same run) and return finished keys."""
    make_folders(plan.out)
    identity, digest = plan.identity(), plan.identity_digest()
    try:
        text = read_bytes(plan.out, RUN, limit=64 << 20)
    except FileNotFoundError:
        text = None
    if text is not None:
        try:
            previous = json.loads(text)
            previous.get("identity_digest")
        except (ValueError, AttributeError, RecursionError):
            raise RunError(f"{plan.out / RUN} is damaged (empty, or not this generator's JSON): it records which run "
                           "OUT holds, so OUT cannot be resumed; use a new --out, or remove that folder") from None
        if previous.get("identity_digest") != digest:
            before = previous.get("identity", {})
            before = before if isinstance(before, dict) else {}
            differing = [k for k, v in identity.items() if before.get(k) != v]
            detail = "; ".join(f"{k}: {before.get(k)!r} then, {identity[k]!r} now" for k in differing
                               if k not in ("source_digest", "versions", "variant_sha256"))
            raise RunError(f"{plan.out} holds another run (differs in: {', '.join(differing) or 'settings'}"
                           f"{'; ' + detail if detail else ''}); use a new --out, or remove that folder")
    else:
        write_bytes(plan.out, RUN, json.dumps({"identity": identity, "identity_digest": digest,
                                               "config": plan.config.as_json(), "version": plan.version},
                                              indent=1, sort_keys=True).encode())
    layout = plan.layout()
    for writer in plan.writers:
        relative = os.path.relpath(writer.root, plan.out)
        if relative != "." and not relative.startswith(".."):
            make_folders(plan.out, relative)  # a link planted as OUT/<store> or OUT/<corruption> is refused
        writer.prepare(layout)
    return {k: r for k, r in read_manifest(plan.out).items() if r.get("run") == digest}


# ---------------------------------------------------------------- the two kinds of work (workers)

def load_shard(task, items, start: int) -> Shard:
    return task.load_shard(items, start)


def run_key(task, key: Key, shard: Shard, writers: tuple) -> dict:
    """Produce ``key``'s block and hand it to every writer; returns the manifest record."""
    block = task.produce(key, shard)
    outputs = {writer.format: writer.write(block) for writer in writers}
    sources = {item.image_id: [digest, item.size] for item, digest in zip(shard.items, shard.sources) if digest}
    return {"key": key.id, "name": key.name, "shard": key.shard, "start": key.start, "stop": key.stop,
            "images": int(shard.ok.sum()), "outputs": outputs, "failures": list(shard.failures), "sources": sources}


def merge_shards(parts: list, items, start: int, image_size) -> Shard:
    """One shard from per-image loads; an image whose load killed its worker every time is a
    failure of that image, not of the run."""
    import numpy as np
    if any(part is not None and isinstance(part.images, list) for part in parts):
        images = [None] * len(items)  # a task whose inputs are per-item mappings (ImageNet-P)
    else:
        images = np.zeros((len(items),) + tuple(image_size) + (3,), np.uint8)
    ok = np.zeros(len(items), bool)
    failures, sources = [], [""] * len(items)
    for index, (item, part) in enumerate(zip(items, parts)):
        if part is None:
            failures.append({"image_id": item.image_id, "row": start + index, "path": item.where,
                             "reason": "KilledWorker: decoding it killed a worker on every try (too large for a "
                                       "worker's memory? see max_pixels and cluster.memory_limit)"})
        else:
            images[index], ok[index] = part.images[0], part.ok[0]
            sources[index] = part.sources[0] if part.sources else ""
            failures += list(part.failures)
    return Shard(tuple(items), images, ok, tuple(failures), tuple(sources))


# ---------------------------------------------------------------- execute (client drives Dask)

def _killed(exc: BaseException) -> bool:
    return type(exc).__name__ == "KilledWorker"


def execute(plan: Plan, client, todo: list[Key], on_done, watch=None) -> None:
    """Submit shard loads and their keys, keeping a window of shards in flight that follows the
    cluster's size as workers join and leave (batch jobs start late), so memory stays flat.
    Nothing is scattered: a lost worker's results are recomputed. A shard whose load keeps
    killing workers is loaded again image by image, so only the image at fault is lost. No wait
    is without bound: ``watch`` (a ``cluster.WorkerWatch``) stops the run when no worker is left."""
    from distributed import as_completed

    from .cluster import WorkerSetup, wait_for
    client.register_plugin(WorkerSetup())  # on every worker, now and as they join
    by_shard: dict[int, list[Key]] = defaultdict(list)
    for key in todo:
        by_shard[key.shard].append(key)
    queue = iter(sorted(by_shard))
    in_flight: dict[int, set] = {}  # shard -> keys not yet done
    isolated: set[int] = set()
    completed = as_completed()
    sized = [0.0, 2]  # when the window was last computed, and its size

    def window() -> int:
        now = time.monotonic()
        if now - sized[0] > 1.0:
            sized[:] = [now, max(2, 2 * sum(client.nthreads().values()))]
        return sized[1]

    def submit_keys(shard: int, loaded, keys) -> None:
        for key in keys:
            future = client.submit(run_key, plan.task, key, loaded, plan.writers, pure=False, priority=-shard)
            future.shard_and_key = (shard, key)
            completed.add(future)

    def launch() -> bool:
        shard = next(queue, None)
        if shard is None:
            return False
        loaded = client.submit(load_shard, plan.task, plan.shard_items(shard), shard * plan.shard_size, pure=False,
                               priority=-shard)
        submit_keys(shard, loaded, by_shard[shard])
        in_flight[shard] = set(by_shard[shard])
        return True

    def isolate(shard: int) -> None:
        items, start = plan.shard_items(shard), shard * plan.shard_size
        loads = [client.submit(load_shard, plan.task, (item,), start + i, pure=False) for i, item in enumerate(items)]
        wait_for(loads, watch)
        parts = [None if f.status == "error" and _killed(f.exception()) else f.result() for f in loads]
        merged = merge_shards(parts, items, start, plan.task.image_size)
        submit_keys(shard, client.submit(lambda s: s, merged, pure=False), sorted(in_flight[shard], key=str))

    def fill() -> None:
        while len(in_flight) < window() and launch():
            pass

    fill()
    for future in _as_they_finish(completed, watch):
        shard, key = future.shard_and_key
        if future.status == "error":
            exc = future.exception()
            if not _killed(exc):
                raise exc
            if key in in_flight.get(shard, ()) and shard not in isolated:
                isolated.add(shard)
                isolate(shard)
            continue
        if key not in in_flight.get(shard, ()):
            continue  # done already, by an earlier submission of the same key
        on_done(future.result())
        in_flight[shard].discard(key)
        if not in_flight[shard]:
            del in_flight[shard]  # releases the decoded shard on its worker
        fill()


def _as_they_finish(completed, watch):
    """The futures of ``completed`` as they finish; while none is ready, ``watch`` is asked
    (every 20 ms) whether the run still has workers."""
    while not completed.is_empty():
        if completed.has_ready():
            yield from completed.next_batch(block=False)
            continue
        if watch is not None:
            watch.check()
        time.sleep(0.02)


# ---------------------------------------------------------------- finalise and the whole run

def check_outputs_exist(plan: Plan, records: dict[str, dict]) -> None:
    """Every file the manifest names is here (one stat each, no hashing): a worker that wrote
    somewhere this process does not see must not end in ``done`` and a complete store. The keys
    whose outputs are missing leave the manifest, so a re-run makes them again."""
    roots = {writer.format: Path(writer.root) for writer in plan.writers}
    missing: dict[str, Path] = {}
    for key, record in records.items():
        for format_name, names in record["outputs"].items():
            root = roots.get(format_name)
            for name in names if root is not None else ():
                path = root / name.split("[", 1)[0]
                if "[" in name and not path.is_file():  # a region of a file its writer completes at the end
                    path = path.with_name(f".{path.name}.part")
                if not path.is_file():
                    missing.setdefault(key, path)
    if not missing:
        return
    kept = [line for line in read_bytes(plan.out, MANIFEST).decode("utf-8", "replace").splitlines(keepends=True)
            if _manifest_key(line) not in missing]
    write_bytes(plan.out, MANIFEST, "".join(kept).encode())
    for key in missing:
        del records[key]
    raise RunError(f"outputs of {len(missing)} units that the workers reported written are not in {plan.out} as this "
                   f"machine sees it (e.g. {next(iter(missing.values()))}): do the workers and this machine share OUT? "
                   "Those units are no longer recorded as done: fix the cause, then re-run the same command")


def _manifest_key(line: str) -> str | None:
    try:
        return json.loads(line).get("key")
    except (json.JSONDecodeError, AttributeError):
        return None


def finalise(plan: Plan, records: dict[str, dict]) -> tuple[list[dict], list[str]]:
    check_outputs_exist(plan, records)
    failures = {f["image_id"]: f for r in records.values() for f in r["failures"]}
    ordered = sorted(failures.values(), key=lambda f: f["row"])
    rejected = [{"image_id": r["path"], "row": -1, **r} for r in plan.source.rejected]
    everything = rejected + ordered
    write_bytes(plan.out, FAILURES, "".join(json.dumps(f, sort_keys=True) + "\n" for f in everything).encode())
    complete = all(k.id in records and set(plan.config.outputs.formats) <= set(records[k.id]["outputs"])
                   for k in plan.keys)
    paths, layout = [], plan.layout()
    for writer in plan.writers:
        paths += writer.finalise(layout, ordered, complete)
    return everything, paths


class MissingSource(RunError):
    pass


def source_digests(records: dict[str, dict]) -> dict[str, list]:
    """image id -> [digest, size] of the source bytes its recorded outputs were made from."""
    known: dict[str, list] = {}
    for record in records.values():
        sources = record.get("sources")
        if isinstance(sources, dict):
            known.update(sources)
    return known


def _changed(image_id: str, plan: Plan, how: str) -> RunError:
    return RunError(f"source image {image_id} changed since its first outputs in {plan.out} were made ({how}); "
                    "OUT would hold outputs of two different pictures for it: put the original back, or generate "
                    "into a new --out")


def check_listing(plan: Plan, known: dict[str, list]) -> None:
    """Before any work: every listed image with recorded outputs still has the size it had
    (one stat each, from the listing); images never read successfully may have changed."""
    for item in plan.source.items:
        before = known.get(item.image_id)
        if before is not None and before[1] != item.size:
            raise _changed(item.image_id, plan, f"{before[1]} bytes then, {item.size} now")


def check_sources(record: dict, known: dict[str, list], plan: Plan) -> None:
    """Every image a key read has the bytes that the image's earlier outputs were made from: a
    source file replaced between runs (even by one of the same size) would leave OUT holding,
    for one image id, outputs of two different pictures. Stop instead, naming it."""
    for image_id, (digest, size) in record.get("sources", {}).items():
        before = known.setdefault(image_id, [digest, size])
        if before[0] != digest:
            raise _changed(image_id, plan, f"its bytes differ: sha256 {before[0]}... then, {digest}... now")


def _check_record(record: dict, plan: Plan) -> None:
    """A key whose every image was 'not found' means the workers do not see the source (a
    relative path, another mount): stop, rather than report thousands of failures."""
    failures = record["failures"]
    if record["images"] == 0 and failures and all(f["reason"].startswith(("FileNotFoundError", "PermissionError"))
                                                  for f in failures):
        raise MissingSource(f"no image of shard {record['shard']} could be read by the workers "
                            f"({failures[0]['reason']}); do the workers see the source at {plan.source.root}?")


def _space_message(plan: Plan, exc: OSError, done: int, total: int) -> str:
    if exc.errno == errno.ENOSPC:
        written = sum(p.stat().st_size for p in plan.out.rglob("*") if p.is_file())
        free = shutil.disk_usage(plan.out).free
        need = written / max(done, 1) * (total - done)
        return (f"no space left on the device of {plan.out} after {done} of {total} images: about "
                f"{need / 2**30:.1f} GiB more is needed ({free / 2**30:.1f} GiB free); free space, then re-run the "
                "same command to resume")
    return f"cannot write under {plan.out}: {exc.strerror or exc} ({exc.filename or ''}); fix that, then re-run"


def _run(plan: Plan, client, stream, written: list, watch=None) -> tuple[list[Key], dict, int]:
    """Prepare, then produce and write every key not done yet; ``written`` follows progress."""
    config = plan.config
    finished = prepare(plan)
    wanted = set(config.outputs.formats)
    # a key is done when all its outputs are written and every image of it could be read: an
    # image unreadable once (half-copied, a network hiccup) is tried again by every re-run
    todo = [k for k in plan.keys if not (k.id in finished and wanted <= set(finished[k.id]["outputs"])
                                         and not finished[k.id]["failures"])]
    per_key = len(plan.task.levels)  # outputs per image and key: severities, or one sequence
    total = sum((k.stop - k.start) * per_key for k in plan.keys)
    written[:] = [total - sum((k.stop - k.start) * per_key for k in todo), total]
    records = dict(finished)
    known = source_digests(finished)
    check_listing(plan, known)
    if todo:
        digest = plan.identity_digest()
        with open_append(plan.out, MANIFEST) as manifest, progress(total, done=written[0], stream=stream) as bar:
            if watch is not None:  # the ETA counts only time with workers
                watch.on_workers = lambda: exclude_wait(bar)
            def on_done(record):
                _check_record(record, plan)
                check_sources(record, known, plan)
                record["run"] = digest
                manifest.write(json.dumps(record, sort_keys=True) + "\n")
                manifest.flush()
                os.fsync(manifest.fileno())
                records[record["key"]] = record
                rows = record["stop"] - record["start"]
                # the bar counts corrupted images written: unreadable sources leave the total
                bar.total -= (rows - record["images"]) * per_key
                bar.update(record["images"] * per_key)
                written[0] += rows * per_key

            execute(plan, client, todo, on_done, watch)
    return todo, records, per_key


LOGS = "logs"  # OUT/logs: the batch jobs' logs


def job_name(plan: Plan) -> str:
    """The batch jobs' name: the run's name and a digest of OUT, so that ``squeue`` tells runs
    apart and ``scancel -n`` reaches this run's jobs only."""
    return f"{plan.config.name}-{hashlib.sha256(str(plan.out).encode()).hexdigest()[:6]}"


def dashboard_line(link: str) -> str:
    """Where the dashboard is, and how to reach it from a laptop when it is on a login node."""
    from urllib.parse import urlparse
    address = urlparse(link)
    host, port = address.hostname or "localhost", address.port or 8787
    if host in ("127.0.0.1", "localhost", "::1"):
        return f"dashboard: {link}"
    return (f"dashboard: {link} (from a laptop: ssh -N -L {port}:{host}:{port} <this login node>, then "
            f"http://localhost:{port}{address.path})")


def check_out_is_shared(plan: Plan, client, watch) -> None:
    """A worker writes a new file under OUT and this process must read it back: a worker that
    writes OUT on a disk of its own (a node's /tmp or $TMPDIR) would lose every output."""
    import secrets

    from .cluster import probe_write, wait_for
    token = secrets.token_hex(8)
    name = f".probe-{token}"
    future = client.submit(probe_write, str(plan.out), name, token, pure=False)
    wait_for([future], watch)
    if future.status == "error":
        exc = future.exception()
        raise RunError(f"the workers cannot write to --out {plan.out}: {type(exc).__name__}: {exc}")
    host = future.result()
    probe = plan.out / name
    try:
        seen = probe.read_text() if probe.is_file() and not probe.is_symlink() else None
    finally:
        probe.unlink(missing_ok=True)
    if seen != token:
        raise RunError(f"the workers do not see --out {plan.out}: a worker on {host} wrote {name} there and it is "
                       "not here; OUT must be on a file system that this machine and every worker share (not a "
                       "node's local /tmp or $TMPDIR)")


def generate(config, client=None, stream=sys.stderr) -> Summary:
    from .cluster import ClusterError, WorkerWatch
    started = time.monotonic()
    plan = plan_run(config)
    logs = None
    with contextlib.ExitStack() as stack:
        try:
            plan.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(_space_message(plan, exc, 0, 1)) from None
        if client is None:
            from .cluster import BATCH_KINDS, open_client
            logs = str(plan.out / LOGS) if config.cluster.kind in BATCH_KINDS else None
            try:
                client = stack.enter_context(open_client(config.cluster.model_dump(), job_name(plan), logs))
            except (OSError, TimeoutError) as exc:
                raise RunError(f"cannot reach the Dask scheduler {config.cluster.address}: {exc}") from None
            except ClusterError as exc:
                raise RunError(str(exc)) from None
            if client.dashboard_link:
                print(dashboard_line(client.dashboard_link), file=stream, flush=True)
        try:
            stack.enter_context(FolderLock(plan.out))
        except (Busy, UnsafePath) as exc:
            raise RunError(str(exc)) from None
        except OSError as exc:
            raise RunError(_space_message(plan, exc, 0, 1)) from None
        watch = WorkerWatch(client, config.cluster.no_worker_timeout, logs,
                            say=lambda line: print(line, file=stream, flush=True))
        written = [0, 1]  # images done, images in all
        try:
            check_out_is_shared(plan, client, watch)
            todo, records, per_key = _run(plan, client, stream, written, watch)
            failures, paths = finalise(plan, records)
        except (ClusterError, UnsafePath) as exc:
            raise RunError(str(exc)) from None
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EFBIG):
                raise RunError(_space_message(plan, exc, *written)) from None
            raise
    return Summary(plan.out, len(todo), len(plan.keys) - len(todo), len(plan.items),
                   sum(r["images"] for r in records.values()) * per_key, failures,
                   time.monotonic() - started, paths)
