"""Shared fixtures. The module is imported first so that its one-BLAS-thread setting applies."""
import gzip
import hashlib
import os
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import compete_to_compute as c  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

def real_mnist_folder() -> str | None:
    """$MNIST_DIR, else the program's own download cache, if it holds the four MNIST files (read before the
    tests move the cache to a private folder)."""
    folder = c.data_folder("mnist", None).resolve()
    return str(folder) if all(c.find_idx_file(folder, n) for n in c.IDX_FILES) else None


MNIST_DIR = real_mnist_folder()
needs_mnist = pytest.mark.skipif(
    MNIST_DIR is None, reason="real MNIST not found: set MNIST_DIR to a folder with the four IDX files, or run "
                              "the program once to download them (CI uses ../shared/data/mnist)")


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """Keep the decoded-data cache of a test session out of the user's home."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


def idx_bytes(arr: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file (magic 0,0,8,ndim + big-endian sizes)."""
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def synthetic_arrays(per_class_train=40, per_class_test=12, seed=0):
    """A learnable toy MNIST: each class lights its own band of pixels, plus noise."""
    rng = np.random.default_rng(seed)

    def make(per_class):
        labels = np.repeat(np.arange(10), per_class)
        rng.shuffle(labels)
        images = rng.integers(0, 60, (len(labels), 28, 28))
        for i, lab in enumerate(labels):
            images[i, 2 * lab + 4: 2 * lab + 7, 4:24] = 250
        return images.astype(np.uint8), labels.astype(np.uint8)

    tr_x, tr_y = make(per_class_train)
    te_x, te_y = make(per_class_test)
    return dict(zip(c.IDX_FILES, (tr_x, tr_y, te_x, te_y)))


def write_dataset(folder: Path, arrays: dict, gz: bool = True) -> dict:
    """Write the four IDX files; return their SHA-256 (of the decompressed bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    digests = {}
    for name, arr in arrays.items():
        raw = idx_bytes(arr)
        digests[name] = hashlib.sha256(raw).hexdigest()
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return digests


@pytest.fixture
def synthetic(tmp_path, monkeypatch):
    """A tiny valid dataset in tmp_path/data, pinned as 'mnist' for the duration of the test."""
    arrays = synthetic_arrays()
    folder = tmp_path / "data"
    digests = write_dataset(folder, arrays)
    counts = tuple(int((arrays["train-labels-idx1-ubyte"] == k).sum()) for k in range(10))
    spec = replace(c.DATASETS["mnist"], sha256=digests, train_class_counts=counts,
                   mirrors=("http://127.0.0.1:9/",))
    monkeypatch.setitem(c.DATASETS, "mnist", spec)
    c.load_dataset.cache_clear()
    c.test_split.cache_clear()
    yield folder
    c.load_dataset.cache_clear()
    c.test_split.cache_clear()


def synthetic_program(folder: Path) -> Path:
    """folder/compete_to_compute.py: the program reading the `synthetic` fixture's data set as 'mnist', for tests
    that run it in processes of their own. Beside it, synthetic_pin.py, which any script there imports first
    to read that data set too (spawned worker processes run it again, as they import their parent's script)."""
    spec = c.DATASETS["mnist"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "synthetic_pin.py").write_text(
        "import sys\nfrom dataclasses import replace\n"
        f"sys.path.insert(0, {str(ROOT)!r})\nimport compete_to_compute as c  # noqa: E402\n"
        f"c.DATASETS['mnist'] = replace(c.DATASETS['mnist'], sha256={spec.sha256!r}, "
        f"train_class_counts={spec.train_class_counts!r}, mirrors=('http://127.0.0.1:9/',))\n")
    program = folder / "compete_to_compute.py"
    program.write_text("import sys\nimport synthetic_pin\n\nif __name__ == '__main__':\n"
                       "    sys.exit(synthetic_pin.c.main())\n")
    return program


TINY = ["--hidden", "32", "--epochs", "2", "--n-train-per-class", "30", "--quiet"]


def tiny_args(tmp_path, data_dir, *extra):
    """CLI arguments for a sub-second run on the synthetic data, outputs in tmp_path."""
    return ["--data-dir", str(data_dir), *TINY, "--out", str(tmp_path / "out" / "results.json"),
            "--snapshots", str(tmp_path / "out" / "snapshots.npz"), *extra]


def whole_and_resumed(config, spec, task, ckpt, monkeypatch, headline=False) -> tuple:
    """A job run whole, and the same job stopped at the start of `task` (its checkpoint then holds the
    tasks before) and run again from that checkpoint, which must go on from `task`: (whole, resumed)."""
    whole = c.run_course(0, spec, config, headline=headline)
    real_train = c.train_epoch

    def stop_in_task(model, xs, ys, heads, cfg, where):
        if where["task"] == task:
            raise c.Stopped
        return real_train(model, xs, ys, heads, cfg, where)

    monkeypatch.setattr(c, "train_epoch", stop_in_task)
    with pytest.raises(c.Stopped):
        c.run_course(0, spec, config, headline=headline, checkpoint=ckpt)
    assert ckpt.is_file()
    trained = []
    monkeypatch.setattr(c, "train_epoch", lambda *a: trained.append(a[-1]["task"]) or real_train(*a))
    resumed = c.run_course(0, spec, config, headline=headline, checkpoint=ckpt)
    monkeypatch.setattr(c, "train_epoch", real_train)
    assert min(trained) == task                 # the checkpoint was used: the tasks before were not trained again
    return whole, resumed


def pytest_terminal_summary(terminalreporter):
    """Say how many of the tests that guard bad input, faults and interruption ran and passed."""
    def count(outcome):
        return sum(1 for r in terminalreporter.stats.get(outcome, [])
                   if (outcome == "skipped" or r.when == "call") and "robustness" in r.keywords)
    terminalreporter.write_line(f"robustness (bad input, faults, interruption): {count('passed')} tests passed, "
                                f"{count('failed')} failed, {count('skipped')} skipped")
