"""Compete to Compute in numpy: does local competition between hidden units reduce forgetting?

Srivastava et al. (NIPS 2013) trained networks of locally competing units (LWTA) on one task, then
another, and found they forget the first task less than ReLU networks. This file reproduces that
experiment at laptop scale and adds k-winners-take-all (Top-K) networks:

    Task 1 = MNIST digits 0-4, Task 2 = digits 5-9, trained one after the other.
    ReLU, LWTA and Top-K MLPs share everything (initial weights, minibatch order, optimiser) except
    the hidden activation, so each seed gives a paired comparison.
    A multi-head output mask keeps forgetting a property of the hidden layers, not of the softmax.

    python compete_to_compute.py --seed 0               # headline run, writes results.json + viz/
    python compete_to_compute.py --seed 0 --n-seeds 10  # paired statistics over 10 seeds

The file reads top to bottom: data, tasks, models, training, experiment, statistics, output, CLI.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import multiprocessing
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

# Every matrix product runs on one BLAS thread. A multi-threaded BLAS splits products differently
# with 1 and 2 threads and the last bits of the results change, so a seed's numbers would depend on
# how runs were spread over cores. Parallelism comes from running models (threads) and seeds
# (processes) side by side instead. This must happen before numpy is imported.
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
os.environ.update({v: "1" for v in BLAS_THREAD_VARS})

import numpy as np  # noqa: E402

SCHEMA_VERSION = 1
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
        train_class_counts=(5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist", env_var="FASHION_MNIST_DIR",
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"),
        train_class_counts=(6000,) * 10),
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
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] not in (1, 3):
        found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else "a file shorter than 4 bytes"
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
    """Compare the decompressed bytes with the pinned SHA-256 of this file."""
    actual = hashlib.sha256(raw).hexdigest()
    if actual != spec.sha256[name]:
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


def write_decoded_cache(cache: Path, arrays: dict) -> None:
    """Fill a temporary folder, then rename it into place: a cache folder is always complete.

    Best effort: a read-only home only costs the next run a re-decode, and a lost race with another
    process (or an interruption) leaves no temporary folder behind.
    """
    tmp = None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache.parent, prefix=f".{cache.name}."))
        for key, arr in arrays.items():
            np.save(tmp / f"{key}.npy", arr)
        os.rename(tmp, cache)
    except OSError:
        pass
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@lru_cache(maxsize=None)
def load_dataset(dataset: str, data_dir: str | None) -> dict:
    """The four arrays (uint8 images N x 784, uint8 labels), decoded once and cached decoded on disk.

    The first load finds (or downloads) the IDX files, parses and verifies them; later loads
    memory-map the decoded copy, which reads only the rows a run touches.
    """
    spec = DATASETS[dataset]
    folder = data_folder(dataset, data_dir)
    if (data_dir or os.environ.get(spec.env_var)) and not folder.is_dir():
        raise DataError(f"{folder}: data folder does not exist; create it with the four {spec.name} "
                        f"IDX files, or fix --data-dir / {spec.env_var}")
    sources = [find_idx_file(folder, n) or download_idx_file(folder, n, spec) for n in IDX_FILES]
    cache = decoded_cache_dir(sources, dataset)
    keys = ("train_images", "train_labels", "test_images", "test_labels")
    try:
        return {k: np.load(cache / f"{k}.npy", mmap_mode="r") for k in keys}
    except (OSError, ValueError):
        pass
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
@dataclass
class TaskData:
    """What one seed trains and tests on; labels are the classes themselves (0-9)."""
    heads: list                    # per task: bool (10,), its output units (the multi-head mask)
    x_train: list                  # per task: float32 (n, 784), balanced subsample
    y_train: list                  # per task: int (n,)
    x_test: list                   # per task: float32, every test image of the task's classes
    y_test: list


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1]."""
    return np.multiply(images, np.float32(1 / 255), dtype=np.float32)


def head_mask(classes: list) -> np.ndarray:
    """The output units a task may use: its own classes' logits."""
    head = np.zeros(10, dtype=bool)
    head[classes] = True
    return head


def balanced_subsample(labels: np.ndarray, classes: list, per_class: int, rng) -> np.ndarray:
    """Indices of `per_class` images of each class, drawn without replacement, sorted."""
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in classes]
    return np.sort(np.concatenate(picks))


