"""Equal work, side by side: this program against the numpy reproduction it grew from (npow/schmidhuber-problems).

    MNIST_DIR=/path/to/mnist python benchmarks/against_reference.py --reference /path/to/their/compete_to_compute.py

The reference is npow/schmidhuber-problems, compete-to-compute/compete_to_compute.py (not shipped here: give
its path). Both run ReLU and LWTA on the default split (digits 0-4 then 5-9, 2 x 400 units, 500 images per
class, 5 epochs per task) for 10 seeds on the full test sets (the reference with --n-test 10000, which
keeps every test image of a task): `python compete_to_compute.py --seed 0 --n-seeds 10 --models relu,lwta`
against `python REFERENCE --seed 0 --n-seeds 10 --n-test 10000`. The reference reads MNIST from
~/.cache/hinton-mnist, so it runs with HOME set to a temporary folder holding a copy of $MNIST_DIR's .gz
files (nothing is downloaded, nothing of yours is touched). Alternating runs, median wall time of each.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GZ = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
      "t10k-labels-idx1-ubyte.gz")


def wall(cmd: list, cwd: Path, env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", required=True, help="path to the reference's compete_to_compute.py")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each (default %(default)s)")
    args = ap.parse_args()
    reference, mnist = Path(args.reference).resolve(), os.environ.get("MNIST_DIR")
    if not reference.is_file():
        sys.exit(f"--reference: {reference} is not a file")
    if not mnist or not all((Path(mnist) / f).is_file() for f in GZ):
        sys.exit("MNIST_DIR must name a folder holding the four MNIST .gz files (the reference reads only those)")
    with tempfile.TemporaryDirectory(prefix="c2c-ref-") as tmp:
        home = Path(tmp) / "home"
        cache = home / ".cache" / "hinton-mnist"
        cache.mkdir(parents=True)
        for f in GZ:
            shutil.copy(Path(mnist) / f, cache / f)
        env = dict(os.environ, HOME=str(home))
        ours = [sys.executable, str(ROOT / "compete_to_compute.py"), "--seed", "0", "--n-seeds", "10", "--models",
                "relu,lwta", "--quiet", "--out", str(Path(tmp) / "ours.json"), "--snapshots", str(Path(tmp) / "o.npz")]
        theirs = [sys.executable, str(reference), "--seed", "0", "--n-seeds", "10", "--n-test", "10000", "--out",
                  str(Path(tmp) / "theirs.json"), "--snapshots", str(Path(tmp) / "viz" / "t.npz")]
        times = {"ours": [], "reference": []}
        for _ in range(args.repeats):
            times["ours"].append(wall(ours, Path(tmp), env))
            times["reference"].append(wall(theirs, Path(tmp), env))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"ours {med['ours']:.1f} s, reference {med['reference']:.1f} s (median of {args.repeats}): "
          f"{med['ours'] / med['reference']:.2f} x the reference's wall time; all runs {times}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
