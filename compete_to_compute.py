"""Compete to Compute in numpy: does competition between hidden units reduce forgetting, and when?

Srivastava et al. (NIPS 2013) trained networks of locally competing units (LWTA) on one task, then
another, and found they forget the first task less than ReLU networks. This file is a small, exact
continual-learning bench built around that question:

    Tasks are learned one after another: class groups of MNIST (split MNIST, `--tasks`) or pixel
    permutations of it (`--permuted N`), in the task-, class- or domain-incremental scenario.
    Variants (`--models relu,lwta:k=4,topk:k=10%,relu:dropout=0.5`) share everything a seed draws
    (training subsample, minibatch order, dropout masks, and initial weights where shapes agree), so
    each seed is a paired comparison of all of them. The field's methods against forgetting (EWC, SI,
    L2, replay) are keys of any variant (`lwta:ewc=100`, `topk:replay=20`), so competition is compared
    with them and combined with them on the same seeds.
    Every variant is tested on every task after every task: the accuracy matrix R, from which ACC,
    backward transfer and forgetting follow.

    python compete_to_compute.py --seed 0               # headline run, writes results.json + viz/
    python compete_to_compute.py --seed 0 --n-seeds 10  # paired statistics over 10 seeds

The file reads top to bottom: data, tasks, models, methods against forgetting, training, experiment,
statistics, output, CLI.
"""
from __future__ import annotations

import argparse
import functools
import gc
import gzip
import hashlib
import io
import json
import math
import multiprocessing
import multiprocessing.resource_tracker
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

# Every matrix product runs on one BLAS thread. A multi-threaded BLAS splits products differently
# with 1 and 2 threads and the last bits of the results change, so a seed's numbers would depend on
# how runs were spread over cores. Parallelism comes from running models (threads) and seeds
# (processes) side by side instead. This must happen before numpy is imported.
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
os.environ.update({v: "1" for v in BLAS_THREAD_VARS})

import numpy as np  # noqa: E402

SCHEMA_VERSION = 2
HERE = Path(__file__).resolve().parent

# ============================================================================ data
# The four IDX files of MNIST-like datasets. Digests are of the *decompressed* bytes, because the
# .gz wrappers differ between mirrors.
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC = 2051, 2049


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    env_var: str                   # environment variable naming a folder with the IDX files
    sha256: dict                   # IDX file name -> digest of the decompressed file
    mirrors: tuple                 # base URLs, tried in order
    train_class_counts: tuple      # training images per class, known from the pinned files
    pixel_mean_std: tuple          # what --normalize subtracts from and divides every pixel (in [0, 1]) by


DATASETS = {
    "mnist": DatasetSpec(
        name="mnist", env_var="MNIST_DIR",
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
        mirrors=("https://storage.googleapis.com/cvdf-datasets/mnist/",
                 "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        train_class_counts=(5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
        # numenta/nupic.research's constants (permuted_mnist.py); the training images' own mean is 0.13066048
        pixel_mean_std=(0.13062755, 0.30810780)),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist", env_var="FASHION_MNIST_DIR",
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"),
        train_class_counts=(6000,) * 10,
        pixel_mean_std=(0.28604060, 0.35302424)),          # of its 60,000 training images
}
DOWNLOAD_TIMEOUT_S = 30


class DataError(Exception):
    """Missing, corrupt or undownloadable data; the message names the file and the fix."""


def cache_root() -> Path:
    """Per-user cache folder (honours XDG_CACHE_HOME, so tests can point it elsewhere)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "compete_to_compute"


def data_folder(dataset: str, data_dir: str | None) -> Path:
    """Where the IDX files live: --data-dir, else $MNIST_DIR (or $FASHION_MNIST_DIR), else the cache."""
    spec = DATASETS[dataset]
    chosen = data_dir or os.environ.get(spec.env_var)
    return Path(chosen).expanduser() if chosen else cache_root() / dataset


def parse_idx(raw: bytes, path: Path) -> np.ndarray:
    """Decode an IDX file from its header: magic (0, 0, dtype 0x08, ndim), then ndim big-endian sizes."""
    if len(raw) < 4:
        raise DataError(f"{path}: not an IDX file ({len(raw)} bytes, too short to hold the 4-byte magic number); "
                        "replace it with the original file")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] not in (1, 3):
        found = int.from_bytes(raw[:4], "big")
        raise DataError(f"{path}: not an IDX file of unsigned bytes (magic number {found}, expected "
                        f"{IDX_LABELS_MAGIC} for labels or {IDX_IMAGES_MAGIC} for images); "
                        "replace it with the original file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes); replace the file")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(shape)
    if len(raw) != expected:
        raise DataError(f"{path}: IDX header promises shape {shape} ({expected} bytes) but the file has "
                        f"{len(raw)} bytes; the file is truncated or damaged, replace it")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_bytes(path: Path) -> bytes:
    """Read a raw or gzipped IDX file; a damaged gzip stream becomes a DataError naming the file."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path}: not a complete gzip file ({e}); delete it and run again to "
                        "re-download, or replace it with the original") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None


def check_digest(raw: bytes, name: str, path, spec: DatasetSpec) -> None:
    """Compare the decompressed bytes with the pinned SHA-256 of this file.

    A file that is valid but belongs elsewhere (another pinned dataset, or this dataset's other file)
    is named for what it is: deleting it would be the wrong advice.
    """
    actual = hashlib.sha256(raw).hexdigest()
    if actual == spec.sha256[name]:
        return
    known = {d: (ds.name, f) for ds in DATASETS.values() for f, d in ds.sha256.items()}.get(actual)
    if known and known[0] != spec.name:
        raise DataError(f"{path}: a valid {known[0]} file ({known[1]}), not {spec.name}'s {name}: this folder "
                        f"holds {known[0]}; run with --dataset {known[0]}, or point --data-dir / {spec.env_var} "
                        f"at a folder with the {spec.name} files")
    if known:
        raise DataError(f"{path}: a valid {spec.name} file, but it is {known[1]}, not {name}; the files are "
                        "mixed up: give each its proper name")
    raise DataError(f"{path}: SHA-256 of the decompressed file is {actual}, expected "
                    f"{spec.sha256[name]} ({spec.name}); delete it and run again to re-download, "
                    "or replace it with the original")


def find_idx_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def download_idx_file(folder: Path, name: str, spec: DatasetSpec) -> Path:
    """Fetch <name>.gz from the first mirror that answers; verify it; rename into place atomically."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{folder / name}: missing, and the folder cannot be created to download it "
                        f"({e.strerror}); put the {spec.name} IDX files there or pass --data-dir") from None
    target = folder / (name + ".gz")
    failures = []
    for base in spec.mirrors:
        url = base + name + ".gz"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part.gz")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as r:
                while chunk := r.read(1 << 20):
                    out.write(chunk)
            raw = read_idx_bytes(Path(tmp))
            check_digest(raw, name, url, spec)
            os.replace(tmp, target)
            return target
        except (OSError, DataError, ValueError) as e:
            failures.append(f"{url}: {getattr(e, 'reason', None) or e}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise DataError(f"{folder / name}(.gz) is missing and could not be downloaded ("
                    + "; ".join(failures) + f"). Put the four {spec.name} IDX files (.gz or not) in "
                    f"{folder}, or point --data-dir or {spec.env_var} at a folder that has them")


def decoded_cache_dir(sources: list[Path], dataset: str) -> Path:
    """A cache key from the source files' identity, so a replaced file is decoded and checked again."""
    key = hashlib.sha256()
    for p in sources:
        st = p.stat()
        key.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return cache_root() / "decoded" / f"{dataset}-{key.hexdigest()[:16]}"


CACHE_DIGESTS = "digests.json"


def array_digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).data).hexdigest()


def write_decoded_cache(cache: Path, arrays: dict) -> None:
    """Fill a temporary folder (the arrays and the digest of each), then rename it into place: a cache
    folder is always complete. A broken cache folder there is replaced.

    Best effort: a read-only home only costs the next run a re-decode, and a lost race with another
    process (or an interruption) leaves no temporary folder behind.
    """
    tmp = None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache.parent, prefix=f".{cache.name}."))
        for key, arr in arrays.items():
            np.save(tmp / f"{key}.npy", arr)
        (tmp / CACHE_DIGESTS).write_text(json.dumps({k: array_digest(a) for k, a in arrays.items()}))
        if cache.exists():
            shutil.rmtree(cache, ignore_errors=True)
        os.rename(tmp, cache)
    except OSError:
        pass
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_decoded_cache(cache: Path, keys: tuple) -> dict | None:
    """The cached arrays, memory-mapped, if every one matches the digest recorded when it was decoded;
    None if there is no cache. A cache that does not match (damaged, truncated, or written before digests
    were kept) is reported in one line and rebuilt by the caller. Hashing costs ~0.1 s, once per process."""
    if not cache.exists():
        return None
    try:
        digests = json.loads((cache / CACHE_DIGESTS).read_text())
        arrays = {k: np.load(cache / f"{k}.npy", mmap_mode="r") for k in keys}
        if all(array_digest(arrays[k]) == digests[k] for k in keys):
            return arrays
        reason = "does not match the digests recorded when it was decoded"
    except (OSError, ValueError, KeyError) as e:
        reason = f"is incomplete or unreadable ({e.__class__.__name__})"
    print(f"note: decoded-data cache {cache} {reason}; decoding the IDX files again", file=sys.stderr)
    return None


@lru_cache(maxsize=None)
def load_dataset(dataset: str, data_dir: str | None) -> dict:
    """The four arrays (uint8 images N x 784, uint8 labels), decoded once and cached decoded on disk.

    The first load finds (or downloads) the IDX files, parses and verifies them; later loads
    memory-map the decoded copy, which reads only the rows a run touches.
    """
    spec = DATASETS[dataset]
    folder = data_folder(dataset, data_dir)
    if (data_dir or os.environ.get(spec.env_var)) and not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "data folder does not exist"
        raise DataError(f"{folder}: {what}; give the folder that holds the four {spec.name} IDX files "
                        f"(--data-dir / {spec.env_var}), or create it with them")
    sources = [find_idx_file(folder, n) or download_idx_file(folder, n, spec) for n in IDX_FILES]
    cache = decoded_cache_dir(sources, dataset)
    keys = ("train_images", "train_labels", "test_images", "test_labels")
    cached = read_decoded_cache(cache, keys)
    if cached is not None:
        return cached
    arrays = {}
    for key, name, path in zip(keys, IDX_FILES, sources):
        raw = read_idx_bytes(path)
        arr = parse_idx(raw, path)
        want_ndim = 3 if "images" in key else 1
        if arr.ndim != want_ndim:
            raise DataError(f"{path}: holds a {arr.ndim}-d array, expected {want_ndim}-d "
                            f"({'images' if want_ndim == 3 else 'labels'}); the files are mixed up")
        if want_ndim == 1 and arr.size and arr.max() > 9:
            raise DataError(f"{path}: label {int(arr.max())} found, labels must be 0-9; replace the file")
        check_digest(raw, name, path, spec)
        arrays[key] = arr.reshape(len(arr), -1) if want_ndim == 3 else arr
    for split in ("train", "test"):
        n_img, n_lab = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_img != n_lab:
            raise DataError(f"{folder}: {split} set has {n_img} images but {n_lab} labels; "
                            "replace the files with a matching pair")
    write_decoded_cache(cache, arrays)
    return arrays


# ============================================================================ tasks
# A task is a group of classes (split MNIST) or all ten classes seen through a fixed pixel permutation
# (permuted MNIST). The scenario decides which outputs a task may use:
#   task   - its own classes' logits only (a multi-head output; task identity known at test time);
#   class  - all ten logits, always (class-incremental: no task identity at test time);
#   domain - all ten logits, shared by every task (permuted MNIST: the same classes in a new input space).
SCENARIOS = ("task", "class", "domain")


@dataclass
class Task:
    """What one task of one seed trains and tests on; labels are the classes themselves (0-9)."""
    label: str                     # "digits 0-4", "permutation 2"
    classes: tuple
    head: np.ndarray               # bool (10,): the outputs this task may use
    x_train: np.ndarray            # float32 (n, 784), a balanced subsample of its classes
    y_train: np.ndarray            # int64 (n,)
    x_test: np.ndarray             # float32, every test image of its classes
    y_test: np.ndarray
    permutation: int | None = None  # 1-based index of its pixel permutation (permuted MNIST), else None
    x_val: np.ndarray | None = None  # float32, held-out training images for every choice (--val-per-class)
    y_val: np.ndarray | None = None


@dataclass
class Phase:
    """One training phase: a task's data, or the union of all tasks' data for joint training."""
    x: np.ndarray
    y: np.ndarray
    heads: np.ndarray              # bool (n, 10): the outputs each training image's task may use
    tasks: tuple                   # indices of the tasks trained in this phase


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1]."""
    return np.multiply(images, np.float32(1 / 255), dtype=np.float32)


def normalize(x: np.ndarray, dataset: str) -> np.ndarray:
    """--normalize: (x - mean) / std with the data set's pixel mean and std (DatasetSpec.pixel_mean_std), as
    torchvision's Normalize does in the k-winners source; centred inputs change what an initialisation means."""
    mean, std = (np.float32(v) for v in DATASETS[dataset].pixel_mean_std)
    return (x - mean) / std


def head_mask(classes, scenario: str) -> np.ndarray:
    """The output units a task may use: its own classes' logits (task scenario) or all of them."""
    head = np.zeros(10, dtype=bool)
    head[list(classes) if scenario == "task" else slice(None)] = True
    return head


def task_label(classes, permutation: int | None, dataset: str = "mnist") -> str:
    """A plain name: "digits 0-4", "digits 0,2,4", "permutation 1 (identity)"; classes of a data set
    other than MNIST's digits: "classes 0-4"."""
    if permutation is not None:
        return f"permutation {permutation}" + (" (identity)" if permutation == 1 else "")
    c = sorted(classes)
    run = len(c) > 2 and c == list(range(c[0], c[-1] + 1))
    word = ("digit", "digits") if dataset == "mnist" else ("class", "classes")
    return f"{word[len(c) > 1]} " + (f"{c[0]}-{c[-1]}" if run else ",".join(map(str, c)))


def balanced_subsample(labels: np.ndarray, classes, per_class: int, rng, exclude=None) -> np.ndarray:
    """Indices of `per_class` images of each class, drawn without replacement, sorted; none of `exclude`."""
    allowed = np.ones(len(labels), dtype=bool)
    if exclude is not None:
        allowed[exclude] = False
    picks = [rng.choice(np.flatnonzero((labels == c) & allowed), per_class, replace=False) for c in classes]
    return np.sort(np.concatenate(picks))


@lru_cache(maxsize=None)
def test_split(dataset: str, data_dir: str | None, classes: tuple) -> tuple:
    """Every test image of the given classes, decoded to float32 once per process."""
    data = load_dataset(dataset, data_dir)
    labels = np.asarray(data["test_labels"])
    rows = np.flatnonzero(np.isin(labels, classes))
    return to_float(data["test_images"][rows]), labels[rows].astype(np.int64)


def child(seq: np.random.SeedSequence, i: int) -> np.random.SeedSequence:
    """The i-th child of a seed sequence, the same however often it is asked for."""
    return np.random.SeedSequence(seq.entropy, spawn_key=seq.spawn_key + (i,))


def seed_streams(seed: int) -> list:
    """Independent seed sequences: initial weights, training subsample, minibatch order, dropout masks,
    pixel permutations, fixed weight masks (kwinners), sleep input spikes, the submask flip sample, the
    validation images, the methods against forgetting (replay's buffer and draws). Spawned children do not
    depend on how many are spawned, so adding a stream never changes the draws of the others."""
    return [child(np.random.SeedSequence(seed), i) for i in range(10)]


TASK_KEYS = ("dataset", "data_dir", "tasks", "permuted", "scenario", "n_train_per_class", "n_train_first",
             "val_per_class", "dtype", "normalize")


@lru_cache(maxsize=2)
def _cached_tasks(seed: int, key: str) -> list:
    config = json.loads(key)
    data = load_dataset(config["dataset"], config["data_dir"])
    labels = np.asarray(data["train_labels"])
    streams = seed_streams(seed)
    data_rng, perm_rng = np.random.default_rng(streams[1]), np.random.default_rng(streams[4])
    val_rng, n_val = np.random.default_rng(streams[8]), config["val_per_class"]
    tasks = []
    for t, classes in enumerate(config["tasks"]):
        if config["n_train_first"]:              # a recipe's unbalanced subsample: the file's first N
            rows = np.flatnonzero(np.isin(labels, classes))[:config["n_train_first"]]
        else:
            rows = balanced_subsample(labels, classes, config["n_train_per_class"], data_rng)
        val_rows = balanced_subsample(labels, classes, n_val, val_rng, exclude=rows)  # after: training unchanged
        x_train, x_val = to_float(data["train_images"][rows]), to_float(data["train_images"][val_rows])
        x_test, y_test = test_split(config["dataset"], config["data_dir"], tuple(classes))
        permutation = None
        if config["permuted"]:
            permutation = t + 1
            if t > 0:                            # task 1 is plain MNIST
                pixels = perm_rng.permutation(x_train.shape[1])
                x_train, x_test, x_val = x_train[:, pixels], x_test[:, pixels], x_val[:, pixels]
        if config["normalize"]:
            x_train, x_test, x_val = (normalize(x, config["dataset"]) for x in (x_train, x_test, x_val))
        x_train, x_test, x_val = (x.astype(config["dtype"], copy=False) for x in (x_train, x_test, x_val))
        tasks.append(Task(task_label(classes, permutation, config["dataset"]), tuple(classes),
                          head_mask(classes, config["scenario"]), x_train, labels[rows].astype(np.int64),
                          x_test, y_test, permutation, x_val, labels[val_rows].astype(np.int64)))
    return tasks


def make_tasks(seed: int, config: dict) -> list:
    """The seed's tasks, in training order. Built once per seed and process: every variant of a seed
    trains on the same images (jobs of one seed running side by side share them)."""
    return _cached_tasks(seed, task_key(config))


def task_key(config: dict) -> str:
    """What decides a seed's tasks, as a cache key (settings newer than a config take their defaults)."""
    return json.dumps({k: config[k] if k in config else ADDED_SETTINGS[k] for k in TASK_KEYS})


def training_phases(tasks: list, joint: bool) -> list:
    """One phase per task in order, or (joint training, the upper bound) one phase on their union."""
    phases = [Phase(t.x_train, t.y_train, np.repeat(t.head[None], len(t.y_train), axis=0), (i,))
              for i, t in enumerate(tasks)]
    if not joint:
        return phases
    return [Phase(np.concatenate([p.x for p in phases]), np.concatenate([p.y for p in phases]),
                  np.concatenate([p.heads for p in phases]), tuple(range(len(tasks))))]


def train_sizes(config: dict) -> list:
    """Each task's number of training images, from the flags alone (before any image is loaded)."""
    counts = DATASETS[config.get("dataset", "mnist")].train_class_counts
    return [min(config["n_train_first"], sum(counts[c] for c in t)) if config["n_train_first"]
            else config["n_train_per_class"] * len(t) for t in config["tasks"]]


# ============================================================================ models
# A hidden layer computes z = h W + b; its activation decides which units fire (a boolean mask) and what
# they pass on. The gradient flows through exactly the units that fired. Each activation is one class
# below, registered in ACTIVATIONS with its spec keys: the one place a new activation is added.

def bounded(convert, ok, what: str):
    """A parser of the strings `convert` takes to a value that `ok` accepts, described as `what` in errors."""
    def parse(s: str):
        try:
            v = convert(s)
        except ValueError:
            raise ValueError(f"must be {what}, got {s!r}") from None
        if not ok(v):
            raise ValueError(f"must be {what}, got {s!r}")
        return v
    return parse


def int_at_least(lo: int, what: str):
    return bounded(int, lambda v: v >= lo, what)


def real_in(lo: float, hi: float, what: str, lo_open: bool = False, hi_open: bool = False):
    """Finite numbers in [lo, hi] (ends open as asked)."""
    return bounded(float, lambda v: math.isfinite(v) and (lo < v if lo_open else lo <= v)
                   and (v < hi if hi_open else v <= hi), what)


def one_of(*choices: str, convert=str):
    """Exactly one of the strings `choices`, as `convert` makes it."""
    def parse(s: str):
        if s not in choices:
            raise ValueError(f"must be {', '.join(choices[:-1])} or {choices[-1]}, got {s!r}")
        return convert(s)
    return parse


rate = real_in(0, 1, "a rate in [0, 1)", hi_open=True)
zero_or_one = one_of("0", "1", convert=int)
nonnegative = int_at_least(0, "an integer >= 0")
at_least_zero = real_in(0, math.inf, "a number >= 0")
positive = real_in(0, math.inf, "a positive number", lo_open=True, hi_open=True)


def count_or_percent(s: str):
    """A number of units ("40") or a share of the layer ("10%")."""
    try:
        v = float(s[:-1]) if s.endswith("%") else int(s)
    except ValueError:
        raise ValueError(f"must be a count like 40 or a percentage like 10%, got {s!r}") from None
    if not (0 < v <= (100 if s.endswith("%") else math.inf)):
        raise ValueError(f"must be a count >= 1 or a percentage in (0, 100], got {s!r}")
    return s if s.endswith("%") else v


class Checkpointed:
    """A part of a course whose checkpoint keeps the attributes `state_names()` lists, the ones training
    changes (the rest is rebuilt from the seed and the settings)."""
    STATE: tuple = ()

    def state_names(self):
        return self.STATE

    def state(self) -> dict:
        return {name: getattr(self, name) for name in self.state_names()}

    def load_state(self, state: dict) -> None:
        """Go on from `state` (this part freshly built with the same settings and seed), which must hold
        exactly the attributes named (else ValueError)."""
        names = self.state_names()
        if not isinstance(state, dict) or set(state) != set(names):
            raise ValueError(f"{type(self).__name__}: expected the state {sorted(names)}")
        for name in names:
            setattr(self, name, state[name])