@lru_cache(maxsize=None)
def test_split(dataset: str, data_dir: str | None, classes: tuple) -> tuple:
    """Every test image of the given classes, decoded to float32 once per process."""
    data = load_dataset(dataset, data_dir)
    labels = np.asarray(data["test_labels"])
    rows = np.flatnonzero(np.isin(labels, classes))
    return to_float(data["test_images"][rows]), labels[rows].astype(np.int64)


def make_tasks(config: dict, rng) -> TaskData:
    data = load_dataset(config["dataset"], config["data_dir"])
    labels = np.asarray(data["train_labels"])
    tasks = TaskData([], [], [], [], [])
    for classes in (config["task1_classes"], config["task2_classes"]):
        rows = balanced_subsample(labels, classes, config["n_train_per_class"], rng)
        x_test, y_test = test_split(config["dataset"], config["data_dir"], tuple(classes))
        tasks.heads.append(head_mask(classes))
        tasks.x_train.append(to_float(data["train_images"][rows]))
        tasks.y_train.append(labels[rows].astype(np.int64))
        tasks.x_test.append(x_test)
        tasks.y_test.append(y_test)
    return tasks


# ============================================================================ models
# Every hidden layer computes z = h W + b and passes z * mask, where the mask says which units fire.
# The gradient flows through exactly the units the mask lets through.

def relu_mask(z: np.ndarray, config: dict) -> np.ndarray:
    """Every unit with a positive pre-activation fires."""
    return z > 0


def lwta_mask(z: np.ndarray, config: dict) -> np.ndarray:
    """Local winner-take-all: in each block of k units only the largest passes (first one on ties).

    Block j holds units j, j+m, ..., j+(k-1)m with m = width/k. Units are exchangeable, so this is
    LWTA with a fixed relabelling of units; it lets the block max run on contiguous slabs.
    """
    k = config["k"]
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


def topk_mask(z: np.ndarray, config: dict) -> np.ndarray:
    """k-winners-take-all per sample: keep exactly the `topk` largest pre-activations.

    A threshold at the k-th largest value finds them; rows where ties at the threshold would keep
    more than k (rare with float inputs) are resolved exactly, lowest unit index first.
    """
    k, n = config["topk"], z.shape[1]
    kth = np.partition(z, n - k, axis=1)[:, n - k, None]
    mask = z >= kth
    tied = np.flatnonzero(np.count_nonzero(mask, axis=1) != k)
    if tied.size:
        order = np.argsort(-z[tied], axis=1, kind="stable")[:, :k]
        fixed = np.zeros((tied.size, n), dtype=bool)
        np.put_along_axis(fixed, order, True, axis=1)
        mask[tied] = fixed
    return mask


ACTIVATIONS = {"relu": relu_mask, "lwta": lwta_mask, "topk": topk_mask}


def init_params(config: dict, rng, n_in: int = 784, n_out: int = 10) -> list:
    """He-normal weights, zero biases: [W1, b1, W2, b2, ..., W_out, b_out], float32."""
    sizes = [n_in] + [config["hidden"]] * config["depth"] + [n_out]
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        params.append((rng.standard_normal((a, b)) * math.sqrt(2.0 / a)).astype(np.float32))
        params.append(np.zeros(b, dtype=np.float32))
    return params


@dataclass
class Model:
    """One MLP: its parameters, the optimiser state of the current task, and its bookkeeping."""
    name: str                      # the hidden activation: a key of ACTIVATIONS
    params: list
    config: dict
    velocity: list = field(default_factory=list)
    scratch: list = field(default_factory=list)
    decay: list = field(default_factory=list)
    diverged: dict | None = None
    train_s: float = 0.0
    eval_s: float = 0.0

    def mask(self, z):
        return ACTIVATIONS[self.name](z, self.config)

    def forward(self, x):
        """Logits plus what backward needs: each layer's input and each hidden mask."""
        inputs, masks, h = [x], [], x
        for W, b in zip(self.params[0:-2:2], self.params[1:-2:2]):
            z = h @ W
            z += b
            m = self.mask(z)
            z *= m
            masks.append(m)
            inputs.append(z)
            h = z
        return h @ self.params[-2] + self.params[-1], inputs, masks

    def backward(self, d_logits, inputs, masks):
        """Gradients [dW1, db1, ...] of the loss whose logit gradient is d_logits."""
        grads, g = [], d_logits
        for i in range(len(inputs) - 1, -1, -1):
            W = self.params[2 * i]
            grads[:0] = [inputs[i].T @ g, g.sum(axis=0)]
            if i > 0:
                g = g @ W.T
                g *= masks[i - 1]
        return grads


