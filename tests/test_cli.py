"""The command line: flag validation, whole runs, outputs, determinism, divergence, interruption."""
import json
import re
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import MNIST_DIR, ROOT, c, needs_mnist, tiny_args

BAD_FLAGS = [  # (arguments, flag the message must name, words saying what is allowed)
    (["--lr", "0"], "--lr", "positive number"), (["--lr", "-1"], "--lr", "positive number"),
    (["--lr", "abc"], "--lr", "positive number"), (["--lr", "nan"], "--lr", "positive number"),
    (["--lr", "inf"], "--lr", "positive number"), (["--momentum", "1"], "--momentum", "[0, 1)"),
    (["--momentum", "-0.1"], "--momentum", "[0, 1)"), (["--weight-decay", "-0.001"], "--weight-decay", ">= 0"),
    (["--epochs", "0"], "--epochs", "positive integer"), (["--epochs", "1.5"], "--epochs", "positive integer"),
    (["--batch-size", "0"], "--batch-size", "positive integer"), (["--hidden", "0"], "--hidden", "positive integer"),
    (["--depth", "0"], "--depth", "positive integer"), (["--n-seeds", "0"], "--n-seeds", "positive integer"),
    (["--workers", "0"], "--workers", "positive integer"), (["--seed", "-1"], "--seed", ">= 0"),
    (["--k", "3"], "--k", "not divisible"), (["--k", "1"], "--k", "at least 2"),
    (["--topk", "0"], "--topk", "positive integer"), (["--topk", "401"], "--topk", "1..400"),
    (["--task1-classes", ""], "--task1-classes", "digits 0-9"),
    (["--task1-classes", "0,0"], "--task1-classes", "distinct"),
    (["--task1-classes", "0,10"], "--task1-classes", "digits 0-9"),
    (["--task1-classes", "a,b"], "--task1-classes", "0-9"),
    (["--task2-classes", "4,5"], "--task2-classes", "disjoint"),
    (["--n-train-per-class", "5422"], "--n-train-per-class", "at most 5421"),
    (["--n-train-per-class", "0"], "--n-train-per-class", "positive integer"),
    (["--models", "relu,foo"], "--models", "relu,lwta,topk"), (["--models", "relu,relu"], "--models", "distinct"),
    (["--models", ""], "--models", "relu,lwta,topk"), (["--dataset", "cifar"], "--dataset", "choose from"),
    (["--bogus"], "--bogus", "unrecognized"),
]


