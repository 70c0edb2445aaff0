"""Tarball writing speed: our reproducible writer against GNU ``tar cf`` on the same files.

    python benchmarks/bench_publish.py [--files 20000] [--size 16000] [--repeats 3]

Builds an ImageNet-C-shaped tree of files of about ImageNet-C's mean JPEG size, then times,
interleaved and best of --repeats (the files in the page cache for both), GNU tar writing one
tarball of the tree and ``pipeline.publish.write_tarball`` writing the same members (sha256 of
every file included, as publish does). Target: at least 0.8x GNU tar's throughput.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.publish import Member, write_tarball  # noqa: E402

TARGET = 0.8


def build_tree(root: Path, files: int, size: int) -> list[Member]:
    rng = np.random.default_rng(0)
    members = []
    for index in range(files):
        relative = f"fog/{index % 5 + 1}/n{index // 250:08d}/ILSVRC2012_val_{index:08d}.JPEG"
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.integers(0, 256, int(size * (0.5 + rng.random())), dtype=np.uint8).tobytes())
        members.append(Member(relative, str(path), None))
    return sorted(members, key=lambda m: m.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--size", type=int, default=16000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        members = build_tree(tmp / "tree", args.files, args.size)
        import hashlib  # the manifest's digests, as publish has them
        members = [Member(m.name, m.source, hashlib.sha256(Path(m.source).read_bytes()).hexdigest()) for m in members]
        total = sum(os.stat(m.source).st_size for m in members)
        listing = tmp / "list.txt"
        listing.write_text("".join(m.name + "\n" for m in members))
        (tmp / "dist").mkdir()
        best = {"GNU tar cf": float("inf"), "ours": float("inf"), "ours --check": float("inf")}
        for _ in range(args.repeats):
            for label in best:
                for old in (tmp / "gnu.tar", tmp / "dist" / "ours.tar"):
                    old.unlink(missing_ok=True)
                start = time.perf_counter()
                if label == "GNU tar cf":
                    subprocess.run(["tar", "cf", str(tmp / "gnu.tar"), "-C", str(tmp / "tree"), "--no-recursion",
                                    "-T", str(listing)], check=True)
                else:
                    write_tarball(str(tmp / "dist" / "ours.tar"), members, False, check=label != "ours")
                best[label] = min(best[label], time.perf_counter() - start)
        print(f"{args.files} files, {total / 2**20:.0f} MiB, one core, best of {args.repeats}:")
        for label, seconds in best.items():
            print(f"  {label:22s} {seconds:6.2f} s  {total / 2**20 / seconds:7.1f} MiB/s  "
                  f"{args.files / seconds:8.0f} files/s")
        for label in ("ours", "ours --check"):
            print(f"{label} vs GNU tar: {best['GNU tar cf'] / best[label]:.2f}x throughput (target >= {TARGET}x)")
        print("ours writes the tarball's sha256 as it goes (GNU tar would need sha256sum after); re-hashing (--check) "
              "checks every member against the manifest on the way")


if __name__ == "__main__":
    main()
