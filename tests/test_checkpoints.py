"""Checkpoints are data, never code (issue 26, item 24): every mechanism and method resumes bit for bit from
one, and a pickle (or anything else) planted where a checkpoint is expected runs nothing."""
import io
import pathlib
import pickle

import numpy as np
import pytest
from conftest import c, tiny_args, whole_and_resumed


def same(a, b) -> bool:
    """Equal, arrays element by element (NaN equal to NaN), nested dicts and lists alike."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b, equal_nan=np.asarray(a).dtype.kind == "f")
    return a == b or (a != a and b != b)


def config_of(synthetic, tmp_path, spec, *extra):
    return c.parse_config(tiny_args(tmp_path, synthetic, "--tasks", "01,23,45", "--models", spec, *extra))[0]


SDM = ["--depth", "1", "--lr", "0.5"]                      # settings at which each learns the toy tasks
SPECS = {"relu": [], "lwta:k=4": [], "maxout:k=2": [], "topk:k=25%": [], "sdm:k=8:gaba=20": SDM,
         "sdm:k=8:schedule=both:anneal=2:gaba=20": SDM,
         "kwinners:percent_on=0.25:boost_strength_factor=0.9": ["--lr", "0.1", "--momentum", "0"],
         "relu:dropout=0.2:dropout_in=0.1": [], "relu:sleep=1:sleep_iters=40": ["--loss", "mse"],
         "relu:ewc=5": [], "relu:ewc=5:ewc_online=1": [], "relu:si=0.5": [], "relu:l2=0.1": [], "relu:replay=5": [],
         "lwta:ewc=5:si=0.5:l2=0.1:replay=5": []}


@pytest.mark.robustness
@pytest.mark.parametrize("spec", SPECS)
def test_every_mechanism_and_method_resumes_bit_for_bit(spec, synthetic, tmp_path, monkeypatch):
    config = config_of(synthetic, tmp_path, spec, "--momentum-carry", *SPECS[spec])
    whole, resumed = whole_and_resumed(config, spec, 3, tmp_path / "job.ckpt", monkeypatch, headline=True)
    assert not whole["summary"]["failed"]
    whole.pop("timings"), resumed.pop("timings")
    assert same(resumed, whole)


@pytest.mark.robustness
def test_adam_resumes_bit_for_bit(synthetic, tmp_path, monkeypatch):
    config = config_of(synthetic, tmp_path, "topk:k=25%", "--optimizer", "adam", "--lr", "0.003")
    whole, resumed = whole_and_resumed(config, "topk:k=25%", 2, tmp_path / "job.ckpt", monkeypatch)
    whole.pop("timings"), resumed.pop("timings")
    assert same(resumed, whole) and not whole["summary"]["failed"]


@pytest.mark.robustness
def test_a_model_that_learned_nothing_trains_on_and_resumes_bit_for_bit(synthetic, tmp_path, monkeypatch):
    config = config_of(synthetic, tmp_path, "relu", "--lr", "1e-9")           # too small a rate to learn anything
    whole, resumed = whole_and_resumed(config, "relu", 3, tmp_path / "job.ckpt", monkeypatch)
    assert whole["summary"]["failed"]["reason"] == "learned nothing" and whole["summary"]["failed"]["task"] == 1
    assert None not in whole["summary"]["R"][-1]                            # every task measured to the end
    whole.pop("timings"), resumed.pop("timings")
    assert same(resumed, whole)


def test_a_checkpoint_is_arrays_and_json_with_shared_arrays_kept_shared(synthetic, tmp_path, monkeypatch):
    config = config_of(synthetic, tmp_path, "relu:si=0.5")
    ckpt = tmp_path / "job.ckpt"
    whole_and_resumed(config, "relu:si=0.5", 3, ckpt, monkeypatch)       # leaves the checkpoint of tasks 1-2
    with np.load(ckpt, allow_pickle=False) as z:
        assert all(z[name].dtype != object for name in z.files)
        doc = c.json.loads(str(z[c.CHECKPOINT_DOC]))
    si = doc["state"]["model"]["methods"][0]
    assert si["omega"][0] == si["terms"][0][0][0]           # one array, named once
    state = c.load_checkpoint(ckpt, doc["key"], lambda: (c.Model(c.parse_variant("relu:si=0.5"), config,
                                                                 c.seed_streams(0)), None))
    si = state["model"].methods[0]
    assert si.omega[0] is si.terms[0][0][0]                 # and shared again once loaded


def test_only_data_goes_into_a_checkpoint():
    arrays = {}
    for bad in (lambda: 0, {1: "a key that is not a string"}, {"__array__": "a reserved key"},
                np.array([None]), pathlib.Path("x")):
        with pytest.raises(TypeError, match="cannot go into a checkpoint"):
            c.encode_state({"x": bad}, arrays, {})
    rng = np.random.default_rng(5)
    rng.random(3)
    doc = c.encode_state({"rng": rng, "n": np.int64(3), "f": np.float32(0.1), "t": (1, None)}, arrays, {})
    back = c.decode_state(c.json.loads(c.json.dumps(doc)), arrays)
    assert back["rng"].random() == rng.random() and back["rng"] is not rng
    assert back["n"].dtype == np.int64 and back["f"] == np.float32(0.1) and back["f"].dtype == np.float32
    assert back["t"] == [1, None]


class Payload:
    """What a hostile pickle does when it is loaded: here, write a file."""
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.write_text, (self.marker, "ran")


def planted(kind: str, marker: pathlib.Path, key: dict) -> bytes:
    """A file planted where a checkpoint is expected, carrying code in one of several ways."""
    if kind == "pickle":                                    # the old checkpoint format
        return pickle.dumps({"version": 1, "key": key, "state": Payload(marker)})
    buf = io.BytesIO()
    if kind == "object array in an npz":                    # np.load would unpickle it if allowed to
        np.savez(buf, **{c.CHECKPOINT_DOC: np.array("{}"), "x": np.array([Payload(marker)], dtype=object)})
    else:                                                   # a generator named after a function
        doc = {"version": c.CHECKPOINT_VERSION, "key": key,
               "state": {"sleep_rng": {"__generator__": {"bit_generator": "system", "state": "touch x"}}}}
        np.savez(buf, **{c.CHECKPOINT_DOC: np.array(c.json.dumps(doc))})
    return buf.getvalue()


@pytest.mark.robustness
@pytest.mark.parametrize("kind", ["pickle", "object array in an npz", "a name in the JSON"])
def test_a_planted_file_where_a_checkpoint_is_expected_runs_nothing(kind, synthetic, tmp_path, capsys):
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(Payload(marker)))             # what loading it with pickle would do
    assert marker.read_text() == "ran"
    marker.unlink()
    config = config_of(synthetic, tmp_path, "relu")
    key = {"seed": 0, "variant": "relu", "headline": False,
           "settings": c.settings_digest(c.experiment_settings(config))}
    ckpt = tmp_path / "job.ckpt"
    ckpt.write_bytes(planted(kind, marker, key))
    whole = c.run_course(0, "relu", config, headline=False)
    capsys.readouterr()
    resumed = c.run_course(0, "relu", config, headline=False, checkpoint=ckpt)
    assert not marker.exists()                              # nothing ran
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"note: {ckpt}: not a checkpoint of this job" in err and "starts over" in err
    whole.pop("timings"), resumed.pop("timings")
    assert same(resumed, whole)                             # the job started over, with the same numbers


@pytest.mark.robustness
def test_a_planted_pickle_in_a_run_folder_runs_nothing(synthetic, tmp_path, capsys):
    folder = tmp_path / "runs"
    args = tiny_args(tmp_path, synthetic, "--models", "relu", "--run-dir", str(folder))
    marker = tmp_path / "pwned"
    folder.mkdir()
    (folder / "seed00000_relu.ckpt").write_bytes(pickle.dumps(Payload(marker)))
    assert c.main(args) == 0
    assert not marker.exists() and not (folder / "seed00000_relu.ckpt").exists()     # started over, finished
    assert "seed00000_relu.ckpt: not a checkpoint of this job" in capsys.readouterr().err
