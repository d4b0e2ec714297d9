"""The MNIST loader: IDX parsing, verification, download failures, the decoded cache."""
import gzip
import http.server
import threading
from dataclasses import replace

import numpy as np
import pytest
from conftest import c, idx_bytes, needs_mnist, synthetic_arrays, tiny_args, write_dataset


def test_idx_round_trip_gz_and_raw(tmp_path):
    arrays = synthetic_arrays(per_class_train=3, per_class_test=2)
    for gz in (True, False):
        folder = tmp_path / ("gz" if gz else "raw")
        write_dataset(folder, arrays, gz=gz)
        for name, arr in arrays.items():
            path = c.find_idx_file(folder, name)
            assert path.name == name + (".gz" if gz else "")
            decoded = c.parse_idx(c.read_idx_bytes(path), path)
            np.testing.assert_array_equal(decoded, arr)


def test_parse_idx_reads_shape_from_header_not_offsets():
    arr = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    assert c.parse_idx(idx_bytes(arr), "x").shape == (2, 3, 5)


@pytest.mark.robustness
def test_wrong_magic_names_file(tmp_path):
    raw = bytearray(idx_bytes(np.zeros((4, 2, 2), np.uint8)))
    raw[2] = 0x0D                                   # float32 type code instead of unsigned byte
    with pytest.raises(c.DataError, match=r"bad\.idx.*magic number 3331"):
        c.parse_idx(bytes(raw), tmp_path / "bad.idx")


@pytest.mark.robustness
def test_truncated_idx_names_file_and_sizes(tmp_path):
    raw = idx_bytes(np.zeros((4, 2, 2), np.uint8))[:-3]
    with pytest.raises(c.DataError, match=r"short\.idx.*shape \(4, 2, 2\).*truncated"):
        c.parse_idx(raw, tmp_path / "short.idx")


@pytest.mark.robustness
def test_truncated_gzip_names_file(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(100, np.uint8)))[:-20])
    with pytest.raises(c.DataError, match=r"t10k-labels-idx1-ubyte\.gz: not a complete gzip file"):
        c.read_idx_bytes(path)