def masked_cross_entropy(logits, y, head):
    """Mean softmax cross-entropy over the active task's logits only (the multi-head mask).

    Logits outside the head are set to -inf: they get probability 0, so d loss / d logits, which is
    returned with the loss, is exactly zero on them.
    """
    z = np.where(head, logits, -np.inf)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    loss = float(np.mean(np.log(s[:, 0]) - z[rows, y]))
    e /= s
    e[rows, y] -= 1
    e /= len(y)
    return loss, e


# ============================================================================ training
def reset_optimizer(model: Model, head: np.ndarray, config: dict) -> None:
    """A fresh optimiser for a task: zero momentum, and weight decay on the output weights of this
    task's head only. With no gradient and no decay, the other head's weights do not move at all."""
    model.velocity = [np.zeros_like(p) for p in model.params]
    model.scratch = [np.empty_like(p) for p in model.params[0::2]]
    decay = np.float32(config["lr"] * config["weight_decay"])
    model.decay = [decay] * (len(model.params) // 2 - 1) + [np.where(head, decay, np.float32(0))]


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
            scratch = model.scratch[i // 2]
            np.multiply(p, model.decay[i // 2], out=scratch)
            u += scratch
        p -= u


def train_epoch(model: Model, xs, ys, head, config: dict, where: dict) -> float | None:
    """One pass over a task's data, already in this epoch's order (the same order for every model).

    A model whose loss or weights turn non-finite is marked diverged, with `where` it happened, and stops.
    Returns the mean training loss, or None once diverged.
    """
    t0 = time.perf_counter()
    size, total = config["batch_size"], 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for s in range(0, len(xs), size):
            xb, yb = xs[s:s + size], ys[s:s + size]
            logits, inputs, masks = model.forward(xb)
            loss, d_logits = masked_cross_entropy(logits, yb, head)
            if not math.isfinite(loss):
                model.diverged = dict(where)
                break
            d_logits *= config["lr"]
            sgd_step(model, model.backward(d_logits, inputs, masks), config)
            total += loss * len(yb)
    if not model.diverged and not all(np.isfinite(p).all() for p in model.params):
        model.diverged = dict(where)             # the epoch's last steps broke the weights
    model.train_s += time.perf_counter() - t0
    return None if model.diverged else total / len(xs)


def evaluate(model: Model, x, y, head, with_freq: bool = False, chunk: int = 1024):
    """Test accuracy on one task (its logits only) and, optionally, each hidden unit's firing rate.

    Chunks of ~1k rows keep the activations in cache; the GEMMs stay large enough to run near peak.
    """
    t0 = time.perf_counter()
    correct, counts = 0, None
    with np.errstate(over="ignore", invalid="ignore"):
        for s in range(0, len(x), chunk):
            logits, _, masks = model.forward(x[s:s + chunk])
            predicted = np.where(head, logits, -np.inf).argmax(axis=1)
            correct += int(np.count_nonzero(predicted == y[s:s + chunk]))
            if with_freq:
                layer_counts = [np.count_nonzero(m, axis=0) for m in masks]
                counts = layer_counts if counts is None else [a + b for a, b in zip(counts, layer_counts)]
    model.eval_s += time.perf_counter() - t0
    freq = [c / len(x) for c in counts] if with_freq else None
    return correct / len(x), freq


# ============================================================================ experiment
METRICS = ("t1_after_t1", "t1_after_t2", "forgetting", "t2_after_t2")


def seed_streams(seed: int) -> tuple:
    """Independent generators for initial weights, the training subsample and the minibatch order."""
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))


def summarize(acc: dict, freq: list | None, model: Model, config: dict) -> dict:
    """The per-model numbers a seed contributes: accuracies, forgetting, active fractions."""
    if model.diverged:
        return {"diverged": model.diverged}
    t1_before, t1_after, t2_after = acc[(config["epochs"], 0)], acc[(2 * config["epochs"], 0)], \
        acc[(2 * config["epochs"], 1)]
    out = {"t1_after_t1": t1_before, "t1_after_t2": t1_after, "forgetting": t1_before - t1_after,
           "t2_after_t2": t2_after, "diverged": None}
    for task in (0, 1):
        for layer, f in enumerate(freq[task], start=1):
            out[f"active_t{task + 1}_layer{layer}"] = float(f.mean())
    return out


def run_course(seed: int, name: str, config: dict, headline: bool, progress: bool = False) -> dict:
    """One model's whole course for one seed: Task 1 then Task 2, evaluated along the way.

    The models of a seed share its data subsample, initial weights and minibatch order (all drawn
    from the seed alone) and nothing else, so each model's course is an independent job.
    The headline seed is evaluated on both full test sets before training and after every epoch
    (the curves the figures draw); other seeds only where the statistics read: Task 1 at the end of
    Task 1, both tasks at the end.
    """
    init_rng, data_rng, order_rng = seed_streams(seed)
    tasks = make_tasks(config, data_rng)
    model = Model(name, init_params(config, init_rng), config)
    initial_W1 = model.params[0].copy() if headline else None
    epochs, last = config["epochs"], 2 * config["epochs"]
    orders = [[order_rng.permutation(len(x)) for _ in range(epochs)] for x in tasks.x_train]
    acc, freq = {}, [None, None]
    for point in range(last + 1):
        t = 0 if point <= epochs else 1
        if point > 0:
            if point in (1, epochs + 1):
                reset_optimizer(model, tasks.heads[t], config)
            perm = orders[t][(point - 1) % epochs]
            loss = train_epoch(model, tasks.x_train[t][perm], tasks.y_train[t][perm], tasks.heads[t],
                               config, {"task": t + 1, "epoch": point})
        wanted = (0, 1) if headline or point == last else (0,) if point == epochs else ()
        for task in wanted if not model.diverged else ():
            acc[(point, task)], freq[task] = evaluate(model, tasks.x_test[task], tasks.y_test[task],
                                                      tasks.heads[task], with_freq=point == last)
        if progress and headline and point > 0:
            state = (f"diverged in task {model.diverged['task']} epoch {model.diverged['epoch']}"
                     if model.diverged else f"loss {loss:.4f}  T1 {acc[(point, 0)]:.4f}  T2 {acc[(point, 1)]:.4f}")
            print(f"seed {seed}  task {t + 1}  epoch {point:>2}/{last}  {name:<5} {state}", flush=True)
    out = {"seed": seed, "model": name, "summary": summarize(acc, freq, model, config),
           "timings": {"train_s": model.train_s, "eval_s": model.eval_s}}
    if headline:
        out["schedule"] = {"epoch": list(range(last + 1)), "t1_acc": [acc.get((p, 0)) for p in range(last + 1)],
                           "t2_acc": [acc.get((p, 1)) for p in range(last + 1)]}
        out["units"] = {"W1": model.params[0], "W1_init": initial_W1, "freq": freq}
    return out


def _worker_init() -> None:
    """Workers ignore Ctrl-C: the parent catches it and terminates them all."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_run(job: tuple) -> dict:
    return run_course(*job)


def run_seeds(config: dict, progress: bool) -> list:
    """Every model of every seed, one job each, the headline seed's (the heaviest) first.

    One seed: its models run in threads in this process (the OS spreads them over the cores).
    Several seeds: --workers processes take jobs as they free up. Either way every product runs
    on one BLAS thread, so a job's numbers do not depend on where it ran.
    Returns one result per seed: {"seed", "summary", "timings"} (+ "schedule", "units" for the headline).
    """
    seeds = [config["seed"] + i for i in range(config["n_seeds"])]
    jobs = [(s, name, config, s == seeds[0], progress) for s in seeds for name in config["models"]]
    per_seed = {s: {"seed": s, "summary": {}, "timings": {}} for s in seeds}
    done = []

    def collect(r):
        seed = per_seed[r["seed"]]
        seed["summary"][r["model"]], seed["timings"][r["model"]] = r["summary"], r["timings"]
        if "schedule" in r:
            seed.setdefault("schedule", {})[r["model"]] = r["schedule"]
            seed.setdefault("units", {})[r["model"]] = r["units"]
        if len(seed["summary"]) == len(config["models"]):
            done.append(seed["seed"])
            if progress and len(seeds) > 1:
                parts = [f"{n} {seed['summary'][n]['forgetting']:.4f}" if not seed["summary"][n]["diverged"]
                         else f"{n} diverged" for n in config["models"]]
                print(f"seed {seed['seed']} done ({len(done)}/{len(seeds)}): forgetting " + ", ".join(parts),
                      flush=True)

    if len(seeds) == 1 or config["workers"] == 1:
        threads = len(jobs) if len(seeds) == 1 and config["workers"] > 1 else 1
        pool = ThreadPoolExecutor(threads)
        try:
            for r in pool.map(_worker_run, jobs):
                collect(r)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
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
    for seed in per_seed.values():                  # keep the models in --models order
        seed["summary"] = {n: seed["summary"][n] for n in config["models"]}
        seed["timings"] = {n: seed["timings"][n] for n in config["models"]}
    return [per_seed[s] for s in seeds]


def count_flops(config: dict, n_test: tuple) -> dict:
    """Matrix-multiply FLOPs of a run (elementwise work is not counted).

    Per training sample: forward 2*sum(a*b) over layers; backward the weight gradients of every
    layer plus the input gradients of every layer but the first. Evaluation is a forward pass per
    test image at each evaluation point (all points on the headline seed, two on the others).
    """
    sizes = [784] + [config["hidden"]] * config["depth"] + [10]
    macs = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    forward = 2 * sum(macs)
    backward = 2 * (sum(macs) + sum(macs[1:]))
    n_train = config["n_train_per_class"] * (len(config["task1_classes"]) + len(config["task2_classes"]))
    train = (forward + backward) * n_train * config["epochs"]
    eval_headline = forward * (n_test[0] + n_test[1]) * (2 * config["epochs"] + 1)
    eval_other = forward * (2 * n_test[0] + n_test[1])
    n_models, n_other = len(config["models"]), config["n_seeds"] - 1
    total_eval = n_models * (eval_headline + n_other * eval_other)
    total_train = n_models * config["n_seeds"] * train
    return {"train": total_train, "eval": total_eval, "total": total_train + total_eval,
            "per_model_headline": train + eval_headline, "per_model_other_seed": train + eval_other}


# ============================================================================ statistics
def t_critical_95(df: int) -> float:
    """Two-sided 95% critical value of Student's t with integer df.

    P(|T| <= t) has a closed form for integer df (Abramowitz & Stegun 26.7.3-4); bisection inverts it.
    """
    def mass(t):
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

    lo, hi = 0.0, 1000.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mass(mid) < 0.95 else (lo, mid)
    return (lo + hi) / 2


def describe(values: list) -> dict:
    """Mean, sample standard deviation and 95% t confidence interval of the mean."""
    n = len(values)
    mean = float(np.mean(values)) if n else None
    if n < 2:
        return {"n": n, "mean": mean, "std": None, "ci95": None}
    std = float(np.std(values, ddof=1))
    half = t_critical_95(n - 1) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci95": [mean - half, mean + half]}


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided sign test (ties dropped): probability of a split at least this uneven."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def aggregate(per_seed: list, models: list) -> dict:
    """Per model: every metric over the seeds that did not diverge. Per model against ReLU: the
    paired difference in forgetting (negative = forgets less), wins/ties/losses and the sign test."""
    out = {"models": {}, "paired_vs_relu": {}}
    for name in models:
        runs = [r["summary"][name] for r in per_seed if not r["summary"][name]["diverged"]]
        keys = [k for k in runs[0] if k != "diverged"] if runs else list(METRICS)
        out["models"][name] = {"n_seeds": len(runs), "n_diverged_left_out": len(per_seed) - len(runs),
                               **{k: describe([r[k] for r in runs]) for k in keys}}
    if "relu" not in models:
        return out
    for name in models:
        if name == "relu":
            continue
        pairs = [(r["summary"][name]["forgetting"], r["summary"]["relu"]["forgetting"]) for r in per_seed
                 if not r["summary"][name]["diverged"] and not r["summary"]["relu"]["diverged"]]
        diffs = [a - b for a, b in pairs]
        wins, losses = sum(d < 0 for d in diffs), sum(d > 0 for d in diffs)
        p = sign_test(wins, losses)
        out["paired_vs_relu"][name] = {
            "n_pairs": len(diffs), "forgetting_diff": describe(diffs), "wins": wins,
            "ties": len(diffs) - wins - losses, "losses": losses, "sign_test_p": p,
            "significant_at_0.05": p < 0.05}
    return out


# ============================================================================ output
class OutputError(Exception):
    """An output path that cannot be written."""


def check_writable(path: Path) -> None:
    """Create the folder and prove a file can be made there, before any training time is spent."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise OutputError(f"{path}: cannot write here ({e.strerror or e}); choose another path") from None


def write_atomic(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def environment() -> dict:
    blas = {}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:                            # older numpy: leave it unknown
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True,
                                timeout=5).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE,
                                    capture_output=True, text=True, timeout=5).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {"python": platform.python_version(), "numpy": np.__version__,
            "blas": {"name": blas.get("name"), "version": blas.get("version")},
            "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "git_commit": commit, "git_dirty": dirty}


def snapshot_arrays(headline: dict, config: dict) -> dict:
    """Everything the figure and GIF scripts draw, from the headline seed."""
    arrays = {"schema_version": np.array(SCHEMA_VERSION), "config_json": np.array(json.dumps(config)),
              "models": np.array(config["models"]), "epoch": np.arange(2 * config["epochs"] + 1),
              "summary_json": np.array(json.dumps(headline["summary"]))}
    with np.errstate(over="ignore"):
        arrays["W1_init"] = headline["units"][config["models"][0]]["W1_init"].astype(np.float16)
    for name in config["models"]:
        sched = headline["schedule"][name]
        for task in ("t1", "t2"):
            arrays[f"acc_{task}_{name}"] = np.array([np.nan if a is None else a for a in sched[f"{task}_acc"]])
        units = headline["units"][name]
        with np.errstate(over="ignore"):                 # a diverged model's weights may not fit
            arrays[f"W1_{name}"] = units["W1"].astype(np.float16)
        for t, per_layer in enumerate(units["freq"]):
            for layer, f in enumerate(per_layer or [], start=1):
                arrays[f"freq_t{t + 1}_{name}_layer{layer}"] = f.astype(np.float32)
    return arrays


class SnapshotError(Exception):
    """A snapshot file the figure scripts cannot use; the message says how to make a good one."""


def read_snapshots(path: Path) -> dict:
    """Load what snapshot_arrays wrote, checking it is whole and of this schema version."""
    fix = "make it with: python compete_to_compute.py --seed 0"
    if not path.is_file():
        raise SnapshotError(f"{path}: not found; {fix}")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        version = int(data["schema_version"])
        if version != SCHEMA_VERSION:
            raise SnapshotError(f"{path}: written with snapshot schema {version}, this code reads "
                                f"schema {SCHEMA_VERSION}; {fix}")
        data["config"] = json.loads(str(data.pop("config_json")))
        data["summary"] = json.loads(str(data.pop("summary_json")))
        data["models"] = [str(m) for m in data["models"]]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        raise SnapshotError(f"{path}: unreadable or truncated ({type(e).__name__}: {e}); {fix}") from None
    return data


def results_document(config: dict, runs: list, timings: dict, flops: dict, argv: list) -> dict:
    headline = runs[0]
    return {
        "schema_version": SCHEMA_VERSION,
        "command": ["python", "compete_to_compute.py", *argv],
        "config": config,
        "environment": environment(),
        "flops": flops,
        "timings": timings,
        "headline": {"seed": headline["seed"], "schedule": headline["schedule"],
                     "summary": headline["summary"]},
        "per_seed": [{"seed": r["seed"], "summary": r["summary"], "timings": r["timings"]} for r in runs],
        "aggregate": aggregate(runs, config["models"]) if len(runs) > 1 else None,
    }


def print_table(summary: dict, config: dict) -> None:
    layers = range(1, config["depth"] + 1)
    head = (f"{'model':<6}{'T1 after T1':>12}{'T1 after T2':>12}{'forgetting':>11}{'T2 after T2':>12}"
            + "".join(f"{f'active L{i} T1/T2':>18}" for i in layers))
    print(head)
    for name, s in summary.items():
        if s["diverged"]:
            print(f"{name:<6}  diverged (non-finite loss) in task {s['diverged']['task']}, "
                  f"epoch {s['diverged']['epoch']}")
            continue
        row = (f"{name:<6}{s['t1_after_t1']:>12.4f}{s['t1_after_t2']:>12.4f}{s['forgetting']:>11.4f}"
               f"{s['t2_after_t2']:>12.4f}")
        row += "".join(f"{s[f'active_t1_layer{i}']:>11.3f}/{s[f'active_t2_layer{i}']:.3f}" for i in layers)
        print(row)


def print_aggregate(agg: dict, n_seeds: int) -> None:
    print(f"\nover {n_seeds} seeds (mean ± std [95% CI]):")
    for name, m in agg["models"].items():
        left_out = f"  ({m['n_diverged_left_out']} diverged run(s) left out)" if m["n_diverged_left_out"] else ""
        parts = []
        for k in METRICS:
            d = m[k]
            if d["mean"] is None:
                parts.append(f"{k} n/a")
            elif d["std"] is None:
                parts.append(f"{k} {d['mean']:.4f}")
            else:
                parts.append(f"{k} {d['mean']:.4f} ± {d['std']:.4f} [{d['ci95'][0]:.4f}, {d['ci95'][1]:.4f}]")
        print(f"  {name:<5} " + "; ".join(parts) + left_out)
    if not agg["paired_vs_relu"]:
        print("  (no paired comparison: relu is not among --models)")
    for name, p in agg["paired_vs_relu"].items():
        d = p["forgetting_diff"]
        ci = f" [95% CI {d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]" if d["ci95"] else ""
        mean = f"{d['mean']:+.4f}" if d["mean"] is not None else "n/a"
        verdict = ("significant at 0.05" if p["significant_at_0.05"]
                   else "no significant difference at 0.05")
        print(f"  {name} - relu forgetting: {mean}{ci} over {p['n_pairs']} paired seeds; "
              f"{name} forgets less on {p['wins']}, ties {p['ties']}, more on {p['losses']}; "
              f"sign test p = {p['sign_test_p']:.3g}: {verdict}")


# ============================================================================ command line
def positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {s!r}")
    return v


def nonnegative_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {s!r}")
    return v


def float_in(lo: float, hi: float, lo_open: bool, hi_open: bool, what: str):
    def parse(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {s!r}") from None
        if not (math.isfinite(v) and (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)):
            raise argparse.ArgumentTypeError(f"must be {what}, got {s!r}")
        return v
    return parse


def class_list(s: str) -> list:
    try:
        classes = [int(c) for c in s.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated digits 0-9, e.g. 0,1,2,3,4; got {s!r}") \
            from None
    if not all(0 <= c <= 9 for c in classes) or len(set(classes)) != len(classes):
        raise argparse.ArgumentTypeError(f"must be distinct digits 0-9, e.g. 0,1,2,3,4; got {s!r}")
    return classes


def model_list(s: str) -> list:
    names = [n.strip() for n in s.split(",")]
    bad = [n for n in names if n not in ACTIVATIONS]
    if bad or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"must be distinct names from {','.join(ACTIVATIONS)}; got {s!r}")
    return names


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="ReLU vs LWTA vs Top-K MLPs trained on Task 1 then Task 2: how much of Task 1 is forgotten?")
    a = p.add_argument
    a("--seed", type=nonnegative_int, default=0, help="first seed: weights, subsample, minibatch order (default 0)")
    a("--n-seeds", type=positive_int, default=1, help="run seeds seed..seed+N-1 and aggregate them (default 1)")
    a("--workers", type=positive_int, default=default_workers(),
      help="parallel jobs, one model of one seed each: processes for several seeds, threads for one "
           "(default: all available cores, here %(default)s)")
    a("--models", type=model_list, default="relu,lwta,topk", help="hidden activations, comma-separated "
                                                                  "(default %(default)s)")
    a("--dataset", choices=sorted(DATASETS), default="mnist",
      help="dataset with the MNIST IDX layout (default %(default)s)")
    a("--data-dir", default=None,
      help="folder with the four IDX files (.gz or not); default $MNIST_DIR ($FASHION_MNIST_DIR), "
           "else ~/.cache/compete_to_compute/<dataset>, downloading what is missing")
    a("--task1-classes", type=class_list, default="0,1,2,3,4", help="classes of Task 1 (default %(default)s)")
    a("--task2-classes", type=class_list, default="5,6,7,8,9", help="classes of Task 2 (default %(default)s)")
    a("--n-train-per-class", type=positive_int, default=500,
      help="balanced training images per class (default %(default)s)")
    a("--hidden", type=positive_int, default=400, help="units per hidden layer (default %(default)s)")
    a("--depth", type=positive_int, default=2, help="number of hidden layers (default %(default)s)")
    a("--k", type=positive_int, default=2, help="LWTA block size: units competing in a block (default %(default)s)")
    a("--topk", type=positive_int, default=None, help="Top-K: units kept per sample (default 10%% of --hidden)")
    a("--epochs", type=positive_int, default=5, help="epochs on each task (default %(default)s)")
    a("--batch-size", type=positive_int, default=64, help="minibatch size (default %(default)s)")
    a("--lr", type=float_in(0, math.inf, True, True, "a positive number"), default=0.05,
      help="learning rate (default %(default)s)")
    a("--momentum", type=float_in(0, 1, False, True, "a number in [0, 1)"), default=0.9,
      help="SGD momentum (default %(default)s)")
    a("--weight-decay", type=float_in(0, math.inf, False, True, "a number >= 0"), default=1e-4,
      help="L2 weight decay on weights, not biases (default %(default)s)")
    a("--out", default="results.json", help="results file, JSON (default %(default)s)")
    a("--snapshots", default="viz/snapshots.npz", help="snapshot file read by the figure and GIF scripts "
                                                       "(default %(default)s)")
    a("--quiet", action="store_true", help="no per-epoch progress lines")
    return p


def parse_config(argv: list | None) -> tuple:
    """Parse and cross-check every flag; any problem exits with code 2 naming the flag.

    Returns the experiment's config (everything that can change a number) and the quiet flag.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.topk is None:
        args.topk = max(1, args.hidden // 10)
    if "lwta" in args.models and args.hidden % args.k:
        parser.error(f"argument --k: --hidden {args.hidden} is not divisible by --k {args.k}")
    if "lwta" in args.models and args.k < 2:
        parser.error("argument --k: LWTA needs at least 2 units per block, got 1")
    if "topk" in args.models and args.topk > args.hidden:
        parser.error(f"argument --topk: must be in 1..{args.hidden} (--hidden), got {args.topk}")
    if set(args.task1_classes) & set(args.task2_classes):
        parser.error(f"argument --task2-classes: overlaps --task1-classes in "
                     f"{sorted(set(args.task1_classes) & set(args.task2_classes))}; the tasks must be disjoint")
    counts = DATASETS[args.dataset].train_class_counts
    most = min(counts[c] for c in args.task1_classes + args.task2_classes)
    if args.n_train_per_class > most:
        parser.error(f"argument --n-train-per-class: at most {most} for these classes of {args.dataset}, "
                     f"got {args.n_train_per_class}")
    config = vars(args)
    return config, config.pop("quiet")


class Interrupted(Exception):
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.code = 128 + signum


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def main(argv: list | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    config, quiet = parse_config(argv)
    out, snapshots = Path(config["out"]), Path(config["snapshots"])
    old_handlers = {s: signal.signal(s, _raise_interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        check_writable(out)
        check_writable(snapshots)
        t_start = time.perf_counter()
        load_dataset(config["dataset"], config["data_dir"])
        n_test = tuple(len(test_split(config["dataset"], config["data_dir"], tuple(c))[1])
                       for c in (config["task1_classes"], config["task2_classes"]))
        t_loaded = time.perf_counter()
        runs = run_seeds(config, progress=not quiet)
        t_trained = time.perf_counter()
        timings = {"data_load_s": t_loaded - t_start, "experiment_s": t_trained - t_loaded,
                   "train_s": {n: sum(r["timings"][n]["train_s"] for r in runs) for n in config["models"]},
                   "eval_s": {n: sum(r["timings"][n]["eval_s"] for r in runs) for n in config["models"]}}
        arrays = snapshot_arrays(runs[0], config)
        write_atomic(snapshots, lambda f: np.savez_compressed(f, **arrays))
        timings["output_s"] = time.perf_counter() - t_trained
        timings["total_s"] = time.perf_counter() - t_start
        doc = results_document(config, runs, timings, count_flops(config, n_test), argv)
        text = json.dumps(doc, indent=1, allow_nan=False)
        write_atomic(out, lambda f: f.write(text.encode()))
    except (DataError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (Interrupted, KeyboardInterrupt) as e:
        sig = e if isinstance(e, Interrupted) else Interrupted(signal.SIGINT)
        print(f"interrupted by {sig}: stopped, nothing written (earlier outputs are untouched)", file=sys.stderr)
        return sig.code
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
    print()
    print(f"seed {runs[0]['seed']} ({config['dataset']}, {', '.join(config['models'])}):")
    print_table(runs[0]["summary"], config)
    if doc["aggregate"]:
        print_aggregate(doc["aggregate"], len(runs))
    print(f"\nwrote {out} and {snapshots} in {timings['total_s']:.2f} s "
          f"({doc['flops']['total'] / 1e9:.0f} GFLOP of matrix products)")
    diverged = [(r["seed"], n) for r in runs for n, s in r["summary"].items() if s["diverged"]]
    if diverged:
        print(f"warning: {len(diverged)} run(s) diverged: "
              + ", ".join(f"{n} seed {s}" for s, n in diverged), file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