class Activation(Checkpointed):
    """A hidden activation; one instance per hidden layer of a model.

    By default the units in `mask` pass their pre-activation unchanged and the others output 0.
    `keys` lists the spec parameters: name -> (parser, default, meaning). `optimizer` overrides the run's
    optimiser settings for models of this activation (e.g. {"momentum": 0.0} for plain SGD). The hooks
    after `backward` do nothing here; a mechanism with state or weight constraints overrides what it needs.
    """
    keys: dict = {}
    variant_defaults: dict = {}    # this activation's own defaults for VARIANT_KEYS (sdm: {"bias": 0})
    optimizer: dict = {}

    def __init__(self, width: int, **params):
        self.width = width
        for name, value in {**{k: default for k, (_, default, _) in self.keys.items()}, **params}.items():
            setattr(self, name, value)

    def problem(self) -> str | None:
        """Why these parameters cannot work at this width, or None."""
        return None

    def caveat(self, config: dict) -> str | None:
        """A warning, printed before training, about settings this mechanism is known not to learn at."""
        return None

    def out_width(self) -> int:
        return self.width

    def activate(self, z: np.ndarray, training: bool) -> tuple:
        """What the layer passes on, and the mask of units that fired (the gradient's path)."""
        mask = self.mask(z, training)
        return self.forward(z, mask), mask

    def mask(self, z: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError

    def forward(self, z: np.ndarray, mask: np.ndarray) -> np.ndarray:
        z *= mask
        return z

    def backward(self, g: np.ndarray, mask: np.ndarray) -> np.ndarray:
        g *= mask
        return g

    def setup(self, W: np.ndarray, seq: np.random.SeedSequence) -> None:
        """Once per model: the layer's initial incoming weights (shape, dtype) and its own seed sequence."""

    def start_epoch(self, epoch: int) -> None:
        """Before each training epoch; epochs count from 0 at the start of training, across tasks."""

    def prepare_input(self, x: np.ndarray) -> np.ndarray:
        """The network's input as the first hidden layer sees it."""
        return x

    def density(self) -> float:
        """The expected share of this layer's outputs that are non-zero (what --init modified scales the next
        layer's weights by): a half for a rectifier, the winners' share under competition."""
        return 0.5

    def constrain(self, W: np.ndarray, b: np.ndarray, first: bool) -> None:
        """After initialisation and every update, in place: the weights and biases feeding this layer."""

    def constrain_output(self, W: np.ndarray, b: np.ndarray) -> None:
        """The same for the output layer's weights and biases, when this is the last hidden layer."""

    def report(self) -> dict:
        """Measurements of the mechanism for the run's summary (under "mechanism", one entry per layer)."""
        return {}


class ReLU(Activation):
    """Every unit with a positive pre-activation fires."""

    def mask(self, z, training):
        return z > 0


def block_winners(z: np.ndarray, k: int) -> np.ndarray:
    """In each block of k units only the largest fires (the first one on ties).

    Block j holds units j, j+m, ..., j+(k-1)m with m = width/k. Units are exchangeable, so this is
    the usual blocking with a fixed relabelling of units; it lets the block max run on contiguous slabs.
    """
    slabs = z.reshape(len(z), k, -1)
    best = slabs[:, 0].copy()
    for j in range(1, k):
        np.maximum(best, slabs[:, j], out=best)
    mask = np.empty(slabs.shape, dtype=bool)
    taken = np.zeros(best.shape, dtype=bool)
    for j in range(k - 1):
        np.equal(slabs[:, j], best, out=mask[:, j])
        mask[:, j] &= ~taken
        taken |= mask[:, j]
    np.logical_not(taken, out=mask[:, k - 1])
    return mask.reshape(z.shape)


class LWTA(Activation):
    """Local winner-take-all: the block's winner passes its value (even if negative), the others 0."""
    keys = {"k": (int_at_least(2, "an integer >= 2"), 2, "units competing in a block; must divide --hidden")}

    def problem(self):
        return f"k={self.k} does not divide --hidden {self.width}" if self.width % self.k else None

    def density(self):
        return 1 / self.k

    def mask(self, z, training):
        return block_winners(z, self.k)


class Maxout(LWTA):
    """Maxout (Goodfellow et al. 2013): each block of k units passes on only its maximum, so the layer
    is width / k values wide; the gradient goes to the block's arg-max. The mask is the winners, as in
    LWTA, which keeps the same competition but passes the winner in place."""

    def out_width(self):
        return self.width // self.k

    def density(self):
        return 1.0

    def forward(self, z, mask):
        return z.reshape(len(z), self.k, -1).max(axis=1)

    def backward(self, g, mask):
        return (mask.reshape(len(g), self.k, -1) * g[:, None, :]).reshape(len(g), -1)


def n_units(k, width: int) -> int:
    """A count_or_percent value as a number of units of a layer (a share rounds down, at least 1)."""
    return max(1, math.floor(width * float(k[:-1]) / 100 + 1e-9)) if isinstance(k, str) else k


def top_k(z: np.ndarray, k: int) -> np.ndarray:
    """The mask of the k largest values of each row.

    A threshold at the k-th largest value finds them; rows where ties at the threshold would keep
    more than k (rare with float inputs) are resolved exactly, lowest unit index first.
    """
    n = z.shape[1]
    kth = np.partition(z, n - k, axis=1)[:, n - k, None]
    mask = z >= kth
    tied = np.flatnonzero(np.count_nonzero(mask, axis=1) != k)
    if tied.size:
        order = np.argsort(-z[tied], axis=1, kind="stable")[:, :k]
        fixed = np.zeros((tied.size, n), dtype=bool)
        np.put_along_axis(fixed, order, True, axis=1)
        mask[tied] = fixed
    return mask


class TopK(Activation):
    """k-winners-take-all per sample: exactly the k largest pre-activations pass."""
    keys = {"k": (count_or_percent, "10%", "units kept per sample: a count (40) or a share of --hidden (10%)")}

    def __init__(self, width, **params):
        super().__init__(width, **params)
        self.n_kept = n_units(self.k, width)

    def problem(self):
        return f"k={self.k} is more than --hidden {self.width}" if self.n_kept > self.width else None

    def density(self):
        return self.n_kept / self.width

    def mask(self, z, training):
        return top_k(z, self.n_kept)


class SDM(TopK):
    """The SDMLP's Top-K (Bricken et al. 2023): ReLU, then the (k+1)-th largest value, times each unit's
    GABA factor, is subtracted from every unit (an inhibitory interneuron); what stays positive fires.

    Two schedules let every unit learn before competition starts, so fewer die; the paper gives them as
    alternatives and its public code's split-MNIST runs use the GABA switch alone (schedule=gaba, the
    default). GABA switch: each unit's factor clip(-1 + 2 count / N, -1, 1) turns the inhibition from
    excitation into inhibition as it fires (count: training inputs it fired on; N = `gaba`; with gaba_eval=1
    also the inputs of the passes the source's counters see, which let test images move the switch, as there:
    Model.source_passes). Annealing
    (schedule=anneal): k falls linearly from the layer width to its target over the first `anneal` epochs,
    with a factor of 1. schedule=both does both (this program's sdm before the schedule key existed).
    The inhibition is a constant to the gradient (detached, as in the original).
    Weights are non-negative and biases zero throughout (the output layer's too), the first layer's
    input is ReLU'd and L2-normalised and so is each first-layer unit's weight vector; it trains with
    plain SGD. Dead units (silent on every training input of an epoch) are counted per epoch.
    Each ingredient can be switched off alone, to take the SDMLP apart (studies/19_sdm_ablation.py):
    unit_norm=0, nonneg=0, bias=1 (biases trained), gaba=0 (inhibited from the start), k = --hidden (no
    competition: nothing is subtracted, a ReLU layer with the other ingredients).
    """
    keys = {"k": (count_or_percent, 10, "units left firing once annealed: a count or a share of --hidden"),
            "schedule": (one_of("gaba", "anneal", "both"), "gaba",
                         "gaba (the GABA switch), anneal (k annealed) or both"),
            "anneal": (nonnegative, 2,
                       "schedule anneal/both: epochs over which k falls from --hidden (0: k from the start)"),
            "gaba": (nonnegative, 2000,
                     "schedule gaba/both: firings N that switch a unit from excited to inhibited "
                     "(0: inhibited from the start)"),
            "gaba_eval": (zero_or_one, 0, "1: the GABA counters also count the source's evaluation passes "
                                          "(test images of the tasks seen so far after every epoch; EWC's "
                                          "importance pass)"),
            "unit_norm": (zero_or_one, 1, "1: the input is ReLU'd and L2-normalised, and so is each first-layer "
                                          "unit's weight vector"),
            "nonneg": (zero_or_one, 1, "1: every weight, the output layer's too, is held non-negative")}
    variant_defaults = {"bias": 0}     # bias-free unless bias=1
    optimizer = {"optimizer": "sgd", "momentum": 0.0, "weight_decay": 0.0}
    STATE = ("k_now", "counts", "silent", "dead")
    counting = False                   # set while a pass the source's counters count runs (Model.source_passes)

    def __init__(self, width, **params):
        super().__init__(width, **params)
        self.k_now = self.k_at(0)
        self.counts = np.zeros(width, dtype=np.int64)
        self.silent, self.dead = None, []

    def caveat(self, config):
        if config["depth"] > 1 or config["epochs"] < 10:
            return ("sdm trains slowly (unit-norm inputs and weights, plain SGD): its source trains one hidden "
                    "layer for 500 epochs per task (--recipe sdm-split-mnist); at --depth "
                    f"{config['depth']} and --epochs {config['epochs']} it is expected to fail or learn little "
                    "(docs/mechanisms.md)")
        most = sum(train_sizes(config)) * config["epochs"]
        if self.schedule != "anneal" and self.gaba > most:
            return (f"sdm's gaba={self.gaba} is more firings than this run's at most {most:,} training images "
                    "(every task, every epoch) can give a unit: no unit ever switches fully to inhibition; the "
                    "recipe's 5,000,000 is for 500 epochs per task (study 15 scales it to 10,000 per epoch: give "
                    f"--models with sdm:...:gaba={10_000 * config['epochs']})")
        return None

    def k_at(self, epoch: int) -> int:
        """max(k, floor(width - epoch (width - k) / anneal)), in exact integer arithmetic."""
        if not self.anneal or self.schedule == "gaba":
            return self.n_kept
        return max(self.n_kept, self.width + (-epoch * (self.width - self.n_kept)) // self.anneal)

    def gaba_factor(self, dtype) -> np.ndarray:
        if not self.gaba or self.schedule == "anneal":
            return np.ones(self.width, dtype=dtype)
        return np.clip(-1 + 2 * self.counts / self.gaba, -1, 1).astype(dtype)

    def start_epoch(self, epoch):
        if self.silent is not None:
            self.dead.append(int(np.count_nonzero(self.silent)))
        self.silent = np.ones(self.width, dtype=bool)
        self.k_now = self.k_at(epoch)

    def activate(self, z, training):
        a = np.maximum(z, 0)
        n = a.shape[1]
        out = a
        if self.k_now < n:                      # at k = width no unit is left to set the inhibition
            inhibition = np.partition(a, n - self.k_now - 1, axis=1)[:, n - self.k_now - 1, None]
            out = self.gaba_factor(a.dtype) * inhibition
            np.subtract(a, out, out=out)
            np.maximum(out, 0, out=out)
        fired = out > 0
        if training or self.counting:
            per_unit = np.count_nonzero(fired, axis=0)
            self.counts += per_unit
            if self.silent is not None and training:
                self.silent &= per_unit == 0
        return out, fired & (z > 0)             # an excited unit with z <= 0 fires but has no gradient

    def mask(self, z, training):
        return self.activate(z, training)[1]

    def prepare_input(self, x):
        if not self.unit_norm:
            return x
        x = np.maximum(x, 0)
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.finfo(x.dtype).tiny)
        return x

    def constrain(self, W, b, first):
        if self.nonneg:
            np.maximum(W, 0, out=W)
        if first and self.unit_norm:            # a unit whose weights all reached 0 stays 0 (dead)
            W /= np.maximum(np.linalg.norm(W, axis=0), np.finfo(W.dtype).tiny)

    def constrain_output(self, W, b):
        if self.nonneg:
            np.maximum(W, 0, out=W)

    def report(self):
        dead = self.dead + ([int(np.count_nonzero(self.silent))] if self.silent is not None else [])
        return {"dead_units": dead[-1] if dead else None, "dead_units_per_epoch": dead}


class KWinners(Activation):
    """Numenta's k-winners (nupic.torch KWinners) with fixed random sparse weights (SparseWeights).

    The k = round(percent_on width) winners are chosen on boosted values, z exp((k / width - duty)
    boost_strength), and pass their own values; boosting favours units that have fired less than their
    share. A unit's duty cycle is its recent firing rate (winners with a positive value), updated after
    each training batch over a window of duty_cycle_period inputs; boost_strength shrinks by
    boost_strength_factor every epoch. Testing uses k_inference = int(k k_inference_factor) winners.
    Its weights are sparse (SparseWeights): by default half of each unit's incoming weights are held at zero
    (the variant key weight_sparsity, which any activation can take: sparse_mask). The defaults are that
    project's configurations' (k_inference_factor 1.0, boost_strength_factor 1.0, weight_sparsity 0.5), not
    nupic.torch's class defaults (1.5, 0.9).
    """
    keys = {"percent_on": (real_in(0, 1, "a number in (0, 1)", True, True), 0.1,
                           "share of the units that win while training"),
            "boost_strength": (real_in(0, math.inf, "a number >= 0", hi_open=True), 1.0,
                               "how strongly rarely-firing units are favoured (0: no boosting)"),
            "boost_strength_factor": (real_in(0, 1, "a number in [0, 1]"), 1.0,
                                      "boost_strength is multiplied by this every epoch"),
            "duty_cycle_period": (int_at_least(1, "an integer >= 1"), 1000, "inputs the duty cycles average over"),
            "k_inference_factor": (real_in(0, math.inf, "a number > 0", True, True), 1.0,
                                   "winners at test time are int(k * this)")}
    variant_defaults = {"weight_sparsity": 0.5}
    STATE = ("boost", "seen", "duty")

    def __init__(self, width, **params):
        super().__init__(width, **params)
        self.n_kept = int(round(width * self.percent_on))
        self.k_inference = int(self.n_kept * self.k_inference_factor)
        self.boost = self.boost_strength
        self.seen, self.duty = 0, None

    def problem(self):
        if self.n_kept < 1:
            return f"percent_on={self.percent_on} keeps no unit of --hidden {self.width}"
        if not 1 <= self.k_inference <= self.width:
            return (f"k_inference = int(k * k_inference_factor) = {self.k_inference} must be in 1..--hidden "
                    f"{self.width} (k = {self.n_kept})")
        return None

    def density(self):
        return self.percent_on                  # as the source, not the rounded k / width

    def setup(self, W, seq):
        self.duty = np.zeros(self.width, dtype=W.dtype)

    def start_epoch(self, epoch):
        self.boost = self.boost_strength * self.boost_strength_factor ** epoch

    def mask(self, z, training):
        k = self.n_kept if training else self.k_inference
        boosted = z * np.exp((k / self.width - self.duty) * self.boost) if self.boost > 0 else z
        mask = top_k(boosted, k)
        if training:
            batch = len(z)
            self.seen += batch
            period = min(self.duty_cycle_period, self.seen)
            self.duty *= period - batch
            self.duty += np.count_nonzero(mask & (z > 0), axis=0)
            self.duty /= period
        return mask


ACTIVATIONS = {"relu": ReLU, "lwta": LWTA, "topk": TopK, "maxout": Maxout, "sdm": SDM, "kwinners": KWinners}


VARIANT_KEYS = {"dropout_in": (rate, 0.0, "input dropout rate while training"),
                "dropout": (rate, 0.0, "dropout rate of every hidden layer's output while training"),
                "bias": (zero_or_one, 1, "0: no biases (held at exactly zero); sleep implies 0"),
                "sleep": (zero_or_one, 0, "1: sleep replay consolidation after each task (bias-free)"),
                "sleep_iters": (int_at_least(1, "an integer >= 1"), 15000,
                                "sleep time steps after the first task, a third more after each later one"),
                "lr": (positive, None,
                       "this variant's learning rate (default: --lr), so models at their own rates share a run"),
                "weight_sparsity": (real_in(0, 1, "a number in (0, 1]", lo_open=True), 1.0,
                                    "share of each hidden unit's incoming weights that may be non-zero, the rest "
                                    "held at zero (a fixed random mask from the seed; 1: dense)")}


@dataclass(frozen=True)
class Variant:
    """One model of the comparison, parsed from its spec `name[:key=value]...`; the spec is its name."""
    spec: str
    activation: str                # a key of ACTIVATIONS
    params: dict                   # the activation's parameters, defaults filled in
    dropout_in: float = 0.0
    dropout: float = 0.0
    bias: int = 1
    sleep: int = 0
    sleep_iters: int = 15000
    lr: float | None = None
    weight_sparsity: float = 1.0
    methods: dict = field(default_factory=dict)     # {"ewc": {"ewc": 100.0, "ewc_online": 0}, ...}: those on

    def layers(self, width: int, depth: int) -> list:
        return [ACTIVATIONS[self.activation](width, **self.params) for _ in range(depth)]

    def problem(self, width: int) -> str | None:
        """Why this variant cannot work at this width, or None."""
        layer = self.layers(width, 1)[0]
        if layer.problem() or not self.sleep or layer.out_width() == width:
            return layer.problem()
        return (f"sleep runs every hidden unit as a spiking neuron with its own outgoing weights, but "
                f"{self.activation} passes {layer.out_width()} values on from {width} units")

    def settings(self) -> dict:
        """Everything that defines the variant (two specs with equal settings are the same model). The
        bias, sleep and lr keys appear only when set, so the settings of earlier run folders still match."""
        out = {"activation": self.activation, **self.params, "dropout_in": self.dropout_in,
               "dropout": self.dropout}
        if not self.bias:
            out["bias"] = 0
        if self.sleep:
            out.update(sleep=1, sleep_iters=self.sleep_iters)
        if self.lr is not None:
            out["lr"] = self.lr
        if self.weight_sparsity != 1:
            out["weight_sparsity"] = self.weight_sparsity
        for params in self.methods.values():
            out.update(params)
        return out

    def build_methods(self, seq: np.random.SeedSequence) -> list:
        """The variant's methods against forgetting, each with its own child of `seq` (fixed by its name)."""
        return [METHODS[name](child(seq, list(METHODS).index(name)), **params)
                for name, params in self.methods.items()]


def allowed_keys(name: str) -> str:
    keys, own = {**ACTIVATIONS[name].keys, **VARIANT_KEYS, **METHOD_KEYS}, ACTIVATIONS[name].variant_defaults
    return ", ".join(f"{k} ({meaning}; default {own.get(k, default)})" for k, (_, default, meaning) in keys.items())


def only_with(keys: list, condition: str) -> str:
    """'sleep_iters applies only with sleep=1; ...': keys given without the key that turns them on."""
    verb = "applies" if len(keys) == 1 else "apply"
    return f"{', '.join(keys)} {verb} only with {condition}; give that too, or leave {', '.join(keys)} out"


def parse_variant(spec: str) -> Variant:
    """`lwta:k=4:dropout=0.5` -> Variant. Raises ValueError naming the spec and what is allowed."""
    name, *pairs = spec.split(":")
    if name not in ACTIVATIONS:
        raise ValueError(f"{spec!r}: unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")
    keys, values = {**ACTIVATIONS[name].keys, **VARIANT_KEYS, **METHOD_KEYS}, {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if key not in keys or not eq:
            what = f"unknown key {key!r}" if eq else f"expected key=value, got {pair!r}"
            raise ValueError(f"{spec!r}: {what} for {name}; allowed keys: {allowed_keys(name)}")
        if key in values:
            raise ValueError(f"{spec!r}: key {key!r} given twice")
        try:
            values[key] = keys[key][0](value)
        except ValueError as e:
            raise ValueError(f"{spec!r}: {key} {e}") from None
    params = {k: values.get(k, default) for k, (_, default, _) in ACTIVATIONS[name].keys.items()}
    defaults = {k: default for k, (_, default, _) in VARIANT_KEYS.items()} | ACTIVATIONS[name].variant_defaults
    common = {k: values.get(k, default) for k, default in defaults.items()}
    if common["sleep"]:                         # the original sleeps a network without biases
        if values.get("bias") == 1:
            raise ValueError(f"{spec!r}: sleep needs a bias-free network (the spiking phase has no bias input, "
                             "as in the original); leave bias out or give bias=0")
        common["bias"] = 0
    elif any(k.startswith("sleep_") for k in values):
        raise ValueError(f"{spec!r}: {only_with([k for k in values if k.startswith('sleep_')], 'sleep=1')}")
    methods = {}
    for method, cls in METHODS.items():         # a method is on when its strength (its first key) is not 0
        if values.get(method):
            methods[method] = {k: values.get(k, default) for k, (_, default, _) in cls.keys.items()}
        elif extra := sorted((set(cls.keys) - {method}) & values.keys()):
            raise ValueError(f"{spec!r}: {only_with(extra, f'{method} > 0')}")
    return Variant(spec, name, params, **common, methods=methods)


INIT_GAIN = {"he": 2.0, "lecun": 1.0}     # weight variance = gain / fan-in


def init_spec(s: str) -> str:
    """--init: he, lecun, torch, modified, or uniform:S (weights uniform in [-S, S])."""
    kind, colon, scale = s.partition(":")
    if kind in (*INIT_GAIN, "torch", "modified") and not colon:
        return s
    try:
        ok = kind == "uniform" and 0 < float(scale) < math.inf
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError("must be he, lecun, torch, modified or uniform:S with S > 0 "
                                         f"(e.g. uniform:0.01), got {s!r}")
    return s


def init_params(shapes: list, rng, gain: float = 2.0, dtype: str = "float32", uniform: float | None = None,
                torch: bool = False, densities: list | None = None) -> list:
    """[W1, b1, ..., W_out, b_out]: normal weights of variance gain / fan-in (He: 2, LeCun: 1) and zero
    biases; or with `uniform`, weights uniform in [-uniform, uniform] and zero biases; or with `torch`,
    torch.nn.Linear's default: weights and biases uniform in [-1/sqrt(fan-in), 1/sqrt(fan-in)].
    With `densities` too (--init modified: numenta/nupic.research's "modified" initialisation, Iyer et al.
    2022), layer i's weights are uniform in +-1/sqrt(densities[i] fan-in), the fan-in counted in inputs likely
    to be non-zero through weights that may be non-zero (input density x weight density); biases as torch's."""
    params = []
    for i, (a, b) in enumerate(shapes):
        if torch:
            bound = 1 / math.sqrt(a)
            w_bound = 1 / math.sqrt(a * densities[i]) if densities else bound
            params += [rng.uniform(-w_bound, w_bound, (a, b)).astype(dtype),
                       rng.uniform(-bound, bound, b).astype(dtype)]
            continue
        W = rng.uniform(-uniform, uniform, (a, b)) if uniform else rng.standard_normal((a, b)) * math.sqrt(gain / a)
        params += [W.astype(dtype), np.zeros(b, dtype=dtype)]
    return params


def init_arguments(init: str, densities: list) -> dict:
    """An --init value as init_params' keyword arguments (`densities`: each layer's input x weight density)."""
    kind, _, scale = init.partition(":")
    if kind in INIT_GAIN:
        return {"gain": INIT_GAIN[kind]}
    if kind == "modified":
        return {"torch": True, "densities": densities}
    return {"torch": True} if kind == "torch" else {"uniform": float(scale)}


def dropout_mask(rng, shape: tuple, p: float) -> np.ndarray:
    """Inverted dropout: keep a unit with probability 1 - p and scale it by 1 / (1 - p), so a trained
    network is tested as it is. The same generator state gives the same mask at any rate p."""
    return (rng.random(shape, dtype=np.float32) >= p) * np.float32(1 / (1 - p))


def sparse_mask(W: np.ndarray, density: float, seq: np.random.SeedSequence) -> np.ndarray:
    """Sparse weights (nupic.torch's SparseWeights, in the meaning of Pervasive-AI-Lab/sparse-dynamic-synapses
    and nupic.torch before 2020, where weight_sparsity is the share kept; later nupic versions name the share
    of zeros `sparsity`): 1 for the round(density fan-in) incoming weights of each unit (column) that may be
    non-zero, 0 for the rest, drawn per unit from the layer's own seed, so variants with equal settings share
    the masks."""
    n_in = W.shape[0]
    order = np.random.default_rng(seq).random(W.shape).argsort(axis=0)     # the inputs drawn first are zeroed
    keep = np.ones(W.shape, dtype=W.dtype)
    np.put_along_axis(keep, order[:n_in - round(density * n_in)], 0, axis=0)
    return keep


def clip_column_norms(W: np.ndarray, c: float) -> None:
    """Max-norm, the weight constraint that goes with dropout (Srivastava et al. 2014): each unit's
    incoming weight vector (a column of W) is rescaled, in place, to L2 norm c if it is longer. It bounds
    the weights without shrinking the ones inside the limit."""
    norms = np.sqrt(np.einsum("ij,ij->j", W, W))
    long = norms > c
    if long.any():
        W *= np.divide(W.dtype.type(c), norms, out=np.ones_like(norms), where=long)


def failed_because(failed: dict | None, reason: str) -> bool:
    """Whether a run's failure record (a model's `failed`, or a summary's) names this reason: "diverged"
    (training stopped, chance from there on) or "learned nothing" (training went on)."""
    return bool(failed) and failed["reason"] == reason


class Model(Checkpointed):
    """One MLP: its layers, parameters, the optimiser state of the current phase, and its bookkeeping."""

    def __init__(self, variant: Variant, config: dict, streams: list, n_in: int = 784):
        self.variant, self.config = variant, config
        self.layers = variant.layers(config["hidden"], config["depth"])
        ins = [n_in] + [layer.out_width() for layer in self.layers]
        outs = [config["hidden"]] * config["depth"] + [10]
        densities = [a * w for a, w in zip([1.0] + [layer.density() for layer in self.layers],
                                           [variant.weight_sparsity] * len(self.layers) + [1.0])]
        self.params = init_params(list(zip(ins, outs)), np.random.default_rng(streams[0]),
                                  dtype=config.get("dtype", "float32"),
                                  **init_arguments(config.get("init", "he"), densities))
        rates = [variant.dropout_in] + [variant.dropout] * config["depth"]
        self.dropout = [(p, np.random.default_rng(child(streams[3], i))) if p else None
                        for i, p in enumerate(rates)]
        self.keep = [sparse_mask(self.params[2 * i], variant.weight_sparsity, child(streams[5], i))
                     for i in range(len(self.layers))] if variant.weight_sparsity < 1 else []
        for i, layer in enumerate(self.layers):
            layer.setup(self.params[2 * i], child(streams[5], i))
        self.optimizer = {**type(self.layers[0]).optimizer,     # every hidden layer has the same activation
                          **({"lr": variant.lr} if variant.lr else {})}
        self.loss = LOSSES[config.get("loss", "xent")]
        self.methods = variant.build_methods(streams[9])
        self.constrain()
        self.velocity, self.second, self.steps, self.scratch, self.decay = [], [], 0, [], []
        self.failed: dict | None = None
        self.train_s = self.eval_s = self.val_s = 0.0         # seconds training, testing, on validation images
        self.epochs = 0                                      # training epochs begun, across tasks

    STATE = ("params", "velocity", "second", "steps", "failed", "train_s", "eval_s", "epochs")

    @property
    def diverged(self) -> bool:
        """A failure that ends training (a model that learned nothing goes on, and is measured)."""
        return failed_because(self.failed, "diverged")

    def diverge(self, where: dict, detail: str) -> None:
        """Mark the model diverged at `where`, keeping an earlier failure (learned nothing) inside the record."""
        earlier = {"after": self.failed} if self.failed else {}
        self.failed = {"reason": "diverged", **where, "detail": detail, **earlier}

    def state(self) -> dict:
        """What training has changed, for a checkpoint at a phase's end: the parameters, the optimiser's state,
        the dropout generators, and each layer's and method's own (scratch space and weight decay are remade
        when the next phase starts; everything else is rebuilt from the seed and the settings)."""
        return {**super().state(), "dropout": [drop and drop[1] for drop in self.dropout],
                "layers": [layer.state() for layer in self.layers],
                "methods": [method.state() for method in self.methods]}

    def load_state(self, state: dict) -> None:
        """Go on from `state` (this model freshly built with the same variant, settings and seed)."""
        shapes = [(p.shape, p.dtype) for p in self.params]
        if [(p.shape, p.dtype) for p in state["params"]] != shapes or any(
                [(v.shape, v.dtype) for v in state[k]] not in ([], shapes) for k in ("velocity", "second")):
            raise ValueError("the parameters or the optimiser's state do not fit the model")
        if [len(state[k]) for k in ("dropout", "layers", "methods")] != [len(self.dropout), len(self.layers),
                                                                         len(self.methods)]:
            raise ValueError("the dropout generators, layers or methods do not fit the model")
        super().load_state({k: state[k] for k in self.STATE})
        self.dropout = [drop and (drop[0], rng) for drop, rng in zip(self.dropout, state["dropout"])]
        for part, part_state in zip(self.layers + self.methods, state["layers"] + state["methods"]):
            part.load_state(part_state)

    def constrain(self) -> None:
        """Impose each layer's weight constraints (after initialisation and after every update)."""
        for W, keep in zip(self.params[0::2], self.keep):     # sparse weights: the masked ones stay zero
            W *= keep
        for i, layer in enumerate(self.layers):
            layer.constrain(self.params[2 * i], self.params[2 * i + 1], i == 0)
        self.layers[-1].constrain_output(self.params[-2], self.params[-1])
        if self.config.get("max_norm"):
            for W in self.params[0:-2:2]:       # hidden units' incoming weights; the output layer is free
                clip_column_norms(W, self.config["max_norm"])
        if not self.variant.bias:               # bias-free: every bias is held at exactly zero
            for b in self.params[1::2]:
                b[...] = 0

    def start_epoch(self) -> None:
        for layer in self.layers:
            layer.start_epoch(self.epochs)
        self.epochs += 1

    @contextmanager
    def counted(self):
        """Forward passes inside are ones the SDM source's GABA counters count (sdm:gaba_eval=1), e.g. its
        EWC importance pass; without gaba_eval nothing changes."""
        layers = [layer for layer in self.layers if getattr(layer, "gaba_eval", 0)]
        for layer in layers:
            layer.counting = True
        try:
            yield
        finally:
            for layer in layers:
                layer.counting = False

    def source_passes(self, tasks: list, chunk: int = 1024) -> None:
        """sdm:gaba_eval=1: after every epoch, the forward passes the SDM source makes on the test images of
        the tasks seen so far (its per-epoch evaluation), for its GABA counters alone: nothing is measured, and
        a job's numbers stay the same whatever this program itself measures."""
        if not any(getattr(layer, "gaba_eval", 0) for layer in self.layers):
            return
        t0 = time.perf_counter()
        with self.counted(), np.errstate(over="ignore", invalid="ignore"):
            for t in tasks:
                for s in range(0, len(t.x_test), chunk):
                    self.forward(t.x_test[s:s + chunk])
        self.train_s += time.perf_counter() - t0

    def report(self) -> dict:
        """The layers' mechanism measurements, {key: [one value per hidden layer]} ({} if none)."""
        out = {}
        for layer in self.layers:
            for key, value in layer.report().items():
                out.setdefault(key, []).append(value)
        return out

    def forward(self, x: np.ndarray, training: bool = False):
        """Logits plus what backward needs: each layer's input, each hidden mask, each dropout mask."""
        inputs, masks, drops, h = [], [], [], self.layers[0].prepare_input(x)
        for i in range(len(self.layers) + 1):
            drop = self.dropout[i] if training else None
            d = dropout_mask(drop[1], h.shape, drop[0]) if drop else None
            h = h * d if drop else h
            inputs.append(h)
            drops.append(d)
            z = h @ self.params[2 * i]
            z += self.params[2 * i + 1]
            if i == len(self.layers):
                return z, (inputs, masks, drops)
            h, m = self.layers[i].activate(z, training)
            masks.append(m)

    def backward(self, d_logits: np.ndarray, cache) -> list:
        """Gradients [dW1, db1, ...] of the loss whose logit gradient is d_logits."""
        inputs, grads = cache[0], []
        for i, g in self.errors(d_logits, cache):
            grads[:0] = [inputs[i].T @ g, g.sum(axis=0)]
        return grads

    def errors(self, d_logits: np.ndarray, cache):
        """(i, d loss / d z_i) for each layer i from the output layer down: the error at each layer's
        pre-activation, one row per image (the weight gradient of layer i is its input's transpose times it)."""
        _, masks, drops = cache
        g = d_logits
        for i in range(len(masks), -1, -1):
            yield i, g
            if i > 0:
                g = g @ self.params[2 * i].T
                if drops[i] is not None:
                    g *= drops[i]
                g = self.layers[i - 1].backward(g, masks[i - 1])


def masked_cross_entropy(logits, y, heads):
    """Mean softmax cross-entropy over each image's allowed logits only (the head mask).

    Logits outside the head are set to -inf: they get probability 0, so d loss / d logits, which is
    returned with the loss, is exactly zero on them.
    """
    z = np.where(heads, logits, -np.inf)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    loss = float(np.mean(np.log(s[:, 0]) - z[rows, y]))
    e /= s
    e[rows, y] -= 1
    e /= len(y)
    return loss, e


def relu_squared_error(out, y, heads):
    """Half the summed squared error between a ReLU output layer, relu(out), and one-hot targets, mean
    over images, on each image's allowed outputs only: the loss DeepLearnToolbox's nnff/nnbp train a
    non-softmax output on (the sleep replay original's recipe). Returns it with d loss / d out, which is
    zero where the output unit is off (out <= 0) or outside the head."""
    e = np.maximum(out, 0)
    e[np.arange(len(y)), y] -= 1
    e *= heads
    loss = float(0.5 * np.einsum("ij,ij->", e, e) / len(y))
    e *= out > 0
    e /= len(y)
    return loss, e


@dataclass(frozen=True)
class Loss:
    value_and_gradient: object     # (logits, labels, heads) -> (mean loss, d loss / d logits)
    output: object                 # logits -> the scores the prediction is the arg-max of


def identity(z: np.ndarray) -> np.ndarray:
    return z


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0)


LOSSES = {"xent": Loss(masked_cross_entropy, identity),
          "mse": Loss(relu_squared_error, relu)}      # ties at 0 go to the first class, as max() does in MATLAB


# ============================================================================ methods against forgetting
# The field's standard ways to protect earlier tasks, each a spec key that combines with any activation
# (lwta:ewc=100, sdm:replay=20), so every combination is paired with every other on the same seeds. A method
# hooks into training at five points: a phase's start, each minibatch (replay adds images), each gradient
# (a penalty adds its own), each update (SI follows the path) and a phase's end (importances, anchors, the
# buffer). Each is one class below, registered in METHODS: the one place a method is added. The facts follow
# GMvandeVen/continual-learning (models/cl/continual_learner.py, models/classifier.py), the field's common
# public implementation, except where a docstring says otherwise.

class Method(Checkpointed):
    """A method against forgetting; one instance per model. `keys` lists its spec parameters (the first
    is its strength, named like the method; 0 switches it off). The hooks do nothing here. Every other
    attribute is what the method has gathered (anchors, importances, buffers, its generator): its state,
    which a subclass sets up in __init__."""
    keys: dict = {}

    def __init__(self, seq: np.random.SeedSequence, **params):
        for name, value in params.items():
            setattr(self, name, value)

    def state_names(self):
        return [name for name in vars(self) if name not in self.keys]

    def start_phase(self, model: Model) -> None:
        """Before a phase's first update."""

    def minibatch(self, x, y, heads, weight) -> tuple:
        """The minibatch trained on, and each image's weight in the loss relative to a plain mean (or None)."""
        return x, y, heads, weight

    def add_gradient(self, model: Model, grads: list, scale: float) -> None:
        """Add the method's own gradient, times `scale` (SGD's learning rate), to the loss's, in place."""

    def before_update(self, model: Model, grads: list, scale: float) -> None:
        """Just before the optimiser's step, with the gradient it takes (penalties and clipping included)."""

    def after_update(self, model: Model) -> None:
        """Just after the step and the weight constraints."""

    def end_phase(self, model: Model, phase: Phase) -> None:
        """After a phase's training (and sleep), before the next phase; not after the last."""


class Penalty(Method):
    """A quadratic penalty towards anchors: strength / 2 * sum over terms and parameters of
    importance * (theta - anchor)^2, whose gradient is strength * importance * (theta - anchor). Every
    parameter counts, biases and the output layer included. A term is (importances or None for 1, anchors)."""

    def __init__(self, seq, **params):
        super().__init__(seq, **params)
        self.terms = []

    def strength(self) -> float:
        raise NotImplementedError

    def value(self, params: list) -> float:
        """The penalty at `params` (what add_gradient is the gradient of)."""
        total = 0.0
        for importance, anchor in self.terms:
            for i, p in enumerate(params):
                d = (p - anchor[i]).astype(np.float64)
                total += float(np.sum(d * d * (1 if importance is None else importance[i])))
        return 0.5 * self.strength() * total

    def add_gradient(self, model, grads, scale):
        coef = model.params[0].dtype.type(scale * self.strength())
        for i, (p, g, tmp) in enumerate(zip(model.params, grads, model.scratch)):
            for importance, anchor in self.terms:
                np.subtract(p, anchor[i], out=tmp)
                if importance is not None:
                    tmp *= importance[i]
                tmp *= coef
                g += tmp


def snapshot(params: list) -> list:
    return [p.copy() for p in params]


class L2(Penalty):
    """l2=lambda: lambda / 2 * ||theta - theta_prev||^2 towards the weights at the end of the previous task
    (Goodfellow et al. 2014's L2 baseline): every weight held equally, whatever its use."""
    keys = {"l2": (at_least_zero, 0.0, "L2 penalty lambda towards the previous task's weights (0: off)")}

    def strength(self):
        return self.l2

    def end_phase(self, model, phase):
        self.terms = [(None, snapshot(model.params))]


def softmax_in_head(logits: np.ndarray, heads: np.ndarray) -> np.ndarray:
    """The model's class probabilities over each image's allowed outputs (0 outside them)."""
    z = np.where(heads, logits, -np.inf)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def diagonal_fisher(model: Model, x: np.ndarray, heads: np.ndarray, chunk: int = 256) -> list:
    """The diagonal of the Fisher information of the model's softmax, mean over the images x: for each
    image the expectation, under the model's own class probabilities p, of the squared gradient of
    -log p(c | x) (the exact Fisher, van de Ven's default labels "all"; not the empirical Fisher of the true
    labels). No dropout (evaluation mode). An image's weight gradient in layer i is the outer product of
    the layer's input h and error g, so the squares summed over images and classes are (h^2)^T (sum_c g_c^2):
    no loop over images. The source divides by the number of images minus one (a loop index); this divides
    by the number of images."""
    sums = [np.zeros_like(p) for p in model.params]
    for s in stoppable(len(x), chunk):
        logits, cache = model.forward(x[s:s + chunk])
        prob = softmax_in_head(logits, heads[s:s + chunk])
        squares = [0.0] * len(cache[0])
        for c in range(prob.shape[1]):
            root = np.sqrt(prob[:, c:c + 1])
            if not root.any():
                continue
            d = prob * root                         # sqrt(p_c) (p - e_c): the class-c gradient, weighted
            d[:, c] -= root[:, 0]
            for i, g in model.errors(d, cache):
                squares[i] = squares[i] + g * g
        for i, (h, g2) in enumerate(zip(cache[0], squares)):
            sums[2 * i] += np.square(h).T @ g2
            sums[2 * i + 1] += g2.sum(axis=0)
    for a in sums:
        a /= a.dtype.type(len(x))
    return sums


def sdm_importance(model: Model, phase: Phase, rng, batches: int = 6, size: int = 512, beta: float = 0.005,
                   divisor: float = 2560.0) -> list:
    """EWC's importance as TrentBrick/SDMContinualLearner computes it (models/CL_Benchmarks.py, EWC_Memory):
    `batches` shuffled minibatches of `size` of the task's training images, evaluation mode; each
    minibatch's loss is the cross-entropy, summed over its images, of softmax(beta z) against the model's own
    arg-max; the importance is the sum over minibatches of that loss's squared gradient, over `divisor`.
    The square is of the minibatch's summed gradient, not a sum of per-image squares (not a Fisher)."""
    rows = rng.permutation(len(phase.y))[:batches * size]
    out = [np.zeros_like(p) for p in model.params]
    for s in stoppable(len(rows), size):
        x, heads = phase.x[rows[s:s + size]], phase.heads[rows[s:s + size]]
        logits, cache = model.forward(x)
        d = softmax_in_head(logits * logits.dtype.type(beta), heads)
        d[np.arange(len(d)), np.where(heads, logits, -np.inf).argmax(axis=1)] -= 1
        d *= d.dtype.type(beta)
        for total, g in zip(out, model.backward(d, cache)):
            total += g * g
    for total in out:
        total /= total.dtype.type(divisor)
    return out


class EWC(Penalty):
    """ewc=lambda (Kirkpatrick et al. 2017): after each task, the diagonal Fisher of its training images
    (diagonal_fisher) and the weights then; the penalty lambda / 2 * sum over past tasks of
    F_t * (theta - theta_t)^2. That sum is kept as one quadratic, the summed Fisher at the Fisher-weighted
    mean of the anchors (equal up to a constant, and to float rounding from the third task on), so an
    update costs the same after ten tasks as after two. ewc_online=1: one running Fisher,
    F <- F_t + gamma F with gamma = 1 (the source's default), anchored at the latest task's weights
    (Schwarz et al. 2018). ewc_fisher=sdm: the SDM source's importance (sdm_importance) and penalty
    lambda * sum F (theta - theta_t)^2 (no half)."""
    keys = {"ewc": (at_least_zero, 0.0, "EWC penalty lambda (0: off)"),
            "ewc_online": (zero_or_one, 0, "1: online EWC, one running Fisher at the latest weights"),
            "ewc_fisher": (one_of("exact", "sdm"), "exact",
                           "exact: the softmax's diagonal Fisher; sdm: the SDM source's importance and penalty")}

    def __init__(self, seq, **params):
        super().__init__(seq, **params)
        self.rng = np.random.default_rng(seq)

    def strength(self):
        return self.ewc * (2 if self.ewc_fisher == "sdm" else 1)

    def end_phase(self, model, phase):
        with model.counted():                   # the SDM source's GABA counters count this pass too
            fisher = (sdm_importance(model, phase, self.rng) if self.ewc_fisher == "sdm"
                      else diagonal_fisher(model, phase.x, phase.heads))
        anchor = snapshot(model.params)
        if self.terms:
            old, old_anchor = self.terms[0]
            total = [f + o for f, o in zip(fisher, old)]
            if not self.ewc_online:             # sum_t F_t (theta - theta_t)^2 = F (theta - a)^2 + const
                anchor = [weighted_anchor(o, a_o, f, a, t) for o, a_o, f, a, t in zip(old, old_anchor, fisher,
                                                                                       anchor, total)]
            fisher = total
        self.terms = [(fisher, anchor)]


def weighted_anchor(f1, a1, f2, a2, total) -> np.ndarray:
    """(f1 a1 + f2 a2) / (f1 + f2), computed in float64; where both importances are 0, a2."""
    num = f1.astype(np.float64) * a1 + f2.astype(np.float64) * a2
    return np.divide(num, total, out=a2.astype(np.float64), where=total > 0).astype(a2.dtype)


class SI(Penalty):
    """si=c (Zenke et al. 2017): each weight's share of the loss decrease along the training path,
    w += -g * (change at this update), with g the gradient of the whole loss (penalty included, as in the
    source); at a task's end omega += w / (total change over the task^2 + xi), and the penalty is
    c * sum omega * (theta - theta_end)^2 (no factor 1/2 in the source: strength 2c here)."""
    keys = {"si": (at_least_zero, 0.0, "SI penalty c (0: off)"),
            "si_xi": (real_in(0, math.inf, "a number > 0", lo_open=True), 0.1, "SI damping xi")}

    def __init__(self, seq, **params):
        super().__init__(seq, **params)
        self.start = self.path = self.before = self.grad = self.omega = None     # set at each phase's start

    def strength(self):
        return 2 * self.si

    def start_phase(self, model):
        self.start = snapshot(model.params)
        self.path = [np.zeros_like(p) for p in model.params]
        self.before, self.grad = snapshot(model.params), [np.empty_like(p) for p in model.params]
        self.omega = self.terms[0][0] if self.terms else [np.zeros_like(p) for p in model.params]

    def before_update(self, model, grads, scale):
        for p, g, b, own in zip(model.params, grads, self.before, self.grad):
            np.copyto(b, p)
            np.multiply(g, g.dtype.type(1 / scale), out=own)

    def after_update(self, model):
        for p, g, b, w in zip(model.params, self.grad, self.before, self.path):
            np.subtract(p, b, out=b)                # the change at this update
            b *= g
            w -= b

    def end_phase(self, model, phase):
        xi = model.params[0].dtype.type(self.si_xi)
        with np.errstate(over="ignore", invalid="ignore"):      # a path that overflowed diverges next phase
            for p, s, w, o in zip(model.params, self.start, self.path, self.omega):
                o += w / (np.square(p - s) + xi)
        self.terms = [(self.omega, snapshot(model.params))]


class Replay(Method):
    """replay=N: experience replay. After each task, N of its training images per class (drawn at random
    from the seed, without replacement) join a buffer; while a later task trains, every minibatch of B new
    images gets min(B, buffer size) images drawn from the buffer, and the loss is (1/t) * mean over the new
    images + (1 - 1/t) * mean over the replayed ones, t = tasks seen so far with the current one (the
    source's weighting, models/classifier.py). The buffer holds past tasks' training images only. With
    permuted tasks, every task's classes count as its own (N per class and task)."""
    keys = {"replay": (nonnegative, 0,
                       "experience replay: training images kept per class of each past task (0: off)")}

    def __init__(self, seq, **params):
        super().__init__(seq, **params)
        self.rng = np.random.default_rng(seq)
        self.x = self.y = self.heads = None
        self.tasks_seen = 0

    def minibatch(self, x, y, heads, weight):
        if self.x is None:
            return x, y, heads, weight
        n = min(len(y), len(self.y))
        pick = self.rng.choice(len(self.y), n, replace=False)
        t = self.tasks_seen + 1
        weight = np.concatenate([np.full(len(y), (len(y) + n) / (t * len(y)), dtype=x.dtype),
                                 np.full(n, (len(y) + n) * (1 - 1 / t) / n, dtype=x.dtype)])
        return (np.concatenate([x, self.x[pick]]), np.concatenate([y, self.y[pick]]),
                np.concatenate([heads, self.heads[pick]]), weight)

    def end_phase(self, model, phase):
        rows = balanced_subsample(phase.y, np.unique(phase.y), self.replay, self.rng)
        add = (phase.x[rows], phase.y[rows], phase.heads[rows])
        old = (self.x, self.y, self.heads)
        self.x, self.y, self.heads = (a if b is None else np.concatenate([b, a]) for a, b in zip(add, old))
        self.tasks_seen += 1


METHODS = {"ewc": EWC, "si": SI, "l2": L2, "replay": Replay}
METHOD_KEYS = {k: v for m in METHODS.values() for k, v in m.keys.items()}


# ============================================================================ training
STOP = threading.Event()           # set by a signal: every job stops between minibatches


class Stopped(Exception):
    """Raised inside a job when STOP is set."""


def stoppable(n: int, step: int):
    """range(0, n, step) that raises Stopped before a step once STOP is set: where a job stops."""
    for start in range(0, n, step):
        if STOP.is_set():
            raise Stopped
        yield start


def optimizer_settings(model: Model, config: dict) -> dict:
    """The run's optimiser settings with the overrides the model's activation asks for (sdm: plain SGD);
    settings newer than a config (an old run folder's) take the values it ran with."""
    return {**ADDED_SETTINGS, **config, **model.optimizer}


def reset_optimizer(model: Model, head: np.ndarray, config: dict, carry: bool = False) -> None:
    """The optimiser for a phase: zero state (SGD's momentum, Adam's moments and step count) or, with
    carry, the state the last phase ended with; weight decay on the output weights of the phase's outputs
    only. With no gradient and no decay, other tasks' output weights do not move."""
    config = optimizer_settings(model, config)
    if not (carry and model.velocity):
        model.velocity = [np.zeros_like(p) for p in model.params]
        model.second = [np.zeros_like(p) for p in model.params] if config["optimizer"] == "adam" else []
        model.steps = 0
    model.scratch = [np.empty_like(p) for p in model.params]
    real = model.params[0].dtype.type
    decay = real(config["weight_decay"] * (config["lr"] if OPTIMIZERS[config["optimizer"]].lr_in_gradient else 1))
    model.decay = [decay] * (len(model.params) // 2 - 1) + [np.where(head, decay, real(0))]


def sgd_step(model: Model, lr_grads: list, config: dict) -> None:
    """SGD with momentum and L2 weight decay on weights (not biases).

    The same update as v = mu v + g + wd w; w -= lr v, kept as u = lr v so that the learning rate
    rides on the logit gradient (backprop is linear) and each weight matrix takes five in-place passes.
    """
    mu = config["momentum"]
    for i, (p, g, u) in enumerate(zip(model.params, lr_grads, model.velocity)):
        u *= mu
        u += g
        if i % 2 == 0 and config["weight_decay"]:    # weights decay; biases do not
            scratch = model.scratch[i]
            np.multiply(p, model.decay[i // 2], out=scratch)
            u += scratch
        p -= u


def adam_step(model: Model, grads: list, config: dict) -> None:
    """Adam (Kingma & Ba 2015) as torch.optim.Adam computes it, L2 weight decay added to the weights'
    gradients: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    w -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)."""
    b1, b2 = config["adam_betas"]
    model.steps += 1
    real = model.params[0].dtype.type
    step = real(config["lr"] / (1 - b1 ** model.steps))
    root_c2 = real(math.sqrt(1 - b2 ** model.steps))
    eps = real(config["adam_eps"])
    for i, (p, g, m, v, scratch) in enumerate(zip(model.params, grads, model.velocity, model.second,
                                                   model.scratch)):
        if i % 2 == 0 and config["weight_decay"]:
            g += p * model.decay[i // 2]
        m *= real(b1)
        m += real(1 - b1) * g
        np.multiply(g, g, out=scratch)
        v *= real(b2)
        scratch *= real(1 - b2)
        v += scratch
        np.sqrt(v, out=scratch)
        scratch /= root_c2
        scratch += eps
        np.divide(m, scratch, out=scratch)
        scratch *= step
        p -= scratch


@dataclass(frozen=True)
class Optimizer:
    step: object                   # (model, grads, config) -> None, updates model.params in place
    lr_in_gradient: bool           # SGD takes gradients already scaled by the learning rate


OPTIMIZERS = {"sgd": Optimizer(sgd_step, True), "adam": Optimizer(adam_step, False)}


def clip_gradient_norm(grads: list, max_norm: float, scale: float) -> None:
    """torch.nn.utils.clip_grad_norm_: if the gradients' joint L2 norm (all parameters) exceeds max_norm,
    scale them down to it (times 1 / (norm + 1e-6)). `scale` is what the gradients are already
    multiplied by (SGD's learning rate), so the norm compared is the gradient's own."""
    norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads)) / scale
    coef = max_norm / (norm + 1e-6)
    if coef < 1:
        for g in grads:
            g *= g.dtype.type(coef)


def train_epoch(model: Model, xs, ys, heads, config: dict, where: dict) -> float | None:
    """One pass over a phase's data, already in this epoch's order (the same order for every model).

    A model whose loss or weights turn non-finite is marked diverged with `where` it happened, and stops at
    once. Returns the mean training loss, or None once diverged.
    """
    t0 = time.perf_counter()
    config = optimizer_settings(model, config)
    optimizer = OPTIMIZERS[config["optimizer"]]
    scale = config["lr"] if optimizer.lr_in_gradient else 1.0
    size, total, seen = config["batch_size"], 0.0, 0
    model.start_epoch()
    with np.errstate(over="ignore", invalid="ignore"):
        for s in stoppable(len(xs), size):
            xb, yb, hb, weight = xs[s:s + size], ys[s:s + size], heads[s:s + size], None
            for method in model.methods:
                xb, yb, hb, weight = method.minibatch(xb, yb, hb, weight)
            logits, cache = model.forward(xb, training=True)
            loss, d_logits = model.loss.value_and_gradient(logits, yb, hb)
            if not math.isfinite(loss):
                model.diverge(where, "the training loss became non-finite")
                break
            if weight is not None:
                d_logits *= weight[:, None]
            if scale != 1.0:
                d_logits *= scale
            grads = model.backward(d_logits, cache)
            for method in model.methods:
                method.add_gradient(model, grads, scale)
            if config["clip_grad_norm"]:
                clip_gradient_norm(grads, config["clip_grad_norm"], scale)
            for method in model.methods:
                method.before_update(model, grads, scale)
            optimizer.step(model, grads, config)
            model.constrain()
            for method in model.methods:
                method.after_update(model)
            total, seen = total + loss * len(yb), seen + len(yb)
    if not model.diverged and not all(np.isfinite(p).all() for p in model.params):
        model.diverge(where, "the weights became non-finite")
    model.train_s += time.perf_counter() - t0
    return None if model.diverged else total / seen


def evaluate(model: Model, task: Task, with_freq: bool = False, chunk: int = 1024, split: str = "test"):
    """Test (or validation) accuracy on one task (its allowed logits only) and, optionally, how often
    each hidden unit fires on those images. Chunks of ~1k rows keep the activations in cache; the GEMMs
    stay large enough to run near peak."""
    t0 = time.perf_counter()
    x, y = (task.x_test, task.y_test) if split == "test" else (task.x_val, task.y_val)
    correct, counts = 0, None
    with np.errstate(over="ignore", invalid="ignore"):
        for s in stoppable(len(x), chunk):
            logits, (_, masks, _) = model.forward(x[s:s + chunk])
            predicted = np.where(task.head, model.loss.output(logits), -np.inf).argmax(axis=1)
            correct += int(np.count_nonzero(predicted == y[s:s + chunk]))
            if with_freq:
                layer_counts = [np.count_nonzero(m, axis=0) for m in masks]
                counts = layer_counts if counts is None else [a + b for a, b in zip(counts, layer_counts)]
    if split == "test":
        model.eval_s += time.perf_counter() - t0
    else:
        model.val_s += time.perf_counter() - t0
    freq = [c / len(x) for c in counts] if with_freq else None
    return correct / len(x), freq


CHANCE_MARGIN = 0.05               # within this of chance on the task just trained = learned nothing
CURVE_POINTS = 100                 # a headline job's curves: after every epoch up to this many, then spaced


def curve_points(n_phases: int, epochs: int) -> list:
    """The epochs after which the headline job tests every task (0: before training): each of them in a run
    of up to CURVE_POINTS epochs; beyond, every k-th (about CURVE_POINTS in all) and every phase end, so a
    500-epoch recipe does not spend its time drawing curves."""
    n = n_phases * epochs
    every = math.ceil(n / CURVE_POINTS)
    return [p for p in range(n + 1) if p % every == 0 or p % epochs == 0]


def chance(task: Task) -> float:
    """The accuracy of a constant answer among a task's allowed outputs: a diverged model's score."""
    return 1 / np.count_nonzero(task.head)


def learned_nothing(phase: Phase, tasks: list, row: list, freqs: list | None, split: str) -> str | None:
    """Why a model failed to learn the phase it just trained on, or None, read on `split`'s accuracies `row`.

    Accuracy within 5 points of chance, or a hidden layer with no unit firing on any of the phase's images
    (its output is then constant; read where `freqs` are given: the test images). Such a model is marked
    failed and trains on: what it then scores is its outcome, compared like any other.
    """
    acc = float(np.mean([row[t] for t in phase.tasks]))
    level = float(np.mean([chance(tasks[t]) for t in phase.tasks]))
    if acc <= level + CHANCE_MARGIN:
        return (f"{split} accuracy {acc:.4f} on the tasks just trained is within {CHANCE_MARGIN} of chance "
                f"({level:.4f})")
    for layer in range(len(freqs[phase.tasks[0]]) if freqs else 0):
        if all(not freqs[t][layer].any() for t in phase.tasks):
            return f"no unit of hidden layer {layer + 1} fires on any {split} image of the tasks just trained"
    return None


# ============================================================================ sleep and submasks
# Two things done to, or read from, a trained model between its training and its testing.
#
# Sleep replay consolidation (SRC; Tadros, Krishnan, Ramyaa & Bazhenov, "Sleep-like unsupervised replay
# reduces catastrophic forgetting in artificial neural networks", Nature Communications 2022; code
# tmtadros/SleepReplayConsolidation). After each task the trained network,
# bias-free, runs for a while as a spiking network: each unit leaks and integrates the spikes of the
# layer below through its trained weights and fires when its potential crosses a threshold; the input
# pixels fire at random, at rates set by the mean training image of the tasks seen so far. A unit that
# fires strengthens its weights from the inputs that fired with it and weakens those from the ones that
# did not: an unsupervised replay that is meant to rebalance the weights towards the older tasks. The
# definitions follow the authors' MATLAB code (MNIST/run_class_task_summary.m, sleep/sleepnn_old.m,
# utils/normalize_nn_data.m, utils/create_masked_input.m); docs/mechanisms.md says what was uncertain.
#
# Submasks (Srivastava, Masci, Gomez & Schmidhuber, "Understanding Locally Competitive Networks", ICLR
# 2015): which units of a hidden layer fire for an input, as a bit
# string. The analysis asks how much of the class the last hidden layer's submasks carry (kNN on them
# against the softmax) and how quickly they settle while training (the share of bits that flip per epoch).

# The original's sleep constants, found by a search for a 784-1200-1200-10 ReLU network trained with
# dropout on split MNIST; they are not known to suit other sizes. beta multiplies the firing threshold
# of the first layer, of every further hidden layer, and of the output layer.
SLEEP = {"max_rate": 239.515363, "dt": 0.001, "decay": 0.999, "threshold": 1.0, "inc": 0.032064,
         "dec": 0.003344, "beta": (14.548273, 44.560317, 38.046326), "alpha_scale": 55.882454,
         "patch": 11, "growth": 1 / 3}
SLEEP_CHUNK = 1000                 # time steps whose input spikes are drawn at once (and STOP checked)


def sleep_iterations(base: int, n_phases: int) -> int:
    """Time steps of the sleep after the n-th phase: base (1 + (n - 1) / 3), 15000, 20000, ... originally."""
    return round(base * (1 + (n_phases - 1) * SLEEP["growth"]))


def stdp_factor(W: np.ndarray) -> np.ndarray:
    """How much a weight may move in one plasticity event, by its value: the original's
    2 / (1 + exp(W / 0.001)), 1 at W = 0, 2 well below 0 and 0 above ~0.01. So sleep moves weak and
    negative weights and leaves the strong positive ones that carry what training learned."""
    with np.errstate(over="ignore"):
        out = np.exp(W * W.dtype.type(1000))
    out += 1
    return np.divide(W.dtype.type(2), out, out=out)


def sleep_scales(model: Model, xs: list, chunk: int = 1024) -> list:
    """Data-based normalisation (normalize_nn_data.m), one factor per weight layer: s_l is the larger of
    the layer's largest positive weight and its largest positive output on the images xs (test mode; the
    output layer's outputs are its logits), chained as f_l = s_l / f_(l-1) with f_0 = 1. Layer l's
    impulses are scaled by alpha_scale / f_l, so a layer's input is measured in units of its peak."""
    peaks = [float(max(W.max(), 0)) for W in model.params[0::2]]
    with np.errstate(over="ignore", invalid="ignore"):
        for x in xs:
            for s in range(0, len(x), chunk):
                logits, (inputs, _, _) = model.forward(x[s:s + chunk])
                peaks = [max(p, float(out.max())) for p, out in zip(peaks, inputs[1:] + [logits])]
    factors, previous = [], 1.0
    for p in peaks:
        previous = max(p, np.finfo(np.float32).tiny) / previous
        factors.append(previous)
    return factors


def sleep_inputs(mean_image: np.ndarray, n: int, rng, p: dict = SLEEP) -> np.ndarray:
    """n time steps of input spikes (bool, n x pixels). Each step shows the mean image inside a random
    square patch (create_masked_input.m: 11 x 11, corner uniform over the 18 x 18 places that fit) and 0
    elsewhere; a pixel of intensity x fires with probability min(1, 2 dt max_rate x)."""
    side = math.isqrt(len(mean_image))
    corner = rng.integers(0, side - p["patch"] + 1, size=(2, n, 1))
    lines = np.arange(side)
    inside = (lines >= corner) & (lines < corner + p["patch"])            # (2, n, side): rows, columns
    shown = mean_image.reshape(side, side) * (inside[0][:, :, None] & inside[1][:, None, :])
    u = rng.random((n, len(mean_image)), dtype=mean_image.dtype)
    return u * mean_image.dtype.type(0.5 / (p["dt"] * p["max_rate"])) < shown.reshape(n, -1)


def sleep_step(weights: list, potentials: list, spikes_in: np.ndarray, alphas: list, thresholds: list,
               p: dict = SLEEP) -> list:
    """One time step of the spiking network, in place (sleepnn_old.m). Layer by layer, so a spike can
    cross the whole network in one step: the potentials leak (times decay) and add alpha times the
    weights from the units below that fired; units at or above their threshold fire; each weight into a
    unit that fired moves by inc * stdp_factor(W) if its input fired too, by -dec * stdp_factor(W) if not;
    the units that fired reset to 0. Returns every layer's spikes, input first.
    (The original's refractory period, lateral inhibition and DC input are 0 in its MNIST runs: left out.)

    A layer whose input is silent only leaks; its potentials, below a positive threshold after the last
    step, stay below it, so it cannot fire and is skipped (most steps: firing is sparse)."""
    spikes = [spikes_in]
    for W, v, alpha, theta in zip(weights, potentials, alphas, thresholds):
        pre = spikes[-1]
        v *= v.dtype.type(p["decay"])
        if not np.count_nonzero(pre):
            spikes.append(np.zeros(len(v), dtype=bool))
            continue
        v += alpha * W[pre].sum(axis=0)
        post = v >= theta
        fired = post.nonzero()[0]
        if fired.size:
            W_fired = W[:, fired]
            change = stdp_factor(W_fired)
            change *= np.where(pre, W.dtype.type(p["inc"]), W.dtype.type(-p["dec"]))[:, None]
            W_fired += change
            W[:, fired] = W_fired
        v[post] = 0
        spikes.append(post)
    return spikes


def sleep_phase(model: Model, xs: list, iterations: int, rng, p: dict = SLEEP) -> dict:
    """SRC on the model's weights, in place: `iterations` time steps driven by the mean of the images xs
    (the training images of the tasks seen so far), starting from zero potentials. The model's own
    weight constraints (if any) are imposed again afterwards, as after a training step.

    Returns what it cost and did: iterations, seconds, the layers' alpha and firing rate (mean spikes per
    unit and time step, output layer last)."""
    t0 = time.perf_counter()
    real = model.params[0].dtype.type
    weights = model.params[0::2]
    alphas = [real(p["alpha_scale"] / f) for f in sleep_scales(model, xs)]
    b_first, b_hidden, b_out = p["beta"]
    betas = [b_first] + [b_hidden] * (len(weights) - 2) + [b_out]
    thresholds = [real(p["threshold"] * b) for b in betas]
    potentials = [np.zeros(W.shape[1], dtype=real) for W in weights]
    mean_image = sum(x.sum(axis=0, dtype=real) for x in xs) / real(sum(len(x) for x in xs))
    fired = np.zeros(len(weights), dtype=np.int64)
    for s in stoppable(iterations, SLEEP_CHUNK):
        for spikes_in in sleep_inputs(mean_image, min(SLEEP_CHUNK, iterations - s), rng, p):
            for i, f in enumerate(sleep_step(weights, potentials, spikes_in, alphas, thresholds, p)[1:]):
                fired[i] += np.count_nonzero(f)
    model.constrain()
    return {"iterations": iterations, "seconds": time.perf_counter() - t0, "alpha": [float(a) for a in alphas],
            "rate": [float(n) / (iterations * W.shape[1]) for n, W in zip(fired, weights)]}


KNN_K = 5                          # neighbours that vote in the submask kNN without validation data
KNN_KS = (1, 3, 5, 7, 9, 15, 25)   # with validation data: the k chosen among these (as the source did on MNIST)
FLIP_SAMPLE = 500                  # training inputs of the current phase whose submasks are followed per epoch
KNN_SAMPLE = 1000                  # test images per task that kNN and the softmax are both scored on
KNN_MEMORY = 5000                  # training images per task at most in the kNN memory (a seeded sample beyond)


def submasks(model: Model, x: np.ndarray, chunk: int = 1024) -> list:
    """Which units of each hidden layer fire (the activation's mask) for each row of x, in test mode:
    one bool (n, width) array per hidden layer."""
    out = [[] for _ in model.layers]
    with np.errstate(over="ignore", invalid="ignore"):     # a model about to be found diverged
        for s in range(0, len(x), chunk):
            _, (_, masks, _) = model.forward(x[s:s + chunk])
            for kept, m in zip(out, masks):
                kept.append(m)
    return [np.concatenate(kept) for kept in out]


def nearest(queries: np.ndarray, memory: np.ndarray, k: int, chunk: int = 512) -> np.ndarray:
    """Indices of the k memory rows nearest to each query in Hamming distance, nearest first; equal
    distances put the earlier memory row first. Rows are 0/1 (bool or float), multiplied as float32.

    The distance |a| + |b| - 2 a.b ranks memory rows as |b| - 2 a.b does (|a| is the query's own), which
    is one matrix product of [a, 1] with [-2 b, |b|]; it is exact, every term being a small integer."""
    k = min(k, len(memory))
    keys = np.empty((memory.shape[1] + 1, len(memory)), dtype=np.float32)
    keys[:-1] = memory.T
    keys[:-1] *= -2
    keys[-1] = memory.sum(axis=1)
    a = np.ones((min(chunk, len(queries)), memory.shape[1] + 1), dtype=np.float32)
    out = np.empty((len(queries), k), dtype=np.int64)
    for s in range(0, len(queries), chunk):
        n = min(chunk, len(queries) - s)
        a[:n, :-1] = queries[s:s + n]
        d = a[:n] @ keys
        rows = np.arange(n)
        for r in range(k):
            first = d.argmin(axis=1)                # the first of equal minima
            out[s:s + n, r] = first
            d[rows, first] = np.inf
    return out


def vote(neighbour_labels: np.ndarray, distances: np.ndarray | None = None) -> np.ndarray:
    """The class with the most votes among each row's neighbours (nearest first); a tie goes to the tied
    class whose nearest member comes first. Each neighbour has one vote, or with `distances` a vote of
    1 / (1 + its distance) (distance-weighted kNN)."""
    n, k = neighbour_labels.shape
    rows = np.arange(n)
    weights = np.ones((n, k)) if distances is None else 1 / (1 + distances)
    votes = np.zeros((n, int(neighbour_labels.max()) + 1))
    for r in range(k):
        votes[rows, neighbour_labels[:, r]] += weights[:, r]
    tied = votes == votes.max(axis=1, keepdims=True)
    first = tied[rows[:, None], neighbour_labels].argmax(axis=1)
    return neighbour_labels[rows, first]


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row by row, the number of differing bits between a[i] and b[i, r] (b: (n, k, width))."""
    return np.count_nonzero(a[:, None, :] != b, axis=2)


def knn_predict(queries, memory, labels, k: int, weighted: bool) -> np.ndarray:
    """kNN on 0/1 rows in Hamming distance: plain majority or distance-weighted votes."""
    idx = nearest(queries, memory, k)
    return vote(labels[idx], hamming(queries, memory[idx]) if weighted else None)


def choose_knn_k(tasks: list, memory: np.ndarray, labels: np.ndarray, val_masks: list, weighted: bool) -> int:
    """The k of KNN_KS with the best kNN accuracy on every task's validation images (ties: the smaller).
    The neighbours are found once, for the largest k: the k nearest are the first k of them."""
    correct = np.zeros(len(KNN_KS), dtype=np.int64)
    for t, queries in zip(tasks, val_masks):
        allowed = t.head[labels]
        idx = nearest(queries, memory[allowed], max(KNN_KS))
        near, dist = labels[allowed][idx], hamming(queries, memory[allowed][idx]) if weighted else None
        for i, k in enumerate(KNN_KS):
            correct[i] += np.count_nonzero(vote(near[:, :k], None if dist is None else dist[:, :k]) == t.y_val)
    return KNN_KS[int(correct.argmax())]


def knn_memory(model: Model, tasks: list, rng, cap: int = KNN_MEMORY) -> tuple:
    """The last hidden layer's submasks of every task's training images (at most `cap` per task, a seeded
    sample beyond that), and their labels."""
    memory, labels = [], []
    for t in tasks:
        rows = np.sort(rng.choice(len(t.y_train), cap, replace=False)) if len(t.y_train) > cap else slice(None)
        memory.append(submasks(model, t.x_train[rows])[-1])
        labels.append(t.y_train[rows])
    return np.concatenate(memory), np.concatenate(labels)


def submask_knn(model: Model, tasks: list, rng, n: int = KNN_SAMPLE, weighted: bool = False) -> tuple:
    """Per task, on a seeded sample of n of its test images: the accuracy of kNN on the last hidden
    layer's submasks, with every task's training images as the memory, and the softmax's accuracy on the
    same images. Like the softmax, kNN may only answer with the classes the task's head allows, so only
    those classes' training images vote. k is chosen on the tasks' validation images when there are any
    (KNN_KS), else KNN_K. (The samples keep the analysis to a few % of a headline run.)
    Returns (knn accuracies, softmax accuracies, k)."""
    memory, labels = knn_memory(model, tasks, rng)         # draws from rng only when a task exceeds the cap
    k = KNN_K
    if all(t.y_val is not None and len(t.y_val) for t in tasks):
        k = choose_knn_k(tasks, memory, labels, [submasks(model, t.x_val)[-1] for t in tasks], weighted)
    knn, softmax = [], []
    for t in tasks:
        rows = np.sort(rng.choice(len(t.y_test), min(n, len(t.y_test)), replace=False))
        sample = replace(t, x_test=t.x_test[rows], y_test=t.y_test[rows])
        allowed = t.head[labels]
        queries = submasks(model, sample.x_test)[-1]
        predicted = knn_predict(queries, memory[allowed], labels[allowed], k, weighted)
        knn.append(float(np.mean(predicted == sample.y_test)))
        softmax.append(evaluate(model, sample)[0])
    return knn, softmax, k


def flip_fraction(before: list, after: list) -> list:
    """Per hidden layer, the share of submask bits (inputs x units) that differ between two recordings."""
    return [float(np.count_nonzero(a != b)) / a.size for a, b in zip(before, after)]


class SubmaskAnalysis(Checkpointed):
    """The headline job's submask analysis. At the start of each phase a fixed sample of the phase's own
    training images is drawn from the seed; their submasks are recorded then and after every epoch, to see
    how much each epoch of training reassigns on the data being trained on (as in Srivastava et al. 2015, Fig. 4). At
    the end, kNN on the submasks is set against the softmax."""

    def __init__(self, model: Model, tasks: list, seq: np.random.SeedSequence, n: int = FLIP_SAMPLE,
                 weighted: bool = False):
        self.model, self.tasks, self.seq, self.n, self.weighted = model, tasks, seq, n, weighted
        self.rng = np.random.default_rng(child(seq, 0))          # the kNN memory and test samples
        self.x, self.masks, self.flips, self.sizes = None, None, [], []      # sizes: one per phase begun
        self.seconds = 0.0

    STATE = ("rng", "x", "masks", "flips", "sizes", "seconds")

    def start_phase(self, phase: Phase) -> None:
        t0 = time.perf_counter()
        rng = np.random.default_rng(child(self.seq, 1 + len(self.sizes)))
        rows = np.sort(rng.choice(len(phase.y), min(self.n, len(phase.y)), replace=False))
        self.x = phase.x[rows]
        self.sizes.append(len(rows))
        self.masks = submasks(self.model, self.x)
        self.seconds += time.perf_counter() - t0

    def record(self) -> None:
        t0 = time.perf_counter()
        masks = submasks(self.model, self.x)
        self.flips.append(flip_fraction(self.masks, masks))
        self.masks = masks
        self.seconds += time.perf_counter() - t0

    def report(self) -> dict:
        """kNN accuracy per task against the softmax's on the same sampled test images, the k used, and
        the flip fractions [epoch][hidden layer] recorded so far."""
        t0 = time.perf_counter()
        knn, softmax, k = (None, None, None) if self.model.diverged else submask_knn(
            self.model, self.tasks, self.rng, weighted=self.weighted)
        out = {"knn_k": k, "knn_weighted": self.weighted, "knn_sample": KNN_SAMPLE, "knn_acc": knn,
               "softmax_acc": softmax, "flip_sample": min(self.sizes, default=self.n),
               "flip_on": "the current phase's training images",
               "flip_fraction": self.flips}
        self.seconds += time.perf_counter() - t0
        return out


# ============================================================================ experiment
METRICS = ("acc", "forgetting", "bwt", "learning_acc")


def continual_metrics(R: np.ndarray) -> dict:
    """The field's summaries of the accuracy matrix R[i][j] (accuracy on task j after training task i).

    ACC = mean_j R[T][j]; BWT = mean_{j<T} R[T][j] - R[j][j]; forgetting = mean_{j<T} of the best
    accuracy task j had after it was trained and before the end, max_{j<=l<T} R[l][j], minus R[T][j]
    (positive = lost; rows before task j was trained are not read, and need not be measured);
    learning accuracy = mean_j R[j][j]. A single row (joint training) has ACC only.
    """
    T = R.shape[1]
    out = {"acc": float(np.mean(R[-1])), "forgetting": None, "bwt": None, "learning_acc": None}
    if R.shape[0] == T and T > 1:
        out["bwt"] = float(np.mean([R[T - 1, j] - R[j, j] for j in range(T - 1)]))
        out["forgetting"] = float(np.mean([R[j:T - 1, j].max() - R[T - 1, j] for j in range(T - 1)]))
        out["learning_acc"] = float(np.mean(np.diag(R)))
    return out


SELECTIVE = 0.5                    # a unit is task-selective when its selectivity index exceeds this


def task_selectivity(freq: list) -> tuple:
    """Per hidden layer: the share of units that fire mostly for one task, and the number silent on all.

    A unit's index is (f_best - f_rest) / (f_best + f_rest), f_best its firing rate on its most frequent
    task and f_rest its mean rate on the others; for two tasks that is |f1 - f2| / (f1 + f2). Silent
    units count as not selective.
    """
    selective, silent = [], []
    for layer in range(len(freq[0])):
        index, dead = selectivity_index(np.stack([per_task[layer] for per_task in freq]))
        selective.append(float(np.mean(index > SELECTIVE)))
        silent.append(int(np.sum(dead)))
    return selective, silent


def selectivity_index(F: np.ndarray) -> tuple:
    """Each unit's selectivity index from its firing rates F (tasks x units), and which units are silent."""
    best = F.max(axis=0)
    rest = (F.sum(axis=0) - best) / max(1, len(F) - 1)
    total = best + rest
    return np.divide(best - rest, total, out=np.zeros_like(total), where=total > 0), total == 0


def nan_to_none(M: np.ndarray) -> list:
    """A matrix as JSON-able lists, entries never measured (NaN) as None."""
    return [[None if math.isnan(a) else a for a in row] for row in M.tolist()]


def summarize(R: np.ndarray, freq: list | None, failed: dict | None, tested: bool = True) -> dict:
    """What one variant of one seed contributes: R, its metrics, active fractions and task selectivity
    per layer, and its failure if any (a diverged model has no firing to read; a job that read no test
    image has R alone, empty)."""
    out = {"failed": failed, "R": nan_to_none(R)}
    if not tested:
        return out
    selective, silent = task_selectivity(freq) if freq else (None, None)
    active = [[float(f.mean()) for f in per_layer] for per_layer in freq] if freq else None
    return {**out, **continual_metrics(R), "active": active, "selective": selective, "silent": silent}


def fill_at_chance(R: np.ndarray, phases: list, tasks: list) -> None:
    """A diverged model's rows of R: chance on every task met by the end of each phase from its divergence
    on (it answers one class, or nothing usable, from then on)."""
    for i, phase in enumerate(phases, start=len(R) - len(phases)):
        R[i, :max(phase.tasks) + 1] = [chance(t) for t in tasks[:max(phase.tasks) + 1]]


# A checkpoint is data only: one .npz of arrays, loaded without pickle, whose entry CHECKPOINT_DOC holds the
# rest as JSON. Loading one runs no code, so a checkpoint in a shared folder cannot act for whoever resumes.
CHECKPOINT_VERSION = 2
CHECKPOINT_DOC = "checkpoint.json"
BIT_GENERATORS = {name: getattr(np.random, name) for name in ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")}
CHECKPOINT_ERRORS = (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, EOFError,
                     RecursionError, zipfile.BadZipFile)


def encode_state(obj, arrays: dict, seen: dict, path: str = "state"):
    """A state as JSON-able data. Arrays and numpy scalars go into `arrays`, named by where they were first
    met, and are referred to by that name (an array met again by the same name, so arrays shared between
    objects stay shared); a generator becomes its bit generator's state. Anything else is refused."""
    if isinstance(obj, np.ndarray) and not obj.dtype.hasobject:
        name = seen.setdefault(id(obj), path)
        arrays[name] = obj
        return {"__array__": name}
    if isinstance(obj, np.generic) and not isinstance(obj, np.object_):
        arrays[path] = np.asarray(obj)
        return {"__scalar__": path}
    if isinstance(obj, np.random.Generator):
        return {"__generator__": encode_state(obj.bit_generator.state, arrays, seen, path)}
    if isinstance(obj, dict) and all(isinstance(k, str) and not k.startswith("__") for k in obj):
        return {k: encode_state(v, arrays, seen, f"{path}/{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode_state(v, arrays, seen, f"{path}/{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"{path}: a {type(obj).__name__} cannot go into a checkpoint")


def decode_state(obj, arrays: dict):
    """encode_state's inverse: the same arrays (shared ones shared again), generators in the same state."""
    if isinstance(obj, list):
        return [decode_state(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__array__" in obj:
        return arrays[obj["__array__"]]
    if "__scalar__" in obj:
        return arrays[obj["__scalar__"]][()]
    if "__generator__" in obj:
        state = decode_state(obj["__generator__"], arrays)
        rng = np.random.Generator(BIT_GENERATORS[state["bit_generator"]]())
        rng.bit_generator.state = state
        return rng
    return {k: decode_state(v, arrays) for k, v in obj.items()}


def save_checkpoint(path: Path, key: dict, state: dict) -> None:
    """Everything a course needs to go on after the phase just finished, written atomically. The model and
    the submask analysis (objects in `state`) keep what they declare (their state methods)."""
    state = {**state, "model": state["model"].state(), "submask": state["submask"] and state["submask"].state()}
    arrays = {}
    doc = {"version": CHECKPOINT_VERSION, "key": key, "state": encode_state(state, arrays, {})}
    arrays[CHECKPOINT_DOC] = np.array(json.dumps(doc))
    write_atomic(path, npz_writer(arrays, compressed=False))


def load_checkpoint(path: Path | None, key: dict, build) -> dict | None:
    """The state saved at the last phase end of this very job (same seed, variant, headline role and settings),
    with the model and submask analysis that `build()` makes afresh brought to it; or None. A checkpoint of
    anything else, or one that cannot be read, is named in a note and left (the job starts over, and
    overwrites it at its first phase end)."""
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        doc = json.loads(str(arrays.pop(CHECKPOINT_DOC)[()]))
        if doc.get("version") != CHECKPOINT_VERSION or doc.get("key") != key:
            raise ValueError("saved by another job, other settings or another version of the program")
        state = decode_state(doc["state"], arrays)
        model, submask = build()
        model.load_state(state["model"])
        if submask:
            submask.load_state(state["submask"])
    except CHECKPOINT_ERRORS as e:
        print(f"note: {path}: not a checkpoint of this job ({e}); the job starts over", file=sys.stderr, flush=True)
        return None
    return {**state, "model": model, "submask": submask}


def run_course(seed: int, spec: str, config: dict, headline: bool, progress: bool = False,
               checkpoint: Path | None = None) -> dict:
    """One variant's whole course for one seed: every phase in order, evaluated along the way.

    The variants of a seed share what the seed draws and nothing else, so each course is an
    independent job. A job measures what its outputs read, and no more. The headline seed is tested on
    every task before training and after every epoch (the curves the figures draw; in runs of more than
    CURVE_POINTS epochs, at that many evenly spaced epochs and every phase end). Every other seed is tested
    at the end of each phase on the tasks trained so far, and those are R's entries in every job (tasks
    not yet trained are in the headline's curves alone, where the accuracy-matrix figure reads them: a
    job's numbers do not depend on whether it was the headline). With validation images (--val-per-class), every
    seed is also scored on every task's validation images at the end of each phase (val_R) and after every
    epoch of the last phase (val_last, what the learning/forgetting frontier is drawn from): what
    hyperparameters are chosen on, never the test; with --no-test (a search job) the test images are not
    read at all. A model that diverges stops there, and is scored at chance (`chance`) on every task it
    has met from then on; one that learns nothing is marked failed where it did and trains on. Either way its
    accuracies are its outcome: the comparisons count them, and say how many runs failed.
    With a `checkpoint` path the course's whole state (weights, optimiser, random generators, mechanism
    state, what was measured so far) is saved there at each phase end but the last, and a course started
    again resumes from it: the result is the same bit for bit, and an interruption loses at most a phase.
    """
    streams = seed_streams(seed)
    tasks = make_tasks(seed, config)
    phases = training_phases(tasks, config["joint"])
    order_rng = np.random.default_rng(streams[2])
    epochs = config["epochs"]
    orders = [[order_rng.permutation(len(p.y)) for _ in range(epochs)] for p in phases]

    def build() -> tuple:                       # the model and the headline's submask analysis, as they start
        new = Model(parse_variant(spec), config, streams)
        return new, (SubmaskAnalysis(new, tasks, streams[7], weighted=config.get("knn_weighted", False))
                     if headline else None)
    model, submask = build()
    W1_init = model.params[0].copy() if headline else None
    sleep_rng, slept = np.random.default_rng(streams[6]), []
    n_points = len(phases) * epochs + 1
    curve = set(curve_points(len(phases), epochs)) if headline else set()
    test = not config.get("no_test", False)
    curves = np.full((n_points, len(tasks)), np.nan)
    R = np.full((len(phases), len(tasks)), np.nan)
    with_val = config.get("val_per_class", 0) > 0
    val_R, val_last = np.full_like(R, np.nan), np.full((epochs, len(tasks)), np.nan)
    freq, start = None, 1
    key = {"seed": seed, "variant": spec, "headline": headline,
           "settings": settings_digest(experiment_settings(config))}
    state = load_checkpoint(checkpoint, key, build)
    if state:                                   # go on after the last phase the checkpoint finished
        model, sleep_rng, slept, submask = state["model"], state["sleep_rng"], state["slept"], state["submask"]
        curves, R, val_R, val_last, freq, W1_init = (state[k] for k in ("curves", "R", "val_R", "val_last",
                                                                         "freq", "W1_init"))
        start = state["next_point"]
    elif headline:
        curves[0] = [evaluate(model, t)[0] for t in tasks]
    for point in range(start, n_points):
        ph, e = divmod(point - 1, epochs)
        phase, phase_end = phases[ph], e == epochs - 1
        if e == 0:
            reset_optimizer(model, phase.heads.any(axis=0), config, carry=config["momentum_carry"])
            for method in model.methods:
                method.start_phase(model)
            if submask:
                submask.start_phase(phase)
        where = {"task": None if config["joint"] else ph + 1, "epoch": point}
        perm = orders[ph][e]
        loss = train_epoch(model, phase.x[perm], phase.y[perm], phase.heads[perm], config, where)
        if model.diverged:
            fill_at_chance(R, phases[ph:], tasks)
            break
        model.source_passes(tasks[:max(phase.tasks) + 1])
        if model.variant.sleep and phase_end:           # SRC: sleep after the phase, before it is tested
            iterations = sleep_iterations(model.variant.sleep_iters, ph + 1)
            slept.append(sleep_phase(model, [p.x for p in phases[:ph + 1]], iterations, sleep_rng))
        if phase_end and ph < len(phases) - 1:         # what the next phases protect: after sleep, if any
            t0 = time.perf_counter()
            for method in model.methods:
                method.end_phase(model, phase)
            model.train_s += time.perf_counter() - t0
        if submask:
            submask.record()
        if with_val and (phase_end or ph == len(phases) - 1):
            val_row = [evaluate(model, t, split="val")[0] for t in tasks]
            if phase_end:
                val_R[ph] = val_row
            if ph == len(phases) - 1:
                val_last[e] = val_row
        if point in curve or phase_end:
            tested = len(tasks) if headline else max(phase.tasks) + 1 if test else 0
            results = [evaluate(model, t, with_freq=phase_end) if j < tested else (math.nan, None)
                       for j, t in enumerate(tasks)]
            row = [acc for acc, _ in results]
            curves[point] = row
            if phase_end:                       # R: the tasks trained so far, the same in every job
                R[ph, :max(phase.tasks) + 1], freq = row[:max(phase.tasks) + 1], [f for _, f in results]
                reason = (learned_nothing(phase, tasks, row, freq, "test") if test else       # a search job:
                          learned_nothing(phase, tasks, val_R[ph], None, "validation"))    # validation only
                if reason and not model.failed:
                    model.failed = {"reason": "learned nothing", **where, "detail": reason}
                if checkpoint and ph < len(phases) - 1:
                    save_checkpoint(checkpoint, key, {
                        "next_point": point + 1, "model": model, "sleep_rng": sleep_rng, "slept": slept,
                        "submask": submask, "curves": curves, "R": R, "val_R": val_R, "val_last": val_last,
                        "freq": freq, "W1_init": W1_init})
        if progress and headline:
            accs = "  ".join(f"T{j + 1} {a:.4f}" for j, a in enumerate(curves[point]))
            stage = "joint" if config["joint"] else f"task {ph + 1}/{len(phases)}"
            print(f"seed {seed}  {stage}  epoch {e + 1}/{epochs}  {spec:<10} loss {loss:.4f}  {accs}", flush=True)
    if progress and model.failed:
        print(f"seed {seed}  {spec}: {failure_text(model.failed, epochs)}", flush=True)
    out = {"seed": seed, "variant": spec, "settings_digest": key["settings"],
           "summary": summarize(R, None if model.diverged else freq, model.failed, test),
           "timings": {"train_s": model.train_s, "eval_s": model.eval_s}}
    if with_val:
        out["summary"]["val_R"], out["summary"]["val_last"] = nan_to_none(val_R), nan_to_none(val_last)
        out["timings"]["val_s"] = model.val_s
    if mechanism := model.report():             # a mechanism's own measurements, e.g. sdm's dead units
        out["summary"]["mechanism"] = mechanism
    if slept:
        out["summary"]["sleep"] = {k: [s[k] for s in slept] for k in ("iterations", "alpha", "rate")}
        out["timings"]["sleep_s"] = sum(s["seconds"] for s in slept)
    if headline:
        out["submasks"] = submask.report()
        out["timings"]["submasks_s"] = submask.seconds
        out["curves"] = curves
        out["units"] = {"W1": model.params[0], "W1_init": W1_init,
                        "freq": None if freq is None else np.array([np.stack(f) for f in freq])}
    return out


def failure_text(failed: dict, epochs: int) -> str:
    """Where a course failed, its epoch counted within the task (the record counts from the start)."""
    where = f"task {failed['task']}, " if failed["task"] else "joint training, "
    return (f"failed ({failed['reason']}) in {where}epoch {(failed['epoch'] - 1) % epochs + 1} of {epochs}: "
            f"{failed['detail']}")


def _worker_init() -> None:
    """Workers ignore Ctrl-C: the parent catches it and terminates them all."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_run(job: tuple) -> dict:
    return run_course(*job)


def group_by_seed(results: list, models: list) -> list:
    """Job results -> one entry per seed, in seed order: {"seed", "summary", "timings"} with one entry per
    variant in --models order; a headline job's extra fields ("curves", "units", ...) are kept per variant."""
    per_seed = {}
    for r in results:
        seed = per_seed.setdefault(r["seed"], {"seed": r["seed"], "summary": {}, "timings": {}})
        seed["summary"][r["variant"]], seed["timings"][r["variant"]] = r["summary"], r["timings"]
        for key in sorted(r.keys() - {"seed", "variant", "summary", "timings"}):
            seed.setdefault(key, {})[r["variant"]] = r[key]
    for seed in per_seed.values():              # --models order, not the order the jobs finished in
        for key in seed.keys() - {"seed"}:
            seed[key] = {v: seed[key][v] for v in models if v in seed[key]}
    return [per_seed[s] for s in sorted(per_seed)]


def run_jobs(config: dict, progress: bool, store=None, provenance: dict | None = None) -> list:
    """Every variant of every seed, one job each, the headline seed's (the heaviest) first.

    One seed: its variants run in threads in this process (the OS spreads them over the cores).
    Several seeds: --workers processes take jobs as they free up. Either way every product runs
    on one BLAS thread, so a job's numbers do not depend on where it ran. With a run folder
    (`store`), jobs it already holds are taken from it and each job is saved the moment it finishes.
    Returns the job results: {"seed", "variant", "summary", "timings"} (+ "curves", "units" for the headline).
    """
    seeds = [config["seed"] + i for i in range(config["n_seeds"])]
    models, first = config["models"], config.get("headline_seed", seeds[0])
    pairs = [(s, spec) for s in sorted(seeds, key=lambda s: s != first) for spec in models]
    found = read_all([lambda s=s, spec=spec: store.load(s, spec, headline=s == first) for s, spec in pairs],
                     store.path) if store else [None] * len(pairs)      # every broken job file named at once
    results = [r for r in found if r]
    jobs = [(s, spec, config, s == first, progress, store.checkpoint(s, spec) if store else None)
            for (s, spec), r in zip(pairs, found) if not r]
    if store and results and progress:
        print(f"{store.path}: {len(results)} finished job(s) kept, {len(jobs)} to run", flush=True)
    left = {s: len(models) - sum(r["seed"] == s for r in results) for s in seeds}

    def collect(r):
        r["computed_at"] = provenance or {}
        if store:
            store.save(r)
        results.append(r)
        left[r["seed"]] -= 1
        if progress and len(seeds) > 1 and not left[r["seed"]]:
            summary = {x["variant"]: x["summary"] for x in results if x["seed"] == r["seed"]}
            parts = [f"{v} {fmt(summary[v].get('acc'))}{' (failed)' if summary[v]['failed'] else ''}" for v in models]
            done = sum(not n for n in left.values())
            print(f"seed {r['seed']} done ({done}/{len(seeds)}): ACC " + ", ".join(parts), flush=True)

    STOP.clear()
    if not jobs:
        return results
    if len(seeds) == 1 or config["workers"] == 1:
        threads = len(jobs) if len(seeds) == 1 and config["workers"] > 1 else 1
        pool = ThreadPoolExecutor(threads)
        try:
            for future in as_completed([pool.submit(_worker_run, job) for job in jobs]):
                collect(future.result())
        finally:
            STOP.set()                          # on an interruption, running jobs stop within a minibatch
            pool.shutdown(wait=True, cancel_futures=True)
            STOP.clear()
    else:
        pool = multiprocessing.get_context("spawn").Pool(min(config["workers"], len(jobs)),
                                                         initializer=_worker_init)
        try:
            for r in pool.imap_unordered(_worker_run, jobs):
                collect(r)
            pool.close()
        finally:
            pool.terminate()
            pool.join()
    return results


def stop_resource_tracker() -> None:
    """multiprocessing starts a resource-tracker process that lives until the interpreter exits (and a
    moment after); stop and reap it once the pool's semaphores are gone (collected first), so nothing of a
    run outlives it (a harness waiting on the process group would wait for it). Private API, hence the care."""
    stop = getattr(getattr(multiprocessing.resource_tracker, "_resource_tracker", None), "_stop", None)
    if stop:
        gc.collect()
        try:
            stop()
        except Exception:                       # an older or newer Python: leave it to exit by itself
            pass


def count_flops(config: dict, tasks: list) -> dict:
    """Matrix-multiply FLOPs of a run (elementwise work, and the sleep phase's spiking passes, not counted).

    Per training image: forward 2*sum(a*b) over layers; backward the weight gradients of every layer
    plus the input gradients of every layer but the first. Evaluation is a forward pass per test image:
    of every task at each of the headline seed's curve points (curve_points), of the tasks trained so far
    at every phase end on the other seeds (none in a search job, no_test); with validation images, a forward
    pass of every task's at each phase end and each epoch of the last phase.
    The headline seed's submask analysis: forward passes of the kNN memory (every task's training images,
    at most KNN_MEMORY each), of the flip sample at each phase start and every epoch, of the kNN test
    samples (and, with validation images, of those), plus the Hamming-distance products (once per k tried
    on the validation images). Methods against forgetting: replay trains on one buffer image per new image
    after the first phase (a buffer smaller than a minibatch counted as full); EWC's Fisher, after every phase
    but the last, a forward pass, ten passes of the error back through the layers and one product per layer.
    """
    n_train, n_test = sum(t["n_train"] for t in tasks), sum(t["n_test"] for t in tasks)
    n_phases = 1 if config["joint"] else len(tasks)
    n_points = n_phases * config["epochs"] + 1
    n_curves = len(curve_points(n_phases, config["epochs"]))
    n_tested = (n_test if config["joint"] else sum(t["n_test"] * (n_phases - j) for j, t in enumerate(tasks)))
    n_tested *= not config.get("no_test", False)
    n_val = sum(t.get("n_val", 0) for t in tasks)
    n_val_passes = n_val * (n_phases + config["epochs"] - 1)
    samples = [min(KNN_SAMPLE, t["n_test"]) for t in tasks]
    kept = [min(KNN_MEMORY, t["n_train"]) for t in tasks]
    voters = [k if config["scenario"] == "task" else sum(kept) for k in kept]
    queries = [n + (len(KNN_KS) * t.get("n_val", 0) if n_val else 0) for n, t in zip(samples, tasks)]
    flip = min(FLIP_SAMPLE, n_train // n_phases) * (n_points - 1 + n_phases)
    out = {"train": 0, "eval": 0, "analysis": 0, "per_variant_headline": {}, "per_variant_other_seed": {}}
    for spec in config["models"]:
        layers = parse_variant(spec).layers(config["hidden"], config["depth"])
        ins = [784] + [layer.out_width() for layer in layers]
        outs = [config["hidden"]] * config["depth"] + [10]
        macs = [a * b for a, b in zip(ins, outs)]
        forward, backward = 2 * sum(macs), 2 * (sum(macs) + sum(macs[1:]))
        train = (forward + backward) * n_train * config["epochs"]
        methods = parse_variant(spec).methods
        later = n_train - (tasks[0]["n_train"] if n_phases > 1 else n_train)
        if "replay" in methods:
            train += (forward + backward) * later * config["epochs"]
        if methods.get("ewc", {}).get("ewc_fisher") == "sdm":        # a forward and backward pass of 6 x 512 images
            train += (forward + backward) * sum(min(6 * 512, t["n_train"]) for t in tasks[:-1])
        elif "ewc" in methods:
            train += (forward + 10 * 2 * sum(macs[1:]) + 2 * sum(macs)) * (n_train - tasks[-1]["n_train"])
        eval_headline = forward * (n_test * n_curves + n_val_passes)
        eval_other = forward * (n_tested + n_val_passes)
        analysis = (forward * (sum(kept) + flip + 2 * sum(samples) + n_val)
                    + sum(2 * q * (config["hidden"] + 1) * m for q, m in zip(queries, voters)))
        out["per_variant_headline"][spec] = train + eval_headline + analysis
        out["per_variant_other_seed"][spec] = train + eval_other
        out["train"] += train * config["n_seeds"]
        out["eval"] += eval_headline + eval_other * (config["n_seeds"] - 1)
        out["analysis"] += analysis
    out["total"] = out["train"] + out["eval"] + out["analysis"]
    return out


def available_memory() -> int | None:
    """Bytes of memory available to new work (MemAvailable), or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def method_copies(spec: str) -> int:
    """Copies of the parameters a variant's methods keep: EWC two (a summed Fisher and an anchor), SI five, L2 one."""
    methods = parse_variant(spec).methods
    return 2 * ("ewc" in methods) + 5 * ("si" in methods) + ("l2" in methods)


def estimate_memory(config: dict) -> dict:
    """Bytes a run needs at once, by part and the flag that drives it, before anything is loaded.

    Tasks: each task's training, validation and test images as floats (a permuted task holds its own
    copies), plus an epoch's shuffled copy of a phase. Weights: parameters, optimiser state and scratch
    (4 copies; 5 with Adam) and what the methods against forgetting keep (method_copies), per job running at
    once. Jobs at once: --workers processes for several seeds, each with its own tasks; threads sharing the
    tasks for one seed."""
    counts = DATASETS[config["dataset"]].train_class_counts
    real = 8 if config["dtype"] == "float64" else 4
    per_task = [(n_train + config["val_per_class"] * len(group) + sum(counts[c] for c in group) // 6) * 784 * real
                for group, n_train in zip(config["tasks"], train_sizes(config))]  # MNIST test: 1/6 of training
    largest_phase = sum(per_task) if config["joint"] else max(per_task)
    tasks = sum(per_task) + largest_phase
    widths = [784] + [config["hidden"]] * config["depth"] + [10]
    params = sum(a * b for a, b in zip(widths, widths[1:])) * real
    weights = params * (5 if config.get("optimizer") == "adam" else 4)
    weights += params * max(method_copies(spec) for spec in config["models"])
    several = config["n_seeds"] > 1 and config["workers"] > 1
    at_once = min(config["workers"], config["n_seeds"] * len(config["models"])) if several else (
        len(config["models"]) if config["workers"] > 1 else 1)
    processes = min(config["workers"], config["n_seeds"]) if several else 1
    total = processes * tasks + at_once * weights
    return {"total": total, "tasks": processes * tasks, "weights": at_once * weights, "jobs_at_once": at_once,
            "flag": "--permuted" if config["permuted"] and tasks > at_once * weights else
                    "--tasks / --n-train-per-class" if tasks > at_once * weights else "--hidden"}


def memory_problem(config: dict, available: int | None) -> str | None:
    """Why the run cannot fit in memory (a message naming the flag and the estimate), or None."""
    need = estimate_memory(config)
    if available is None or need["total"] <= 0.9 * available:
        return None
    gb = 1e9
    return (f"argument {need['flag']}: the run needs about {need['total'] / gb:.1f} GB of memory (tasks' images "
            f"{need['tasks'] / gb:.1f} GB, weights and optimiser {need['weights'] / gb:.1f} GB for "
            f"{need['jobs_at_once']} job(s) at once), more than the {available / gb:.1f} GB available; make it "
            "smaller (or lower --workers)")


# ============================================================================ statistics
# Paired statistics over seeds, in numpy and the standard library only (no scipy).
#
# Each seed gives one paired measurement (variant vs baseline on the same data order and initial weights).
# The primary test is the exact Wilcoxon signed-rank test on the per-seed differences, with Holm's correction
# over the variants compared with the same baseline on the same metric. Every comparison also says what it
# cannot show: whether n is large enough for the exact test to reach p < 0.05 after the correction, and which
# true mean difference that test, at that correction, would have detected with 80% power given the observed
# spread (by simulation: detectable_difference).
ALPHA = 0.05


def _t_mass(t: float, df: int) -> float:
    """P(|T| <= t) for t >= 0: closed form for integer df (Abramowitz & Stegun 26.7.3-4)."""
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2:
        term, total = math.cos(theta), 0.0
        for j in range(1, (df - 1) // 2 + 1):
            total += term
            term *= c2 * (2 * j) / (2 * j + 1)
        return 2 / math.pi * (theta + math.sin(theta) * total)
    term, total = 1.0, 0.0
    for j in range(1, df // 2 + 1):
        total += term
        term *= c2 * (2 * j - 1) / (2 * j)
    return math.sin(theta) * total


def t_quantile(p: float, df: int) -> float:
    """Quantile of Student's t with integer df >= 1: bisection on the closed-form CDF."""
    if not (0 < p < 1 and df >= 1):
        raise ValueError(f"t_quantile needs 0 < p < 1 and df >= 1, got p={p}, df={df}")
    cdf = lambda t: 0.5 + math.copysign(0.5 * _t_mass(abs(t), df), t)  # noqa: E731
    lo, hi = -1.0, 1.0
    while cdf(lo) > p:
        lo *= 2
    while cdf(hi) < p:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
        if hi - lo <= 1e-14 * max(1.0, abs(mid)):
            break
    return (lo + hi) / 2


def t_critical_95(df: int) -> float:
    """Two-sided 95% critical value of Student's t."""
    return t_quantile(0.975, df)


def describe(values, bounds=None) -> dict:
    """Mean, sample sd (ddof=1) and 95% t interval of the mean. With bounds (e.g. (0, 1) for accuracies)
    the interval is clipped to what the quantity can take, and ci95_clipped says so: a symmetric t interval
    around 0.995 from two seeds would otherwise claim accuracies above 1."""
    x = np.asarray(values, dtype=float).ravel()
    if not np.all(np.isfinite(x)):
        raise ValueError("describe: non-finite value")
    n = int(x.size)
    out = {"n": n, "mean": float(x.mean()) if n else None, "std": None, "ci95": None, "ci95_clipped": False}
    if n < 2:
        return out
    # equal values (to float rounding, as for Wilcoxon ties) have sd 0, not 1e-17
    std = 0.0 if np.ptp(x) <= 1e-12 * np.abs(x).max() else float(x.std(ddof=1))
    half = t_critical_95(n - 1) * std / math.sqrt(n)
    lo, hi = out["mean"] - half, out["mean"] + half
    if bounds is not None:
        clo, chi = max(lo, bounds[0]), min(hi, bounds[1])
        out["ci95_clipped"] = (clo, chi) != (lo, hi)
        lo, hi = clo, chi
    out.update(std=std, ci95=[float(lo), float(hi)])
    return out


def sign_test(better: int, worse: int) -> float:
    """Exact two-sided sign test (ties dropped): probability of a split at least this uneven."""
    n = better + worse
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(better, worse) + 1)) / 2 ** n
    return float(min(1.0, 2 * tail))


def _doubled_signed_ranks(diffs):
    """Doubled ranks of |d| over the non-zero d (so tied average ranks stay integers), and d > 0.
    |d| equal to within 1e-12 of the largest |d| count as tied: differences of accuracies such as
    0.9710 - 0.9580 and 0.9007 - 0.8877 differ only by float rounding."""
    d = np.asarray(diffs, dtype=float).ravel()
    d = d[d != 0]  # Wilcoxon's convention: zero differences carry no sign and are dropped
    order = np.argsort(np.abs(d), kind="stable")
    a, d = np.abs(d)[order], d[order]
    if not a.size:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=bool)
    starts_group = np.r_[True, np.diff(a) > 1e-12 * a[-1]]
    starts = np.flatnonzero(starts_group)
    ends = np.r_[starts[1:], a.size]  # a tie group holds ranks start+1 .. end; doubled mean = start+1+end
    return (starts + 1 + ends)[np.cumsum(starts_group) - 1], d > 0


def signed_rank_null(ranks) -> np.ndarray:
    """P(sum of the ranks that are + = w), w = 0 .. sum(ranks), when each integer rank is + or - with
    probability 1/2 independently: the exact null distribution of W+ (dynamic programming; halving is exact)."""
    dist = np.zeros(int(np.sum(ranks)) + 1)
    dist[0] = 1.0
    for r in ranks:
        shifted = np.zeros_like(dist)
        shifted[r:] = dist[:-r]
        dist = (dist + shifted) / 2
    return dist


def wilcoxon_signed_rank_p(diffs) -> float:
    """Exact two-sided p of the Wilcoxon signed-rank test, also with tied |d| (no normal approximation).
    Under H0 each rank is + or - with probability 1/2 independently; dynamic programming over the doubled
    ranks gives the exact null distribution of W+ = sum of the ranks of the positive differences.
    p = min(1, 2 min(P(W+ <= w), P(W+ >= w))). Zero differences are dropped; none left gives 1."""
    r2, positive = _doubled_signed_ranks(diffs)
    if not r2.size:
        return 1.0
    dist = signed_rank_null(r2)
    w = int(r2[positive].sum())
    return float(min(1.0, 2 * min(dist[:w + 1].sum(), dist[w:].sum())))


def min_p_reachable(n_nonzero: int) -> float:
    """Smallest two-sided p an exact Wilcoxon (or sign) test can give with n non-zero pairs: all n signs
    agree, probability 2 / 2**n. Below 6 pairs it is > 0.05 whatever the data."""
    return float(min(1.0, 2 / 2 ** n_nonzero))


def can_reach(n_nonzero: int, alpha: float = ALPHA) -> bool:
    """Whether n non-zero pairs can give p < alpha at all."""
    return min_p_reachable(n_nonzero) < alpha


def holm(pvalues) -> list:
    """Holm-Bonferroni step-down adjusted p-values, in the given order; None entries pass through.
    The i-th smallest of m p-values becomes max over j <= i of (m - j + 1) p_(j), capped at 1."""
    idx = sorted((i for i, p in enumerate(pvalues) if p is not None), key=lambda i: pvalues[i])
    out, running = list(pvalues), 0.0
    for rank, i in enumerate(idx):
        running = max(running, (len(idx) - rank) * pvalues[i])
        out[i] = float(min(1.0, running))
    return out


def wilcoxon_null(n: int) -> np.ndarray:
    """P(W+ = w), w = 0 .. n(n+1)/2, for n non-zero differences without ties."""
    return signed_rank_null(np.arange(1, n + 1))


def wilcoxon_rejects(x: np.ndarray, alpha: float) -> np.ndarray:
    """Per row of x (continuous draws: no zeros, no ties), whether the exact two-sided Wilcoxon signed-rank
    test rejects at alpha, i.e. 2 min(P(W+ <= w), P(W+ >= w)) < alpha for the row's W+ = w."""
    n = x.shape[1]
    dist = wilcoxon_null(n)
    lower = np.cumsum(dist)                             # P(W+ <= w); by symmetry P(W+ >= w) = lower[total - w]
    p = np.minimum(1.0, 2 * np.minimum(lower, lower[::-1]))
    ranks = np.abs(x).argsort(axis=1).argsort(axis=1) + 1
    return p[(ranks * (x > 0)).sum(axis=1)] < alpha


DETECT_DRAWS = 10_000              # normal samples of n paired differences in the power simulation


@functools.lru_cache(maxsize=None)
def detectable_effect(n: int, alpha: float, power: float) -> float | None:
    """The detectable difference in units of the differences' sd (see detectable_difference), from fixed
    draws: the same (n, alpha, power) always give the same number. None when n pairs cannot reach alpha."""
    if min_p_reachable(n) >= alpha:
        return None
    z = np.random.default_rng(2013).standard_normal((DETECT_DRAWS, n))

    def power_at(effect: float) -> float:
        return float(wilcoxon_rejects(z + effect, alpha).mean())
    lo, hi = 0.0, 1.0
    while power_at(hi) < power:
        lo, hi = hi, 2 * hi
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if power_at(mid) < power else (lo, mid)
    return (lo + hi) / 2


def detectable_difference(sd, n: int, alpha: float = ALPHA, power: float = 0.8, m: int = 1):
    """Smallest true mean paired difference the test in use detects with the given power: the exact
    two-sided Wilcoxon signed-rank test at alpha / m (m comparisons under Holm, whose strictest step is
    alpha / m, so every comparison has at least this power), for n pairs whose differences are normal with
    sd `sd`, by simulation. It tells how big an effect a null result rules out. None when n pairs cannot
    reach alpha / m at all, or sd is 0 or not finite."""
    if sd is None or n < 2 or not math.isfinite(sd) or sd <= 0:
        return None
    effect = detectable_effect(n, alpha / m, power)
    return None if effect is None else float(sd * effect)


def paired_comparison(variant_values, baseline_values, higher_is_better: bool, metric_name=None,
                      variant="variant", baseline="baseline") -> dict:
    """Per-seed differences variant - baseline (pairs in the same seed order) and what they show.
    Exact float ties (difference == 0.0) are ties. wilcoxon_p_holm stays None until add_holm."""
    v, b = np.asarray(variant_values, dtype=float), np.asarray(baseline_values, dtype=float)
    if v.shape != b.shape or v.ndim != 1:
        raise ValueError("paired_comparison needs two equally long 1-d sequences")
    d = v - b
    sign = 1 if higher_is_better else -1
    better, worse = int(np.sum(sign * d > 0)), int(np.sum(sign * d < 0))
    diff = describe(d, bounds=(-1, 1))
    c = {"n_pairs": int(d.size), "diff": diff, "better": better, "ties": int(d.size) - better - worse,
         "worse": worse, "wilcoxon_p": wilcoxon_signed_rank_p(d), "wilcoxon_p_holm": None,
         "sign_test_p": sign_test(better, worse), "detectable_diff": detectable_difference(diff["std"], d.size),
         "can_reach_005": can_reach(better + worse), "verdict": None}
    c["verdict"] = verdict(c, metric_name, variant, baseline)
    return c


def compare_runs(runs: list, base_runs: list, metric: str, higher_is_better: bool, variant: str, baseline: str) -> dict:
    """paired_comparison of one metric over two lists of run summaries paired by seed: every seed, a failed
    run at what it scored (its accuracies are its outcome). Where a side failed on some seed, the difference
    over the other seeds is kept beside it (`without_failed`): a secondary reading, never the verdict."""
    pairs = [(a, b) for a, b in zip(runs, base_runs) if a.get(metric) is not None and b.get(metric) is not None]
    cmp = paired_comparison([a[metric] for a, _ in pairs], [b[metric] for _, b in pairs], higher_is_better,
                            metric, variant, baseline)
    if any(a["failed"] or b["failed"] for a, b in pairs):
        kept = [a[metric] - b[metric] for a, b in pairs if not a["failed"] and not b["failed"]]
        cmp["without_failed"] = {"n_pairs": len(kept), "diff": describe(kept, (-1, 1)),
                                 "wilcoxon_p": wilcoxon_signed_rank_p(kept)}
    return cmp


def add_holm(comparisons: dict, metric_name, baseline) -> dict:
    """Holm over {variant: C} (one metric, one baseline); rewrites each verdict with the adjusted p, and
    whether p < 0.05 can be reached and what would have been detected, at the m comparisons' correction."""
    names = list(comparisons)
    m = sum(comparisons[v]["wilcoxon_p"] is not None for v in names)
    for name, p in zip(names, holm([comparisons[v]["wilcoxon_p"] for v in names])):
        cmp = comparisons[name]
        cmp.update(wilcoxon_p_holm=p, holm_m=m, can_reach_005=can_reach(cmp["better"] + cmp["worse"], ALPHA / m),
                   detectable_diff=detectable_difference(cmp["diff"]["std"], cmp["n_pairs"], m=m))
        cmp["verdict"] = verdict(cmp, metric_name, name, baseline)
    return comparisons


def _fmt_p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


def verdict(c: dict, metric_name, variant: str, baseline: str) -> str:
    """One plain sentence; decides on the Holm-adjusted p when present. Direction = sign of the mean."""
    n, ties = c["n_pairs"], c["ties"]
    if not c["can_reach_005"]:
        m = c.get("holm_m") or 1
        need = next(k for k in range(1, 64) if can_reach(k, ALPHA / m))
        held, which = ((f" after Holm over {m} comparisons", "exact Wilcoxon p, Holm-adjusted,") if m > 1
                       else ("", "exact Wilcoxon p"))
        return (f"cannot be decided with {n} paired seeds{f' ({ties} tied)' if ties else ''}: no test can reach "
                f"p < {ALPHA:g}{held} (the smallest possible {which} is "
                f"{min(1.0, m * min_p_reachable(c['better'] + c['worse'])):.3g}); run at least {need} seeds"
                f"{' with non-zero differences' if ties else ''}")
    p, p_holm = c["wilcoxon_p"], c["wilcoxon_p_holm"]
    p_text = f"Wilcoxon p = {_fmt_p(p)}" + (f", Holm-adjusted {_fmt_p(p_holm)}" if p_holm is not None else "")
    if (p_holm if p_holm is not None else p) < ALPHA:
        if metric_name == "forgetting":
            words = ("forgets significantly more than", "forgets significantly less than")
        else:
            name = "ACC" if metric_name == "acc" else (metric_name or "value")
            words = (f"has significantly higher {name} than", f"has significantly lower {name} than")
        return f"{variant} {words[0] if c['diff']['mean'] > 0 else words[1]} {baseline} ({p_text})"
    dd = c["detectable_diff"]
    power_text = (f"; a true mean difference of ±{dd:.2g} would have been detected with at least 80% power"
                  if dd else "")
    return f"no significant difference between {variant} and {baseline} at {n} seeds ({p_text}){power_text}"


BOUNDS = {"acc": (0, 1), "learning_acc": (0, 1), "forgetting": (-1, 1), "bwt": (-1, 1)}
COMPARED = (("acc", True), ("forgetting", False))      # (metric, higher is better), against the baseline


def aggregate(per_seed: list, models: list) -> dict:
    """Per variant: every metric over every seed, failed runs included (a run's accuracies are its outcome,
    chance where it diverged), and how many failed. Against the first variant (the baseline), seed by seed:
    the paired difference of ACC and of forgetting, tested with the exact Wilcoxon signed-rank test,
    Holm-adjusted over the variants compared. Where either side failed on some seed, the difference over
    the other seeds is kept beside it (`without_failed`): a secondary reading, never the verdict."""
    out = {"variants": {}, "paired": {"baseline": models[0], "metrics": {}}}
    for v in models:
        runs = [r["summary"][v] for r in per_seed]
        out["variants"][v] = {"n_seeds": len(runs), "n_failed": sum(bool(s["failed"]) for s in runs),
                              **{m: describe([s[m] for s in runs if s.get(m) is not None], BOUNDS[m])
                                 for m in METRICS}}
    base = models[0]
    for metric, higher in COMPARED:
        comparisons = {}
        for v in models[1:]:
            comparisons[v] = compare_runs([r["summary"][v] for r in per_seed], [r["summary"][base] for r in per_seed],
                                          metric, higher, v, base)
        add_holm(comparisons, metric, base)
        out["paired"]["metrics"][metric] = comparisons
    return out


# ============================================================================ output
class OutputError(Exception):
    """An output path that cannot be written."""


def check_output_path(path: Path) -> None:
    """Before any work: the path can become a file (not a folder), and a file can be made beside it."""
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give the path of a file")
    if path.exists() and not path.is_file():
        raise OutputError(f"{path}: exists and is not a regular file; choose another path")
    above = next(p for p in path.parents if p.exists())                # the deepest folder that exists
    if not above.is_dir():
        raise OutputError(f"{path}: cannot write here ({above} is a file, not a folder); choose another path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise OutputError(f"{path}: cannot write here ({e.strerror or e}); choose another path") from None


WRITING = []                       # the signal that arrived while files were being written (raised after)


@contextmanager
def signals_held():
    """An interruption (_raise_interrupted) that arrives while files are written waits until they are: it never
    lands between creating a temporary file and taking note of it, or inside numpy's zip writing."""
    if threading.current_thread() is not threading.main_thread() or WRITING:
        yield
        return
    WRITING.append(None)
    try:
        yield
    finally:
        signum = WRITING.pop()
        if signum is not None:
            raise Interrupted(signum)


def write_together(files: dict) -> None:
    """Write every output ({path: write(f)}) to a temporary file beside it, then rename them all into
    place: readers never see half a file, and a failure before the renames leaves every old output. A
    signal waits until the files are written (or removed)."""
    temps = []
    with signals_held():
        try:
            umask = os.umask(0)
            os.umask(umask)
            for path, write in files.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
                temps.append((tmp, path))
                with os.fdopen(fd, "wb") as f:
                    write(f)
                os.chmod(tmp, 0o666 & ~umask)
            for tmp, path in temps:
                os.replace(tmp, path)
        except OSError as e:
            raise OutputError(f"{path}: cannot write ({e.strerror or e}); choose another path") from None
        finally:
            for tmp, _ in temps:
                if os.path.exists(tmp):
                    os.unlink(tmp)


def npz_writer(arrays: dict, compressed: bool = True):
    """A writer of an .npz for write_atomic: the archive is built whole in memory first, so an interruption
    inside numpy's zip writing (older numpy leaves the zip open) never reaches the file, and no half-closed
    archive complains at exit."""
    def write(f) -> None:
        buffer = io.BytesIO()
        (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
        f.write(buffer.getvalue())
    return write


def write_atomic(path: Path, write) -> None:
    write_together({path: write})


def create_exclusive(path: Path, data: bytes) -> bool:
    """Create `path` holding `data` unless it exists; True if this call created it. Written to a temporary file
    and hard-linked into place (which fails if the path exists), so of processes racing to create one file
    exactly one does, and the others read it whole. Without hard links (some filesystems), an exclusive open."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        umask = os.umask(0)
        os.umask(umask)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o666 & ~umask)
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            except OSError:
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                except FileExistsError:
                    return False
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            return True
        finally:
            os.unlink(tmp)
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e}); choose another path") from None


def is_program_output(path: str) -> bool:
    """A tracked file the program and its scripts write (results, snapshots, figures, study aggregates),
    as opposed to code: changes to these do not make the code differ from its commit."""
    return (path == "results.json" or path.startswith("viz/") or path.endswith(".gif")
            or (path.startswith("studies/") and not path.endswith(".py")))


def environment() -> dict:
    """Where the numbers came from. Read before anything is written. git_dirty says whether the code
    differs from the commit (tracked files other than the program's own outputs, which every run
    rewrites); git_outputs_modified whether those outputs do."""
    blas = {}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:                            # older numpy: leave it unknown
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True,
                                timeout=5).stdout.strip() or None
        changed = [line[3:].split(" -> ")[-1] for line in subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE, capture_output=True, text=True,
            timeout=5).stdout.splitlines()] if commit else None
    except (OSError, subprocess.SubprocessError):
        commit, changed = None, None
    dirty = None if changed is None else any(not is_program_output(p) for p in changed)
    outputs = None if changed is None else any(is_program_output(p) for p in changed)
    return {"python": platform.python_version(), "numpy": np.__version__,
            "blas": {"name": blas.get("name"), "version": blas.get("version")},
            "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "git_commit": commit, "git_dirty": dirty, "git_outputs_modified": outputs}


# ---------------------------------------------------------------------------- run folders
# A long study is a folder with one file per finished (seed, variant) job, written the moment the job ends.
# Rerunning the same command skips what is there; separate processes or machines can fill one folder (or
# several, merged by --aggregate), because a job's numbers depend only on its seed and the settings.
RUN_FILE = "run.json"
NOT_SETTINGS = ("seed", "n_seeds", "workers", "out", "snapshots", "data_dir", "run_dir", "recipe", "headline_seed",
                "dry_run")
ADDED_SETTINGS = {"max_norm": None, "val_per_class": 0, "n_train_first": None, "loss": "xent", "optimizer": "sgd",
                  "adam_betas": [0.9, 0.999], "adam_eps": 1e-8, "clip_grad_norm": None,
                  "knn_weighted": False, "normalize": False, "no_test": False}
# flags newer than some run folders, with the values those folders ran with; no_test is set by the study
# scripts alone, for search jobs (no test image read: run_course)


def experiment_settings(config: dict) -> dict:
    """What changes a job's numbers: everything but which seeds, how many workers, and where files go."""
    return {k: v for k, v in {**ADDED_SETTINGS, **config}.items() if k not in NOT_SETTINGS}


def settings_digest(settings: dict) -> str:
    """A fingerprint of experiment settings (a config's, or a run folder's), which every job file and checkpoint
    records: equal when RunDir.require finds no difference (flags newer than a folder at the values it ran
    with; a setting that is None the same as one left out)."""
    full = {k: v for k, v in {**ADDED_SETTINGS, **settings}.items() if v is not None}
    return hashlib.sha256(json.dumps(full, sort_keys=True).encode()).hexdigest()[:16]


def slug(spec: str) -> str:
    """A variant spec as a file name part: lwta:k=4 -> lwta_k=4."""
    return re.sub(r"[^A-Za-z0-9.=%-]+", "_", spec)


def split_arrays(obj, path: str = "", arrays: dict | None = None):
    """A job result as (JSON-able part, {path: array}); arrays are replaced by {"npz": path}."""
    arrays = {} if arrays is None else arrays
    if isinstance(obj, np.ndarray):
        arrays[path] = obj
        return {"npz": path}, arrays
    if isinstance(obj, dict):
        return {k: split_arrays(v, f"{path}/{k}", arrays)[0] for k, v in obj.items()}, arrays
    return obj, arrays


def refers_to_arrays(obj) -> bool:
    if isinstance(obj, dict):
        return set(obj) == {"npz"} or any(refers_to_arrays(v) for v in obj.values())
    return False


def join_arrays(obj, arrays):
    if isinstance(obj, dict) and set(obj) == {"npz"}:
        return arrays[obj["npz"]]
    return {k: join_arrays(v, arrays) for k, v in obj.items()} if isinstance(obj, dict) else obj


class SettingsMismatch(OutputError):
    """A run folder of other settings than the command's, or than another folder's (exit 2, as a bad flag)."""


class RunDir:
    """A run folder: run.json (the settings and the task table) and one job file per (seed, variant), which
    records the digest of the settings it was computed with."""

    def __init__(self, path: Path, config: dict | None = None):
        self.path = path
        meta = path / RUN_FILE
        if not meta.is_file():
            if config is None:
                raise OutputError(f"{path}: not a run folder (no {RUN_FILE}); make one with --run-dir")
            if path.exists() and not path.is_dir():
                raise OutputError(f"{path}: exists and is not a folder; choose another --run-dir")
            # of processes starting at once on a new folder one creates run.json; all read it back below
            create_exclusive(meta, json.dumps({"settings": experiment_settings(config), "tasks": task_table(config)},
                                              indent=1).encode())
        try:
            held = json.loads(meta.read_text())
            self.settings, self.tasks = {**ADDED_SETTINGS, **held["settings"]}, held["tasks"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise OutputError(f"{meta}: unreadable ({e}); it is not a run folder written by this program") from None
        self.digest = settings_digest(self.settings)
        if config is not None:
            self.require(experiment_settings(config), "now")

    def require(self, settings: dict, where: str) -> None:
        """Refuse to mix jobs of different settings, naming every setting that differs."""
        diff = [f"{k}: {self.settings.get(k)!r} in the folder, {settings.get(k)!r} {where}"
                for k in sorted(set(self.settings) | set(settings)) if self.settings.get(k) != settings.get(k)]
        if diff:
            raise SettingsMismatch(f"{self.path}: holds jobs of a different configuration ({'; '.join(diff)}); "
                                   "use another folder")

    def file(self, seed: int, spec: str, suffix: str) -> Path:
        """A job's file: seed00003_lwta_k=4.json (.npz: its arrays; .ckpt: its checkpoint while unfinished)."""
        return self.path / f"seed{seed:05d}_{slug(spec)}{suffix}"

    def legacy_file(self, seed: int, spec: str, suffix: str) -> Path:
        """Where folders written before the naming fix keep a job whose spec has a dot (dropout=0.25 became
        dropout=0.json there: the part after the last dot was taken for a suffix)."""
        return (self.path / f"seed{seed:05d}_{slug(spec)}").with_suffix(suffix)

    def checkpoint(self, seed: int, spec: str) -> Path:
        """Where an unfinished job keeps its state between phases (deleted when the job is saved)."""
        return self.file(seed, spec, ".ckpt")

    def save(self, result: dict) -> None:
        """Arrays first, then the JSON that marks the job finished; each written atomically."""
        seed, spec = result["seed"], result["variant"]
        if result.get("settings_digest") != self.digest:
            raise OutputError(f"{self.path}: job {spec!r} seed {seed} was computed with other settings than the "
                              "folder's; not saved")
        doc, arrays = split_arrays(result)
        if arrays:
            write_atomic(self.file(seed, spec, ".npz"), npz_writer(arrays))
        text = json.dumps(doc, allow_nan=False)
        write_atomic(self.file(seed, spec, ".json"), lambda f: f.write(text.encode()))
        self.checkpoint(seed, spec).unlink(missing_ok=True)

    def read(self, path: Path) -> dict:
        """A job file and its arrays; a broken one raises OutputError naming the file that is broken."""
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise OutputError(f"{path}: unreadable job file ({e})") from None
        self.check_job(path, doc)
        arrays_path = path.with_suffix(".npz")
        if not refers_to_arrays(doc):
            return doc
        try:
            with np.load(arrays_path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise OutputError(f"{arrays_path}: missing (the arrays of {path.name})") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise OutputError(f"{arrays_path}: unreadable arrays file ({e})") from None
        try:
            return join_arrays(doc, arrays)
        except KeyError as e:
            raise OutputError(f"{arrays_path}: lacks the array {e.args[0]} that {path.name} refers to") from None

    def check_job(self, path: Path, doc) -> None:
        """A job file holds the job its name says, computed with the folder's settings (by their digest)."""
        seed, spec = (doc.get("seed"), doc.get("variant")) if isinstance(doc, dict) else (None, None)
        if not (isinstance(seed, int) and isinstance(spec, str)):
            raise OutputError(f"{path}: not a job file (no seed and variant)")
        if path.name not in (self.file(seed, spec, ".json").name, self.legacy_file(seed, spec, ".json").name):
            raise OutputError(f"{path}: holds {spec!r} seed {seed}, "
                              f"whose file is {self.file(seed, spec, '.json').name}")
        if "settings_digest" not in doc:
            raise OutputError(f"{path}: records no settings digest (written by an older version of the program), so "
                              "what it was computed with is unknown")
        if doc["settings_digest"] != self.digest:
            raise OutputError(f"{path}: computed with other settings (digest {doc['settings_digest']}) than the "
                              f"folder's {RUN_FILE} ({self.digest})")

    def load(self, seed: int, spec: str, headline: bool) -> dict | None:
        """A finished job, or None if it is not here (or lacks the curves the headline seed needs)."""
        path = self.file(seed, spec, ".json")
        if not path.is_file():
            path = self.legacy_file(seed, spec, ".json")
            if not path.is_file():
                return None
        result = self.read(path)
        if result.get("variant") != spec or result.get("seed") != seed:
            if path == self.legacy_file(seed, spec, ".json"):
                return None                     # another spec's job under the old naming: this one is not here
            raise OutputError(f"{path}: holds {result.get('variant')!r} seed {result.get('seed')}, not {spec!r} "
                              f"seed {seed}")
        return None if headline and "curves" not in result else result

    def results(self) -> list:
        return read_all([lambda p=p: self.read(p) for p in sorted(self.path.glob("seed*.json"))], self.path)


def read_all(readers: list, folder: Path) -> list:
    """Call every reader; if any job file is broken, one error naming every broken file and what to do."""
    out, broken = [], []
    for read in readers:
        try:
            out.append(read())
        except OutputError as e:
            broken.append(str(e))
    if broken:
        raise OutputError(f"{folder}: {len(broken)} broken job file(s); delete them (a job's .json and .npz go "
                          "together) to run those jobs again:\n  " + "\n  ".join(broken))
    return out


def complete_seeds(results: list, models: list) -> tuple:
    """The seeds with every variant finished, and the seeds left out for missing some."""
    have = {}
    for r in results:
        have.setdefault(r["seed"], {})[r["variant"]] = r
    complete = sorted(s for s, v in have.items() if set(models) <= set(v))
    return [have[s][v] for s in complete for v in models], sorted(set(have) - set(complete))


def task_table(config: dict) -> list:
    """Each task's label, classes, permutation and sizes, for results.json and the tables."""
    seed_tasks = make_tasks(config["seed"], config)
    return [{"label": t.label, "classes": list(t.classes), "permutation": t.permutation,
             "n_train": len(t.y_train), "n_test": len(t.y_test), "n_val": len(t.y_val)} for t in seed_tasks]


def full_matrix(headline: dict, variant: str, config: dict) -> np.ndarray:
    """The headline's accuracy matrix with the tasks not yet trained too: its curves at the phase ends."""
    phase_ends = config["epochs"] * np.arange(1, len(headline["summary"][variant]["R"]) + 1)
    return np.asarray(headline["curves"][variant])[phase_ends]


def snapshot_arrays(headline: dict, config: dict, tasks: list) -> dict:
    """Everything the figure and GIF scripts draw, from the headline seed (schema 2, see the README)."""
    n_phases = 1 if config["joint"] else len(tasks)
    n_points = n_phases * config["epochs"] + 1
    arrays = {"schema_version": np.array(SCHEMA_VERSION), "config_json": np.array(json.dumps(config)),
              "variants": np.array(config["models"]), "task_labels": np.array([t["label"] for t in tasks]),
              "epoch": np.arange(n_points), "phase_ends": config["epochs"] * np.arange(1, n_phases + 1),
              "summary_json": np.array(json.dumps(headline["summary"])),
              "submasks_json": np.array(json.dumps(headline.get("submasks")))}
    for v in config["models"]:
        units = headline["units"][v]
        arrays[f"curve_{v}"] = headline["curves"][v]
        arrays[f"R_{v}"] = full_matrix(headline, v, config).astype(np.float64)
        if "W1" in units:                       # (a study's job restored from git has no weights)
            with np.errstate(over="ignore", invalid="ignore"):  # a diverged model's weights may not fit
                arrays[f"W1_init_{v}"] = units["W1_init"].astype(np.float16)
                arrays[f"W1_{v}"] = units["W1"].astype(np.float16)
        shape = (len(tasks), config["depth"], config["hidden"])
        arrays[f"freq_{v}"] = np.full(shape, np.nan) if units["freq"] is None else units["freq"]   # diverged
    return arrays


def results_document(config: dict, runs: list, tasks: list, env: dict, timings: dict, flops: dict,
                     argv: list) -> dict:
    headline = headline_of(runs)
    curves = {v: nan_to_none(c) for v, c in headline["curves"].items()}
    return {
        "schema_version": SCHEMA_VERSION,
        "command": ["python", "compete_to_compute.py", *argv],
        "config": config,
        "environment": env,
        "flops": flops,
        "timings": timings,
        "tasks": tasks,
        "seeds": [r["seed"] for r in runs],
        "headline": {"seed": headline["seed"], "curves": curves, "summary": headline["summary"],
                     "submasks": headline.get("submasks")},
        "per_seed": [{"seed": r["seed"], "summary": r["summary"], "timings": r["timings"]} for r in runs],
        "aggregate": aggregate(runs, config["models"]) if len(runs) > 1 else None,
    }


def fmt(x, spec: str = ".4f") -> str:
    return "n/a" if x is None or x != x else format(x, spec)        # never measured (None or NaN)


def print_table(headline: dict, config: dict, tasks: list) -> None:
    """The headline seed: each variant's metrics, then its accuracy matrix (tasks not yet trained too)."""
    summary = headline["summary"]
    width = max(8, *(len(v) for v in summary)) + 2
    layers = ", ".join(f"L{i}" for i in range(1, config["depth"] + 1))
    print(f"{'variant':<{width}}{'ACC':>8}{'forgetting':>12}{'BWT':>9}{'learning':>10}   active units {layers} "
          "(mean over tasks)")
    for v, s in summary.items():
        active = (" ".join(f"{np.mean([a[layer] for a in s['active']]):.3f}" for layer in range(config["depth"]))
                  if s["active"] else "n/a")
        print(f"{v:<{width}}{s['acc']:>8.4f}{fmt(s['forgetting'], '>12.4f'):>12}{fmt(s['bwt'], '>+9.4f'):>9}"
              f"{fmt(s['learning_acc'], '>10.4f'):>10}   {active}")
        if s["failed"]:
            print(f"{'':<{width}}{failure_text(s['failed'], config['epochs'])}")
    print("\naccuracy matrix: row i = after training " + ("jointly" if config["joint"] else "task i")
          + "; column j = test accuracy on task j (" + "; ".join(f"T{j + 1} {t['label']}" for j, t in enumerate(tasks))
          + ")")
    for v, s in summary.items():
        for i, row in enumerate(full_matrix(headline, v, config).tolist()):
            label = v if i == 0 else ""
            print(f"  {label:<{width}}{'joint' if config['joint'] else f'T{i + 1}':>5}  "
                  + " ".join(f"{fmt(a):>6}" for a in row))


def print_aggregate(agg: dict, n_seeds: int) -> None:
    print(f"\nover {n_seeds} seeds (mean ± std [95% CI]):")
    for v, m in agg["variants"].items():
        failed = f"  ({m['n_failed']} run(s) failed, counted at what they scored)" if m["n_failed"] else ""
        parts = []
        for k in ("acc", "forgetting", "learning_acc"):
            d = m[k]
            if d["mean"] is None:
                continue
            ci = f" [{d['ci95'][0]:.4f}, {d['ci95'][1]:.4f}]" if d["ci95"] and k != "learning_acc" else ""
            spread = f" ± {d['std']:.4f}{ci}" if d["std"] is not None else ""
            parts.append(f"{ {'acc': 'ACC', 'learning_acc': 'learning acc.'}.get(k, k)} {d['mean']:.4f}{spread}")
        print(f"  {v:<12} " + "; ".join(parts) + failed)
    base = agg["paired"]["baseline"]
    for metric, comparisons in agg["paired"]["metrics"].items():
        if not comparisons:
            continue
        print(f"paired against {base}, {'ACC' if metric == 'acc' else metric} (variant - {base}, same seeds):")
        for v, p in comparisons.items():
            d = p["diff"]
            if d["mean"] is None:
                print(f"  {v:<12} no pairs")
                continue
            ci = f" [95% CI {d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]" if d["ci95"] else ""
            detect = f"; detectable ±{p['detectable_diff']:.3f}" if p["detectable_diff"] else ""
            print(f"  {v:<12} {d['mean']:+.4f}{ci}; better on {p['better']}, tie {p['ties']}, worse on "
                  f"{p['worse']}; sign test p {_fmt_p(p['sign_test_p'])}{detect}; {p['verdict']}")
            if w := p.get("without_failed"):
                print(f"  {'':<12} without the seeds where a side failed: {fmt(w['diff']['mean'], '+.4f')} on "
                      f"{w['n_pairs']} pairs, Wilcoxon p {_fmt_p(w['wilcoxon_p'])} (secondary, unadjusted)")


def print_validation(runs: list, config: dict) -> None:
    """With --val-per-class: each variant's validation scores (the numbers to choose hyperparameters on),
    mean over the seeds that did not diverge."""
    if not config.get("val_per_class"):
        return
    print(f"\nvalidation images ({config['val_per_class']} per class and task, held out of the training images), "
          "mean over seeds:")
    for v in config["models"]:
        val = [r["summary"][v]["val_R"] for r in runs
               if not failed_because(r["summary"][v]["failed"], "diverged")]
        if not val:
            print(f"  {v:<12} every run diverged")
            continue
        acc = np.mean([np.mean([a for a in R[-1] if a is not None]) for R in val])
        print(f"  {v:<12} ACC {acc:.4f}; task 1 after task 1 {np.mean([R[0][0] for R in val]):.4f} "
              f"({len(val)} seed(s))")


# ============================================================================ command line
def flag_type(parse):
    """A spec-key parser as an argparse type: its message becomes the flag's error."""
    def typed(s: str):
        try:
            return parse(s)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return typed


positive_int = flag_type(int_at_least(1, "a positive integer"))
nonnegative_int = flag_type(nonnegative)


def task_groups(s: str) -> list:
    """`01234,56789` -> [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]: disjoint digit groups in training order."""
    groups = s.split(",")
    example = "e.g. 01234,56789 or 01,23,45,67,89"
    if not all(g and g.isdigit() and g.isascii() for g in groups):
        raise argparse.ArgumentTypeError(f"must be groups of digits 0-9 separated by commas, {example}; got {s!r}")
    digits = [int(d) for g in groups for d in g]
    if len(set(digits)) != len(digits):
        raise argparse.ArgumentTypeError(f"each digit may appear once (the tasks must be disjoint), {example}; "
                                         f"got {s!r}")
    if len(groups) < 2:
        raise argparse.ArgumentTypeError(f"needs at least two tasks, {example}; got {s!r}")
    return [[int(d) for d in g] for g in groups]


def variant_list(s: str) -> list:
    """Comma-separated variant specs; each is checked now, its width-dependent limits in parse_config."""
    specs = [v.strip() for v in s.split(",")]
    try:
        variants = [parse_variant(v) for v in specs]
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    settings = [json.dumps(v.settings(), sort_keys=True) for v in variants]
    if len(set(settings)) != len(settings):
        raise argparse.ArgumentTypeError(f"two specs in {s!r} describe the same variant; give distinct variants")
    return specs


def beta_pair(s: str) -> list:
    try:
        betas = [float(b) for b in s.split(",")]
    except ValueError:
        betas = []
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise argparse.ArgumentTypeError("must be two numbers in [0, 1) separated by a comma, e.g. 0.9,0.999; "
                                         f"got {s!r}")
    return betas


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class Recipe:
    """One source's protocol as flags of this program, the source it follows, and the source's numbers."""
    source: str                    # repository and file (or paper) the flags follow
    flags: tuple                   # command-line flags; flags given beside --recipe override them
    reference: str                 # the source's own numbers, to set ours beside
    budget: str = ""               # where the recipe departs from the source to fit a CPU, and by how much


RECIPES = {
    "compete-to-compute": Recipe(
        "Srivastava, Masci, Kazerounian, Gomez & Schmidhuber, Compete to Compute, NIPS 2013, as reproduced in "
        "numpy by npow/schmidhuber-problems, compete-to-compute/ (its defaults are this program's)", (),
        "npow/schmidhuber-problems, compete-to-compute/README.md: seed 0 forgetting ReLU 0.072, LWTA 0.022; "
        "10 seeds 0.045 vs 0.043 (n.s.)"),
    "src-mnist": Recipe(
        "tmtadros/SleepReplayConsolidation, MNIST/run_class_task_summary.m (DeepLearnToolbox nnsetup/nnff/nnbp)",
        ("--tasks", "01,23,45,67,89", "--scenario", "class", "--hidden", "1200", "--depth", "2",
         "--init", "uniform:0.01", "--loss", "mse", "--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.5",
         "--momentum-carry", "--weight-decay", "0", "--epochs", "2", "--batch-size", "100",
         "--n-train-first", "5000", "--models", "relu:bias=0:dropout=0.25,relu:sleep=1:dropout=0.25"),
        "Tadros et al. 2022 (5 runs): the paper's own MNIST numbers could not be read here; a literature "
        "survey quotes sequential 19.5 % -> SRC 48.5 % (unverified)"),
    "sdm-split-mnist": Recipe(
        "TrentBrick/SDMContinualLearner, exp_commands/cont_learn_on_SplitMNIST.py, models/TopK_Act.py",
        ("--tasks", "01,23,45,67,89", "--scenario", "class", "--hidden", "1000", "--depth", "1",
         "--init", "torch", "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0", "--weight-decay", "0",
         "--batch-size", "128", "--clip-grad-norm", "1", "--n-train-first", "60000", "--epochs", "500",
         "--models", "relu,topk:k=10,sdm:k=10:schedule=gaba:gaba=5000000,sdm:k=1:schedule=gaba:gaba=5000000"),
        "Bricken, Davies, Singh, Krotov & Kreiman, Sparse Distributed Memory is a Continual Learner, ICLR 2023, "
        "Table 7 (3 seeds): SDMLP k=10 0.53, k=1 0.69; Top-K 0.22; ReLU 0.21",
        "500 epochs per task is 9.6e13 FLOPs per model and seed (about half an hour of one core here); "
        "studies/15_recipes.py runs 10-200 epochs, and 500 over several sittings, with gaba scaled to 10,000 "
        "firings per epoch"),
    "kwta-permuted": Recipe(
        "numenta/nupic.research, projects/dendrites (Iyer et al. 2022): the sparse-representations-only "
        "configuration for 10 permuted-MNIST tasks, figure data in permutedMNIST/figures/figures.ipynb",
        ("--permuted", "10", "--hidden", "2048", "--depth", "2", "--init", "modified", "--normalize",
         "--optimizer", "adam", "--lr", "0.0001", "--weight-decay", "0", "--batch-size", "256", "--epochs", "5",
         "--n-train-first", "60000",
         "--models", "relu:lr=3e-06,"
                     "kwinners:percent_on=0.05:boost_strength=0:k_inference_factor=1:weight_sparsity=0.5"),
        "Iyer et al. 2022 (8 seeds): after 10 tasks kWTA 91.3 %, dense MLP 82.0 % (its own lr, 3e-6, from "
        "projects/dendrites/permutedMNIST/experiments/mlp.py)",
        "5 epochs per task are about 1.1e14 FLOPs per model and seed (about 25 minutes of one core); the "
        "source's permutations come from its dataset seed 42, ours from each seed; our output layer is dense"),
}
EXCLUSIVE_FLAGS = (("n_train_first", "n_train_per_class"), ("permuted", "tasks"))


def given_flags(parser: argparse.ArgumentParser, argv: list) -> set:
    """The destinations of the options that argv names itself (abbreviations are refused by the parser)."""
    named = {token.split("=")[0] for token in argv if token.startswith("--")}
    return {a.dest for a in parser._actions if named & set(a.option_strings)}


def recipe_defaults(parser: argparse.ArgumentParser, name: str, argv: list) -> argparse.Namespace:
    """A namespace holding the recipe's parsed flags, minus those the user's flags replace (a flag given
    also drops the recipe's alternative to it, e.g. --n-train-per-class drops --n-train-first)."""
    recipe = parser.parse_args(list(RECIPES[name].flags))
    keep, user = given_flags(parser, list(RECIPES[name].flags)), given_flags(parser, argv)
    for a, b in EXCLUSIVE_FLAGS:
        keep -= {b} if a in user else set()
        keep -= {a} if b in user else set()
    return argparse.Namespace(**{dest: v for dest, v in vars(recipe).items() if dest in keep - user})  # flag order


class Parser(argparse.ArgumentParser):
    """argparse whose error is one short usage line and the error, not the usage of every flag."""

    def error(self, message: str):
        self.exit(2, f"usage: {self.prog} [flags] (--help describes them)\n{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        allow_abbrev=False,
        description="MLP variants (ReLU, LWTA, Top-K, ...) trained on a sequence of tasks: how much of the "
                    "earlier tasks does each forget?")
    a = p.add_argument
    a("--recipe", choices=sorted(RECIPES), default=None,
      help="set every flag of one source's protocol at once (flags given too override it); the recipes and "
           "their sources: " + "; ".join(f"{k}: {r.source}" for k, r in RECIPES.items()))
    a("--seed", type=nonnegative_int, default=0,
      help="first seed: weights, subsample, minibatch order, dropout, permutations (default 0)")
    a("--n-seeds", type=positive_int, default=1, help="run seeds seed..seed+N-1 and aggregate them (default 1)")
    a("--workers", type=positive_int, default=default_workers(),
      help="parallel jobs, one variant of one seed each: processes for several seeds, threads for one "
           "(default: all available cores, here %(default)s)")
    a("--models", type=variant_list, default="relu,lwta,topk",
      help="variant specs name[:key=value]..., comma-separated; the first is the baseline of the paired "
           "comparisons (default %(default)s). Keys (default): " + ("; ".join(
               f"{name} " + ", ".join(f"{k} ({d})" for k, (_, d, _) in cls.keys.items())
               for name, cls in ACTIVATIONS.items() if cls.keys) + "; any variant: " + ", ".join(
               f"{k} ({'--lr' if k == 'lr' else d})" for k, (_, d, _) in VARIANT_KEYS.items())
           + "; methods against forgetting, any variant, on when the first key of each is > 0: " + "; ".join(
               ", ".join(f"{k} ({d})" for k, (_, d, _) in cls.keys.items()) for cls in METHODS.values())
           ).replace("%", "%%"))
    a("--tasks", type=task_groups, default=None,
      help="class groups in training order, e.g. 01,23,45,67,89 (default 01234,56789)")
    a("--permuted", type=positive_int, default=None,
      help="N permuted-MNIST tasks instead of --tasks: all ten digits, each task its own fixed pixel "
           "permutation drawn from the seed (task 1 unpermuted)")
    a("--scenario", choices=SCENARIOS, default=None,
      help="task: a head per task (default for --tasks); class: one 10-way head, no task identity; "
           "domain: one shared head (the one for --permuted)")
    a("--joint", action="store_true",
      help="upper bound: train once on the union of all tasks' data (same number of image presentations)")
    a("--dataset", choices=sorted(DATASETS), default="mnist",
      help="dataset with the MNIST IDX layout (default %(default)s)")
    a("--data-dir", default=None,
      help="folder with the four IDX files (.gz or not); default $MNIST_DIR ($FASHION_MNIST_DIR), "
           "else ~/.cache/compete_to_compute/<dataset>, downloading what is missing")
    a("--n-train-per-class", type=positive_int, default=None,
      help="balanced training images per class and task, drawn from the seed (default 500)")
    a("--n-train-first", type=positive_int, default=None,
      help="instead: the first N training images of each task's classes, in the file's order (all of them "
           "if fewer), not class-balanced, the same for every seed (a recipe's subsample)")
    a("--val-per-class", type=nonnegative_int, default=0,
      help="validation images per class and task, held out from the training images (disjoint from the "
           "training subsample, which they leave unchanged); every seed is then also scored on them, for "
           "choosing hyperparameters without the test set (default %(default)s: none)")
    a("--hidden", type=positive_int, default=400, help="units per hidden layer (default %(default)s)")
    a("--depth", type=positive_int, default=2, help="number of hidden layers (default %(default)s)")
    a("--epochs", type=positive_int, default=5, help="epochs on each task (default %(default)s)")
    a("--batch-size", type=positive_int, default=64, help="minibatch size (default %(default)s)")
    a("--lr", type=flag_type(positive), default=0.05,
      help="learning rate (default %(default)s)")
    a("--optimizer", choices=sorted(OPTIMIZERS), default="sgd",
      help="sgd (with --momentum) or adam (with --adam-betas, --adam-eps, and an --lr of its own) (default "
           "%(default)s); the other optimizer's flags are refused")
    a("--momentum", type=flag_type(real_in(0, 1, "a number in [0, 1)", hi_open=True)), default=0.9,
      help="SGD momentum, reset at each task (default %(default)s)")
    a("--adam-betas", type=beta_pair, default=[0.9, 0.999],
      help="Adam's two moment decay rates, comma-separated (default 0.9,0.999)")
    a("--adam-eps", type=flag_type(positive), default=1e-8,
      help="Adam's epsilon (default %(default)s)")
    a("--clip-grad-norm", type=flag_type(positive), default=None,
      help="scale each minibatch's gradient down to this joint L2 norm when it is longer (default: none)")
    a("--loss", choices=sorted(LOSSES), default="xent",
      help="xent: softmax cross-entropy; mse: half squared error of a ReLU output layer against one-hot "
           "targets, predicting with the ReLU outputs (default %(default)s)")
    a("--weight-decay", type=flag_type(at_least_zero), default=1e-4,
      help="L2 weight decay on weights, not biases (default %(default)s)")
    a("--max-norm", type=flag_type(positive), default=None,
      help="after every update, rescale each hidden unit's incoming weight vector to L2 norm <= this "
           "(the max-norm constraint that goes with dropout; default: none)")
    a("--momentum-carry", action="store_true",
      help="carry the optimiser's state (SGD momentum, Adam's moments) across task switches instead of "
           "resetting it")
    a("--init", type=init_spec, default="he",
      help="initial weights: he (normal, variance 2/fan-in, zero biases), lecun (1/fan-in), uniform:S "
           "(uniform in [-S, S], zero biases) or torch (torch.nn.Linear's: weights and biases uniform in "
           "+-1/sqrt(fan-in)) or modified (torch's, each layer's weight bound over sqrt(input density x weight "
           "density): numenta/nupic.research's, for sparse layers) (default %(default)s)")
    a("--normalize", action=argparse.BooleanOptionalAction, default=False,
      help="inputs as (pixel - mean) / std with the data set's constants (MNIST: 0.13062755, 0.30810780, "
           "numenta/nupic.research's) instead of pixels in [0, 1] (--no-normalize: pixels, e.g. beside a recipe "
           "that normalises)")
    a("--dtype", choices=("float32", "float64"), default="float32",
      help="floating-point type of all the maths (default %(default)s)")
    a("--out", default=None,
      help="results file, JSON (default results.json; with --run-dir none unless given: the jobs are saved "
           "in the folder, and --out, or --aggregate DIR later, writes the aggregate of the whole folder)")
    a("--snapshots", default=None, help="snapshot file read by the figure and GIF scripts, written with the "
                                        "results file (default viz/snapshots.npz)")
    a("--headline-seed", type=nonnegative_int, default=None,
      help="the seed evaluated after every epoch, whose curves, weights and submasks the figures draw "
           "(default: the first seed): one of the seeds run, or with --run-dir one the folder holds; a run-folder "
           "job of another seed skips that work")
    a("--run-dir", default=None,
      help="run folder: each finished (seed, variant) job is saved there at once; rerunning skips finished "
           "jobs (see also --aggregate DIR [DIR ...])")
    a("--knn-weighted", action="store_true",
      help="the headline seed's submask kNN votes weighted by 1 / (1 + Hamming distance) instead of one vote "
           "per neighbour (its k is chosen on validation images when --val-per-class gives some, else 5)")
    a("--quiet", action="store_true", help="no per-epoch progress lines")
    a("--dry-run", action="store_true",
      help="print the jobs, the matrix-product work and the time it should take here, then stop: nothing is "
           "trained or written")
    a("--aggregate", nargs="+", metavar="DIR", default=None,
      help="instead of training: merge run folders of one configuration into --out and --snapshots "
           "(takes only those two and --quiet)")
    return p


def resolved_settings(variant: Variant, width: int) -> str:
    """A variant's settings with unit counts resolved at a width (topk:k=10% is topk:k=40 at 400 units)."""
    keys = ACTIVATIONS[variant.activation].keys
    params = {k: n_units(v, width) if keys[k][0] is count_or_percent else v for k, v in variant.params.items()}
    return json.dumps({**variant.settings(), **params}, sort_keys=True)


def method_problem(variant: Variant, args) -> str | None:
    """Why a variant's methods against forgetting cannot work with these flags, or None."""
    if variant.methods and args.joint:
        return (f"a method against forgetting ({', '.join(variant.methods)}) protects earlier tasks from later "
                "ones, and --joint trains one phase: leave the method out or --joint off")
    if "ewc" in variant.methods and args.loss != "xent":
        return "ewc's Fisher is that of the softmax's likelihood, and --loss mse has none: use --loss xent"
    if "replay" in variant.methods and args.n_train_first:
        return "replay draws a class-balanced buffer: use --n-train-per-class, not --n-train-first"
    n = args.n_train_per_class or 500
    if variant.methods.get("replay", {}).get("replay", 0) > n:
        return f"replay={variant.methods['replay']['replay']} keeps more images per class than a task has ({n})"
    return None


OPTIMIZER_FLAGS = {"sgd": ("momentum",), "adam": ("adam_betas", "adam_eps")}


def optimizer_problem(parser: argparse.ArgumentParser, args, argv: list) -> str | None:
    """A flag of the other optimizer given (it would be ignored), or Adam left at SGD's default learning
    rate (no --lr, none from the recipe, and a variant without its own lr key)."""
    user = given_flags(parser, argv)
    for name, dests in OPTIMIZER_FLAGS.items():
        for dest in sorted(user & set(dests) if name != args.optimizer else ()):
            return (f"argument --{dest.replace('_', '-')}: {name} only, and --optimizer is {args.optimizer}: leave "
                    f"it out or give --optimizer {name}")
    recipe = given_flags(parser, list(RECIPES[args.recipe].flags)) if args.recipe else set()
    if args.optimizer == "adam" and "lr" not in user | recipe and any(parse_variant(v).lr is None for v in args.models):
        return (f"argument --optimizer: adam would keep SGD's default --lr {args.lr:g} (Adam is usually run near "
                "0.001): give --lr")
    return None


def seed_range(first: int, n: int) -> str:
    return f"seed {first}" if n == 1 else f"seeds {first}-{first + n - 1}"


def headline_seed_problem(config: dict, folder: Path | None = None) -> str | None:
    """Why --headline-seed cannot be drawn from this run: it must be one of the seeds run or, with a run
    folder (which may hold it from another command), one whose finished jobs with curves the folder holds."""
    h, first, n = config["headline_seed"], config["seed"], config["n_seeds"]
    if h is None or first <= h < first + n:
        return None
    not_run = f"{h} is not among the {seed_range(first, n)} this command runs"
    if folder is None:
        return f"{not_run}; give one of them, or leave the flag out"
    if (folder / RUN_FILE).is_file() and all(RunDir(folder).load(h, v, headline=True) for v in config["models"]):
        return None
    return (f"{not_run}, and {folder} does not hold its finished jobs with curves; run that seed too, or leave "
            "the flag out")


def parse_config(argv: list | None) -> tuple:
    """Parse and cross-check every flag; any problem exits with code 2 naming the flag.

    Returns the experiment's config and the quiet flag.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.recipe:                             # the recipe's flags become defaults: flags given override them
        args = parser.parse_args(argv, namespace=recipe_defaults(parser, args.recipe, argv))
    if args.permuted is not None and args.tasks is not None:
        parser.error("argument --permuted: not allowed with --tasks (permuted tasks use all ten digits)")
    if args.permuted is not None and args.permuted < 2:
        parser.error(f"argument --permuted: needs at least 2 tasks, got {args.permuted}")
    if args.permuted is not None and args.scenario not in (None, "domain"):
        parser.error(f"argument --scenario: {args.scenario} does not fit --permuted (every task has the same "
                     "ten classes, so the tasks share one head); use --scenario domain")
    if args.permuted is None and args.scenario == "domain":
        parser.error("argument --scenario: domain is for --permuted (the same classes in every task); "
                     "with --tasks use task or class")
    args.scenario = args.scenario or ("domain" if args.permuted else "task")
    args.tasks = [list(range(10))] * args.permuted if args.permuted else (args.tasks or [[0, 1, 2, 3, 4],
                                                                                       [5, 6, 7, 8, 9]])
    same_model = {}
    for spec in args.models:
        problem = parse_variant(spec).problem(args.hidden)
        if problem:
            parser.error(f"argument --models: {spec!r}: {problem}")
        key = resolved_settings(parse_variant(spec), args.hidden)
        if key in same_model:
            parser.error(f"argument --models: {spec!r} and {same_model[key]!r} are the same model at --hidden "
                         f"{args.hidden}; give distinct variants")
        same_model[key] = spec
        if problem := method_problem(parse_variant(spec), args):
            parser.error(f"argument --models: {spec!r}: {problem}")
        if args.normalize and parse_variant(spec).sleep:
            parser.error(f"argument --normalize: {spec!r} sleeps, and its spiking phase reads pixels as firing "
                         "rates in [0, 1]: leave --normalize out")
    if args.joint and args.momentum_carry:
        if "momentum_carry" in given_flags(parser, argv or []):
            parser.error("argument --momentum-carry: not allowed with --joint (one phase: nothing to carry)")
        args.momentum_carry = False             # a recipe's carry means nothing for a single phase
    if problem := optimizer_problem(parser, args, sys.argv[1:] if argv is None else argv):
        parser.error(problem)
    if not args.run_dir and (problem := headline_seed_problem(vars(args))):
        parser.error(f"argument --headline-seed: {problem}")
    if args.n_train_first and args.n_train_per_class:
        parser.error("argument --n-train-first: not allowed with --n-train-per-class (one subsample or the other)")
    if args.n_train_first and args.val_per_class:
        parser.error("argument --val-per-class: not available with --n-train-first (validation images are drawn "
                     "beside a balanced subsample; use --n-train-per-class)")
    if args.n_train_first:
        return finish_config(args)
    args.n_train_per_class = args.n_train_per_class or 500
    counts = DATASETS[args.dataset].train_class_counts
    most = min(counts[c] for group in args.tasks for c in group)
    if args.n_train_per_class > most:
        parser.error(f"argument --n-train-per-class: at most {most} for these classes of {args.dataset}, "
                     f"got {args.n_train_per_class}")
    if args.n_train_per_class + args.val_per_class > most:
        parser.error(f"argument --val-per-class: with --n-train-per-class {args.n_train_per_class}, at most "
                     f"{most - args.n_train_per_class} for these classes of {args.dataset}, got {args.val_per_class}")
    return finish_config(args)


def finish_config(args) -> tuple:
    """The config dict: --out and --snapshots resolved (no files at all for a run folder without --out),
    the headline seed resolved to the first seed by default."""
    if args.out is None and not args.run_dir:
        args.out = "results.json"
    if args.out is not None and args.snapshots is None:
        args.snapshots = "viz/snapshots.npz"
    if args.headline_seed is None:
        args.headline_seed = args.seed
    config = vars(args)
    config.pop("aggregate")                     # a flag of its own command (aggregate_main)
    config["variants"] = {spec: parse_variant(spec).settings() for spec in args.models}
    return config, config.pop("quiet")


def headline_of(runs: list) -> dict:
    """The seed whose curves the figures draw: the first seed evaluated after every epoch."""
    found = next((r for r in runs if "curves" in r and len(r["curves"]) == len(r["summary"])), None)
    if found is None:
        raise OutputError(f"no seed of {[r['seed'] for r in runs]} was evaluated after every epoch, so there are no "
                          "curves to draw; run the headline seed's jobs (--headline-seed) before aggregating")
    return found


PATH_FLAGS = {"--out": 1, "--snapshots": 1, "--run-dir": 1, "--data-dir": 1, "--aggregate": -1}  # -1: all that follow
PATH_KEYS = ("out", "snapshots", "run_dir", "data_dir")


def in_repository(path: str) -> str:
    """A path as the outputs record it: relative to the repository when it lies inside it (so committed
    outputs name no machine's folders), else as given."""
    p = Path(path).resolve()
    return str(p.relative_to(HERE)) if p.is_relative_to(HERE) else path


def recorded_command(argv: list) -> list:
    """The command line as the outputs record it: every path flag's value through in_repository."""
    out, paths = [], 0                          # paths: how many tokens to come are paths (-1: until a flag)
    for token in argv:
        name, eq, value = token.partition("=")
        if token.startswith("--"):
            paths = 0 if eq else PATH_FLAGS.get(name, 0)
            out.append(f"{name}={in_repository(value)}" if eq and name in PATH_FLAGS else token)
        elif paths:
            out.append(in_repository(token))
            paths = -1 if paths == -1 else paths - 1
        else:
            out.append(token)
    return out


def report(config: dict, runs: list, tasks: list, env: dict, timings: dict, argv: list, out: Path,
           snapshots: Path) -> int:
    """Write results.json and the snapshots together, print the tables. Exit 3 if any run failed."""
    t0 = time.perf_counter()
    headline = headline_of(runs)
    shown = {**config, **{k: in_repository(config[k]) for k in PATH_KEYS if config.get(k)}}   # as recorded
    arrays = snapshot_arrays(headline, shown, tasks)
    where = {json.dumps(p, sort_keys=True) for r in runs for p in r.get("computed_at", {}).values()}
    env = {**env, "jobs_computed_at": [json.loads(p) for p in sorted(where)]}     # each distinct one, once
    doc = results_document(shown, runs, tasks, env, timings, count_flops(config, tasks), recorded_command(argv))
    timings["output_s"] = time.perf_counter() - t0
    timings["total_s"] = timings.get("total_s", 0.0) + timings["output_s"]
    text = json.dumps(doc, indent=1, allow_nan=False)
    replaced = replaced_run(out, doc["command"])
    write_together({snapshots: npz_writer(arrays), out: lambda f: f.write(text.encode())})
    scenario = "joint training (upper bound), " if config["joint"] else ""
    print(f"\nseed {headline['seed']}: {scenario}{config['scenario']}-incremental, {len(tasks)} tasks, "
          f"{config['dataset']}")
    print_table(headline, config, tasks)
    if doc["aggregate"]:
        print_aggregate(doc["aggregate"], len(runs))
    print_validation(runs, config)
    print(f"\nwrote {out} and {snapshots} in {timings['total_s']:.2f} s "
          f"({doc['flops']['total'] / 1e9:.0f} GFLOP of matrix products)")
    if replaced:
        print(f"note: {out} held the results of another command, `{replaced}`, now replaced "
              "(in a clone, `git checkout -- results.json viz/` brings the committed ones back)")
    failed = [(r["seed"], v, s["failed"]) for r in runs for v, s in r["summary"].items() if s["failed"]]
    if failed:
        print(f"warning: {len(failed)} run(s) failed (counted in the statistics at what they scored, chance "
              "after a divergence): " + "; ".join(f"{v} seed {s} {f['reason']}" for s, v, f in failed), file=sys.stderr)
        return 3
    return 0


def replaced_run(out: Path, command: list) -> str | None:
    """The command whose results an output file held, if another than this one (read before it is replaced)."""
    try:
        held = json.loads(out.read_text()).get("command")
    except (OSError, ValueError, AttributeError):
        return None
    return " ".join(map(str, held)) if isinstance(held, list) and held != command else None


def job_timings(runs: list, models: list) -> dict:
    """Training and evaluation time per variant, summed over seeds (job times: they overlap in parallel)."""
    return {key: {v: sum(r["timings"][v][key] for r in runs) for v in models} for key in ("train_s", "eval_s")}


def folder_config(settings: dict, runs: list, out: Path, snapshots: Path, run_dir: str | None,
                  recipe: str | None = None) -> dict:
    """The config of a results file made from run folders: their settings and the seeds they hold (and
    the recipe named on the command line, which a folder does not record: its flags are in the settings)."""
    return {**settings, "seed": headline_of(runs)["seed"], "n_seeds": len(runs), "workers": None,
            "out": str(out), "snapshots": str(snapshots), "data_dir": None, "run_dir": run_dir, "recipe": recipe}


RUN_FOLDER_FILE = re.compile(r"seed\d{5}_.+\.(json|npz|ckpt)")


def check_outputs(out: Path, snapshots: Path, *run_dirs) -> None:
    """Before any work: both outputs can be written, are different files, and are not files a run folder
    keeps for itself (its settings file, a job's files), which would destroy the folder."""
    for path, flag in ((out, "--out"), (snapshots, "--snapshots")):
        for folder in run_dirs:
            if folder and path.resolve().parent == Path(folder).resolve() and (
                    path.name == RUN_FILE or RUN_FOLDER_FILE.fullmatch(path.name)):
                raise OutputError(f"{path}: {flag} would overwrite the run folder's own {path.name}; write the "
                                  "results elsewhere (e.g. beside the folder)")
        check_output_path(path)
    if out.resolve() == snapshots.resolve():
        raise OutputError(f"{out}: --out and --snapshots name the same file")


def job_provenance(env: dict) -> dict:
    """What each job records of where it was computed (an aggregate of job files lists these)."""
    return {k: env.get(k) for k in ("git_commit", "git_dirty", "numpy")}


def print_jobs(results: list, folder: Path, epochs: int) -> int:
    """One line per job of a run-folder command without a results file. Exit 3 if any failed."""
    for r in sorted(results, key=lambda r: (r["seed"], r["variant"])):
        s = r["summary"]
        text = (f"ACC {fmt(s.get('acc'))}, forgetting {fmt(s.get('forgetting'))}"
                + (f"; {failure_text(s['failed'], epochs)}" if s["failed"] else ""))
        print(f"seed {r['seed']} {r['variant']}: {text}")
    print(f"saved in {folder}; python compete_to_compute.py --aggregate {folder} writes the aggregate")
    return 3 if any(r["summary"]["failed"] for r in results) else 0


def more_seeds_note(config: dict, runs: list, folder: Path, out: Path) -> str | None:
    """One line when the aggregate of a run folder holds seeds this command did not run."""
    asked = range(config["seed"], config["seed"] + config["n_seeds"])
    extra = [r["seed"] for r in runs if r["seed"] not in asked]
    if not extra:
        return None
    listed = ", ".join(map(str, extra[:8])) + (", ..." if len(extra) > 8 else "")
    ran = seed_range(config["seed"], config["n_seeds"])
    return (f"note: {out} aggregates all {len(runs)} seeds {folder} holds: the {ran} this command ran and "
            f"{len(extra)} more ({listed}); give another --run-dir for these alone")


CORE_PEAK_FLOPS = 102e9            # one core's float32 GEMM peak here, as measured (benchmarks/README.md)
CORE_FLOPS = 60e9                  # what a whole job typically reaches per core here: 78 at 2 x 2048 units


def plan_text(config: dict) -> str:
    """--dry-run: what the command would run, and how long it would take on this machine's cores: at least
    its matrix products at peak, and about that at the rate whole jobs typically reach."""
    flops = count_flops(config, task_table(config))["total"]
    jobs = config["n_seeds"] * len(config["models"])
    cores = min(config["workers"], jobs)
    return (f"dry run: {jobs} job(s) ({config['n_seeds']} seed(s) x {len(config['models'])} variant(s)), "
            f"{flops / 1e12:.2f} TFLOP of matrix products: at least {flops / (CORE_PEAK_FLOPS * cores) / 60:.1f} "
            f"min on {cores} core(s) at their peak ({CORE_PEAK_FLOPS / 1e9:.0f} GFLOP/s each), about "
            f"{flops / (CORE_FLOPS * cores) / 60:.1f} min at the {CORE_FLOPS / 1e9:.0f} GFLOP/s whole jobs "
            "typically reach (benchmarks/README.md); nothing was run")


def run_main(argv: list) -> int:
    config, quiet = parse_config(argv)
    problem = memory_problem(config, available_memory())
    if problem:
        print(f"compete_to_compute.py: error: {problem}", file=sys.stderr)
        return 2
    for note in dict.fromkeys(parse_variant(v).layers(config["hidden"], 1)[0].caveat(config)
                              for v in config["models"]):
        if note:
            print(f"note: {note}", file=sys.stderr)
    if config["dry_run"]:
        print(plan_text(config))
        return 0
    env = environment()
    if config["out"] is None:                   # a run-folder job: only the job files
        store = RunDir(Path(config["run_dir"]), config)
        return print_jobs(run_jobs(config, not quiet, store, job_provenance(env)), store.path, config["epochs"])
    out, snapshots = Path(config["out"]), Path(config["snapshots"])
    if config["run_dir"] and (problem := headline_seed_problem(config, Path(config["run_dir"]))):
        print(f"compete_to_compute.py: error: argument --headline-seed: {problem}", file=sys.stderr)
        return 2
    check_outputs(out, snapshots, config["run_dir"])
    t_start = time.perf_counter()
    tasks = task_table(config)
    store = RunDir(Path(config["run_dir"]), config) if config["run_dir"] else None
    t_loaded = time.perf_counter()
    results = run_jobs(config, not quiet, store, job_provenance(env))
    t_trained = time.perf_counter()
    if store:                                   # results.json is the aggregate of the whole folder
        results, missing = complete_seeds(store.results(), config["models"])
        if missing:
            print(f"{store.path}: seeds {missing} lack some variants and are left out", file=sys.stderr)
    runs = group_by_seed(results, config["models"])
    if store and (note := more_seeds_note(config, runs, store.path, out)):
        print(note, file=sys.stderr)
    if store:
        config = folder_config(experiment_settings(config), runs, out, snapshots, config["run_dir"], config["recipe"])
    timings = {"data_load_s": t_loaded - t_start, "experiment_s": t_trained - t_loaded,
               **job_timings(runs, config["models"]), "total_s": t_trained - t_start}
    return report(config, runs, tasks, env, timings, argv, out, snapshots)


def aggregate_main(argv: list) -> int:
    """--aggregate DIR [DIR ...]: merge run folders of one configuration into results.json, no training."""
    p = Parser(prog="compete_to_compute.py", allow_abbrev=False,
                                description="Merge run folders written by separate processes or machines.")
    p.add_argument("--aggregate", nargs="+", metavar="DIR", required=True,
                   help="run folders of one configuration (written with --run-dir)")
    p.add_argument("--out", default="results.json", help="results file, JSON (default %(default)s)")
    p.add_argument("--snapshots", default="viz/snapshots.npz", help="snapshot file (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="accepted for symmetry; nothing is trained")
    args = p.parse_args(argv)
    env = environment()
    out, snapshots = Path(args.out), Path(args.snapshots)
    check_outputs(out, snapshots, *args.aggregate)
    stores = [RunDir(Path(d)) for d in args.aggregate]
    for other in stores[1:]:
        stores[0].require(other.settings, f"in {other.path}")
    settings = stores[0].settings
    jobs = {(r["seed"], r["variant"]): r for store in reversed(stores) for r in store.results()}
    results, missing = complete_seeds(list(jobs.values()), settings["models"])
    if not results:
        raise OutputError(f"{', '.join(args.aggregate)}: no seed has every variant finished")
    if missing:
        print(f"seeds {missing} lack some variants and are left out", file=sys.stderr)
    runs = group_by_seed(results, settings["models"])
    config = folder_config(settings, runs, out, snapshots, None)
    return report(config, runs, stores[0].tasks, env, job_timings(runs, settings["models"]), argv, out, snapshots)


def named_outputs(argv: list) -> str:
    """What became of the output files a command line names (for messages written before or without
    parsing it)."""
    def value(flag: str, default: str | None) -> str | None:
        for i, token in enumerate(argv):
            if token == flag and i + 1 < len(argv):
                return argv[i + 1]
            if token.startswith(flag + "="):
                return token.split("=", 1)[1]
        return default
    out = value("--out", None if value("--run-dir", None) else "results.json")
    snapshots = value("--snapshots", "viz/snapshots.npz")
    return f"{out} and {snapshots} were not written (earlier ones are untouched)" if out else "no results file was due"


class Interrupted(Exception):
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.code = 128 + signum


INTERRUPTED = threading.Event()    # a signal has arrived in this call of main


def _raise_interrupted(signum, frame):
    """The first signal stops the command; another while it stops (a study passing on the Ctrl-C this
    process also got from the terminal) is ignored, so the stop is not itself interrupted."""
    if INTERRUPTED.is_set():
        return
    INTERRUPTED.set()
    STOP.set()
    if WRITING:                                 # files being written: they finish first (signals_held)
        WRITING[-1] = signum
        return
    raise Interrupted(signum)


def main(argv: list | None = None) -> int:
    """Run (or with --aggregate, merge) and report. Exit 0 ok, 1 data/output error, 2 bad flag (or a run folder
    of other settings), 3 a run failed, 130/143 interrupted."""
    argv = list(sys.argv[1:] if argv is None else argv)
    INTERRUPTED.clear()
    old_handlers = {s: signal.signal(s, _raise_interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = aggregate_main(argv) if "--aggregate" in argv else run_main(argv)
        stop_resource_tracker()                 # (after an interruption it exits with the interpreter)
        return code
    except SettingsMismatch as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (DataError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except MemoryError:                         # past the estimate: still one line, no traceback
        print("error: ran out of memory; make the run smaller (--hidden, --permuted, --n-train-per-class) or "
              "lower --workers", file=sys.stderr)
        return 1
    except (Interrupted, KeyboardInterrupt) as e:
        sig = e if isinstance(e, Interrupted) else Interrupted(signal.SIGINT)
        print(f"interrupted by {sig}: stopped; {named_outputs(argv)}; a --run-dir keeps every finished job",
              file=sys.stderr)
        return sig.code
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)


if __name__ == "__main__":
    sys.exit(main())