@pytest.mark.robustness
def test_not_gzip_but_named_gz(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(idx_bytes(np.zeros(100, np.uint8)))
    with pytest.raises(c.DataError, match=r"t10k-labels-idx1-ubyte\.gz: not a complete gzip file"):
        c.read_idx_bytes(path)


def test_loader_returns_arrays_and_reuses_decoded_cache(synthetic):
    first = c.load_dataset("mnist", str(synthetic))
    assert first["train_images"].shape == (400, 784) and first["train_images"].dtype == np.uint8
    c.load_dataset.cache_clear()
    second = c.load_dataset("mnist", str(synthetic))
    assert isinstance(second["train_images"], np.memmap)
    np.testing.assert_array_equal(first["test_labels"], second["test_labels"])


@pytest.mark.robustness
def test_replaced_source_file_is_checked_again(synthetic):
    c.load_dataset("mnist", str(synthetic))
    c.load_dataset.cache_clear()
    path = synthetic / "t10k-labels-idx1-ubyte.gz"
    labels = np.asarray(synthetic_arrays()["t10k-labels-idx1-ubyte"]).copy()
    labels[0] = (labels[0] + 1) % 10
    path.write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(c.DataError) as e:
        c.load_dataset("mnist", str(synthetic))
    msg = str(e.value)
    assert "t10k-labels-idx1-ubyte.gz" in msg and c.DATASETS["mnist"].sha256["t10k-labels-idx1-ubyte"] in msg
    assert "re-download" in msg


@pytest.mark.robustness
def test_label_outside_0_9_rejected(synthetic):
    labels = synthetic_arrays()["train-labels-idx1-ubyte"].copy()
    labels[5] = 12
    (synthetic / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(c.DataError, match=r"train-labels-idx1-ubyte\.gz: label 12 found, labels must be 0-9"):
        c.load_dataset("mnist", str(synthetic))


@pytest.mark.robustness
def test_image_and_label_counts_must_agree(synthetic, monkeypatch):
    arrays = synthetic_arrays()
    arrays["t10k-labels-idx1-ubyte"] = arrays["t10k-labels-idx1-ubyte"][:-1]
    digests = write_dataset(synthetic, arrays)
    monkeypatch.setitem(c.DATASETS, "mnist", replace(c.DATASETS["mnist"], sha256=digests))
    with pytest.raises(c.DataError, match=r"test set has 120 images but 119 labels"):
        c.load_dataset("mnist", str(synthetic))


@pytest.mark.robustness
def test_missing_data_dir_is_named(tmp_path):
    with pytest.raises(c.DataError, match=r"nowhere: data folder does not exist"):
        c.load_dataset("mnist", str(tmp_path / "nowhere"))


@pytest.mark.robustness
def test_offline_download_fails_with_folder_and_fix(synthetic, tmp_path, capsys):
    (synthetic / "train-images-idx3-ubyte.gz").unlink()
    code = c.main(tiny_args(tmp_path, synthetic))
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert str(synthetic) in err and "could not be downloaded" in err and "127.0.0.1:9" in err
    assert "--data-dir" in err and "MNIST_DIR" in err
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.robustness
def test_valid_file_of_another_dataset_is_named_for_what_it_is(synthetic, tmp_path, capsys):
    # a folder holding MNIST, read as Fashion-MNIST: the files are valid, so never advise deleting them
    code = c.main(["--dataset", "fashion-mnist", *tiny_args(tmp_path, synthetic)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "a valid mnist file (train-images-idx3-ubyte), not fashion-mnist's train-images-idx3-ubyte" in err
    assert "run with --dataset mnist" in err and "delete" not in err


@pytest.mark.robustness
def test_valid_files_under_each_others_names_are_called_mixed_up(synthetic):
    a, b = synthetic / "train-labels-idx1-ubyte.gz", synthetic / "t10k-labels-idx1-ubyte.gz"
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    with pytest.raises(c.DataError) as e:
        c.load_dataset("mnist", str(synthetic))
    assert "a valid mnist file, but it is t10k-labels-idx1-ubyte, not train-labels-idx1-ubyte" in str(e.value)
    assert "delete" not in str(e.value)


class _HalfServer(http.server.BaseHTTPRequestHandler):
    """Promises a whole file, sends half, hangs up."""
    payload = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload[: len(self.payload) // 2])

    def log_message(self, *args):
        pass


@pytest.mark.robustness
def test_download_cut_half_way_leaves_no_partial_file(synthetic, monkeypatch):
    name = "train-images-idx3-ubyte"
    _HalfServer.payload = (synthetic / (name + ".gz")).read_bytes()
    (synthetic / (name + ".gz")).unlink()
    server = http.server.HTTPServer(("127.0.0.1", 0), _HalfServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spec = replace(c.DATASETS["mnist"], mirrors=(f"http://127.0.0.1:{server.server_port}/",))
        with pytest.raises(c.DataError, match="could not be downloaded"):
            c.download_idx_file(synthetic, name, spec)
    finally:
        server.shutdown()
    assert sorted(p.name for p in synthetic.iterdir()) == sorted(
        n + ".gz" for n in c.IDX_FILES if n != name)


def test_download_verifies_and_installs_file(synthetic, monkeypatch):
    name = "t10k-labels-idx1-ubyte"
    payload = (synthetic / (name + ".gz")).read_bytes()
    (synthetic / (name + ".gz")).unlink()

    class Whole(_HalfServer):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
    server = http.server.HTTPServer(("127.0.0.1", 0), Whole)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spec = replace(c.DATASETS["mnist"], mirrors=("http://127.0.0.1:9/", f"http://127.0.0.1:{server.server_port}/"))
        path = c.download_idx_file(synthetic, name, spec)
    finally:
        server.shutdown()
    assert path.read_bytes() == payload


@needs_mnist
def test_real_mnist_shapes_and_test_counts():
    data = c.load_dataset("mnist", None)
    assert data["train_images"].shape == (60000, 784) and data["test_images"].shape == (10000, 784)
    assert list(np.asarray(data["train_labels"][:6])) == [5, 0, 4, 1, 9, 2]
    counts = np.bincount(np.asarray(data["train_labels"]), minlength=10)
    assert tuple(counts) == c.DATASETS["mnist"].train_class_counts
    assert len(c.test_split("mnist", None, (0, 1, 2, 3, 4))[1]) == 5139
    assert len(c.test_split("mnist", None, (5, 6, 7, 8, 9))[1]) == 4861


def _replace(folder, name, raw_bytes, gz=True):
    (folder / (name + ".gz")).write_bytes(gzip.compress(raw_bytes) if gz else raw_bytes)


def _bad_labels(folder):
    labels = synthetic_arrays()["train-labels-idx1-ubyte"].copy()
    labels[3] = 11
    _replace(folder, "train-labels-idx1-ubyte", idx_bytes(labels))


DATA_FAULTS = {  # fault -> (how to make it, what the one-line message must say)
    "truncated gz": (lambda f: (f / "t10k-images-idx3-ubyte.gz").write_bytes(
        (f / "t10k-images-idx3-ubyte.gz").read_bytes()[:500]), ["t10k-images-idx3-ubyte.gz", "not a complete gzip",
                                                                 "re-download"]),
    "not gzip but .gz": (lambda f: _replace(f, "t10k-labels-idx1-ubyte", b"plain text", gz=False),
                         ["t10k-labels-idx1-ubyte.gz", "not a complete gzip", "replace it"]),
    "wrong magic": (lambda f: _replace(f, "train-labels-idx1-ubyte", b"\x00\x00\x0d\x01" + bytes(8)),
                    ["train-labels-idx1-ubyte.gz", "magic number 3329", "expected 2049", "replace"]),
    "label outside 0-9": (_bad_labels, ["train-labels-idx1-ubyte.gz", "label 11", "0-9", "replace"]),
    "digest mismatch": (lambda f: _replace(f, "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(120, np.uint8))),
                        ["t10k-labels-idx1-ubyte.gz", "SHA-256", "expected", "re-download"]),
    "missing file offline": (lambda f: (f / "train-images-idx3-ubyte.gz").unlink(),
                             ["train-images-idx3-ubyte", "could not be downloaded", "--data-dir"]),
    "missing folder": (lambda f: [p.unlink() for p in f.iterdir()] and f.rmdir(),
                       ["data folder does not exist", "--data-dir"]),
}


@pytest.mark.robustness
@pytest.mark.parametrize("fault", list(DATA_FAULTS))
def test_data_fault_exits_1_with_file_fact_and_fix(fault, synthetic, tmp_path, capsys):
    make, phrases = DATA_FAULTS[fault]
    make(synthetic)
    assert c.main(tiny_args(tmp_path, synthetic)) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    for phrase in phrases:
        assert phrase in err, (phrase, err)
    assert not (tmp_path / "out" / "results.json").exists()