@pytest.mark.robustness
@pytest.mark.parametrize("args,flag,allowed", BAD_FLAGS, ids=[" ".join(a) for a, _, _ in BAD_FLAGS])
def test_bad_flag_exits_2_naming_the_flag_before_reading_data(args, flag, allowed, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        c.main(["--data-dir", str(tmp_path / "absent"), "--out", str(tmp_path / "r.json"), *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and allowed in err and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.robustness
def test_fashion_mnist_bound_on_samples_per_class(capsys):
    with pytest.raises(SystemExit):
        c.main(["--dataset", "fashion-mnist", "--n-train-per-class", "6001"])
    assert "at most 6000" in capsys.readouterr().err


def test_help_documents_every_flag():
    for action in c.build_parser()._actions:
        assert action.help, action.dest


def strip_volatile(doc):
    return {k: v for k, v in doc.items() if k not in ("timings", "environment")} | {
        "per_seed": [{k: v for k, v in r.items() if k != "timings"} for r in doc["per_seed"]]}


def test_whole_run_writes_strict_json_and_snapshots(synthetic, tmp_path, capsys):
    assert c.main(tiny_args(tmp_path, synthetic, "--n-seeds", "3", "--workers", "1")) == 0
    out = capsys.readouterr().out
    assert "T1 after T1" in out and "sign test p" in out and "relu" in out and "topk" in out
    text = (tmp_path / "out" / "results.json").read_text()
    doc = json.loads(text, parse_constant=lambda s: pytest.fail(f"non-strict JSON constant {s}"))
    assert doc["schema_version"] == c.SCHEMA_VERSION
    assert doc["config"]["hidden"] == 32 and doc["config"]["models"] == ["relu", "lwta", "topk"]
    assert set(doc["environment"]) >= {"python", "numpy", "blas", "platform", "cpu_count", "git_commit"}
    assert set(doc["timings"]) >= {"data_load_s", "train_s", "eval_s", "output_s", "total_s"}
    assert [r["seed"] for r in doc["per_seed"]] == [0, 1, 2]
    assert doc["headline"]["schedule"]["lwta"]["epoch"] == [0, 1, 2, 3, 4]
    s = doc["headline"]["summary"]["relu"]
    assert s["forgetting"] == pytest.approx(s["t1_after_t1"] - s["t1_after_t2"])
    assert s["t1_after_t1"] == doc["headline"]["schedule"]["relu"]["t1_acc"][2]
    assert doc["headline"]["summary"]["lwta"]["active_t1_layer1"] == pytest.approx(0.5)
    assert doc["headline"]["summary"]["topk"]["active_t2_layer2"] == pytest.approx(4 / 32)
    assert doc["aggregate"]["paired_vs_relu"]["lwta"]["n_pairs"] == 3
    with np.load(tmp_path / "out" / "snapshots.npz") as z:
        assert int(z["schema_version"]) == c.SCHEMA_VERSION
        assert z["W1_topk"].shape == (784, 32)
        assert z["freq_t1_lwta_layer2"].shape == (32,)
        np.testing.assert_allclose(z["acc_t1_relu"], doc["headline"]["schedule"]["relu"]["t1_acc"])
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


@pytest.mark.robustness
def test_same_seed_twice_gives_identical_results(synthetic, tmp_path):
    docs, snaps = [], []
    for _ in range(2):
        assert c.main(tiny_args(tmp_path, synthetic, "--n-seeds", "2", "--workers", "1")) == 0
        docs.append(json.loads((tmp_path / "out" / "results.json").read_text()))
        with np.load(tmp_path / "out" / "snapshots.npz") as z:
            snaps.append({k: z[k] for k in z.files})
    assert strip_volatile(docs[0]) == strip_volatile(docs[1])
    assert snaps[0].keys() == snaps[1].keys()
    assert all(np.array_equal(snaps[0][k], snaps[1][k]) for k in snaps[0])


@pytest.mark.robustness
def test_divergence_is_reported_not_written_as_nan(synthetic, tmp_path, capsys):
    code = c.main(tiny_args(tmp_path, synthetic, "--lr", "1e4", "--n-seeds", "2", "--workers", "1"))
    assert code == 3
    captured = capsys.readouterr()
    assert "diverged" in captured.out and "diverged" in captured.err
    doc = json.loads((tmp_path / "out" / "results.json").read_text(),
                     parse_constant=lambda s: pytest.fail(f"non-strict JSON constant {s}"))
    for name, s in doc["headline"]["summary"].items():
        assert s["diverged"]["task"] in (1, 2) and 1 <= s["diverged"]["epoch"] <= 4
        assert "forgetting" not in s
    assert doc["aggregate"]["models"]["relu"]["n_diverged_left_out"] == 2


@pytest.mark.robustness
def test_one_model_diverging_leaves_the_others_running(synthetic, tmp_path, monkeypatch, capsys):
    task_starts = {"lwta": 0}
    real_reset, real_lwta = c.reset_optimizer, c.ACTIVATIONS["lwta"]

    def counting_reset(model, head, config):
        task_starts[model.name] = task_starts.get(model.name, 0) + 1
        real_reset(model, head, config)

    def exploding_lwta(z, config):              # LWTA's pre-activations blow up once Task 2 starts
        if task_starts["lwta"] == 2:
            z[:] = np.inf
        return real_lwta(z, config)
    monkeypatch.setattr(c, "reset_optimizer", counting_reset)
    monkeypatch.setitem(c.ACTIVATIONS, "lwta", exploding_lwta)
    assert c.main(tiny_args(tmp_path, synthetic, "--workers", "1")) == 3
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    summary = doc["headline"]["summary"]
    assert summary["lwta"]["diverged"] == {"task": 2, "epoch": summary["lwta"]["diverged"]["epoch"]}
    assert summary["relu"]["diverged"] is None and summary["topk"]["diverged"] is None
    lwta_t1 = doc["headline"]["schedule"]["lwta"]["t1_acc"]
    assert lwta_t1[-1] is None and lwta_t1[2] is not None
    assert re.search(r"lwta +diverged \(non-finite loss\) in task 2", capsys.readouterr().out)


@pytest.mark.robustness
def test_output_folder_is_created(synthetic, tmp_path):
    args = tiny_args(tmp_path, synthetic)
    args[args.index("--out") + 1] = str(tmp_path / "new" / "deeper" / "r.json")
    assert c.main(args) == 0
    assert (tmp_path / "new" / "deeper" / "r.json").is_file()


@pytest.mark.robustness
def test_unwritable_output_reported_before_training(synthetic, tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setattr(c, "run_seeds", lambda *a, **k: pytest.fail("training started before the output check"))
    args = tiny_args(tmp_path, synthetic)
    args[args.index("--snapshots") + 1] = str(blocker / "snap.npz")
    assert c.main(args) == 1
    err = capsys.readouterr().err
    assert "snap.npz: cannot write here" in err and err.count("\n") == 1


@pytest.mark.robustness
@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; covered by the file case above")
def test_read_only_output_folder_reported(synthetic, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    args = tiny_args(tmp_path, synthetic)
    args[args.index("--out") + 1] = str(ro / "r.json")
    assert c.main(args) == 1
    assert "cannot write here" in capsys.readouterr().err


@pytest.mark.robustness
def test_earlier_outputs_survive_a_failing_run(synthetic, tmp_path):
    args = tiny_args(tmp_path, synthetic)
    assert c.main(args) == 0
    before = (tmp_path / "out" / "results.json").read_bytes()
    (synthetic / "t10k-images-idx3-ubyte.gz").write_bytes(b"garbage")
    c.load_dataset.cache_clear()
    c.test_split.cache_clear()
    assert c.main(args) == 1
    assert (tmp_path / "out" / "results.json").read_bytes() == before


@needs_mnist
def test_real_mnist_one_epoch_task1_reaches_095_for_every_model():
    config = {"dataset": "mnist", "data_dir": MNIST_DIR, "task1_classes": [0, 1, 2, 3, 4],
              "task2_classes": [5, 6, 7, 8, 9], "n_train_per_class": 2000, "hidden": 400, "depth": 2,
              "k": 2, "topk": 40, "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4, "batch_size": 64}
    init_rng, data_rng, order_rng = c.seed_streams(0)
    tasks = c.make_tasks(config, data_rng)
    initial = c.init_params(config, init_rng)
    perm = order_rng.permutation(len(tasks.x_train[0]))
    for name in ("relu", "lwta", "topk"):
        model = c.Model(name, [p.copy() for p in initial], config)
        c.reset_optimizer(model, tasks.heads[0], config)
        c.train_epoch(model, tasks.x_train[0][perm], tasks.y_train[0][perm], tasks.heads[0], config, {})
        acc, _ = c.evaluate(model, tasks.x_test[0], tasks.y_test[0], tasks.heads[0])
        assert acc >= 0.95, f"{name}: Task 1 test accuracy {acc:.4f} after one epoch"


def run_cli(args, tmp_path, **kw):
    env = dict(os.environ, MNIST_DIR=MNIST_DIR or "", XDG_CACHE_HOME=os.environ["XDG_CACHE_HOME"])
    return subprocess.Popen([sys.executable, str(ROOT / "compete_to_compute.py"), *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.robustness
@needs_mnist
def test_workers_1_and_2_give_identical_per_seed_numbers(tmp_path):
    docs = []
    for w in ("1", "2"):
        p = run_cli(["--n-seeds", "2", "--workers", w, "--hidden", "64", "--topk", "8", "--epochs", "1",
                     "--n-train-per-class", "100", "--quiet", "--out", f"r{w}.json", "--snapshots", f"s{w}.npz"],
                    tmp_path)
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        docs.append(json.loads((tmp_path / f"r{w}.json").read_text()))
    for key in ("headline", "aggregate"):
        assert docs[0][key] == docs[1][key]
    assert [r["summary"] for r in docs[0]["per_seed"]] == [r["summary"] for r in docs[1]["per_seed"]]


def children_of(pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return kids


@pytest.mark.robustness
@needs_mnist
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_interrupt_exits_promptly_and_leaves_earlier_outputs(tmp_path, sig, code, workers):
    (tmp_path / "viz").mkdir()
    (tmp_path / "results.json").write_text('{"earlier": true}')
    (tmp_path / "viz" / "snapshots.npz").write_bytes(b"earlier")
    p = run_cli(["--n-seeds", "4", "--workers", workers], tmp_path)
    first = p.stdout.readline()                      # training has started once a progress line appears
    assert "epoch" in first
    kids = children_of(p.pid)
    assert len(kids) >= (2 if workers == "2" else 0)
    t0 = time.perf_counter()
    p.send_signal(sig)
    out, err = p.communicate(timeout=20)
    assert time.perf_counter() - t0 < 5
    assert p.returncode == code
    assert err.strip().count("\n") == 0 and "interrupted" in err and "Traceback" not in err
    assert (tmp_path / "results.json").read_text() == '{"earlier": true}'
    assert (tmp_path / "viz" / "snapshots.npz").read_bytes() == b"earlier"
    assert sorted(os.listdir(tmp_path)) == ["results.json", "viz"]
    assert os.listdir(tmp_path / "viz") == ["snapshots.npz"]
    deadline = time.time() + 5
    while time.time() < deadline and any(os.path.exists(f"/proc/{k}") for k in kids):
        time.sleep(0.1)
    assert not [k for k in kids if os.path.exists(f"/proc/{k}")], "worker processes left running"
