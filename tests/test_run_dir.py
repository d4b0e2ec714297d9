"""Run folders: jobs saved as they finish, resume, refusal of mixed settings, merging, interruption."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import MNIST_DIR, ROOT, c, needs_mnist, synthetic_program, tiny_args


def results(path):
    doc = json.loads(path.read_text())
    return doc["per_seed"], doc["aggregate"], doc["headline"]


def summaries(per_seed):
    return [(r["seed"], r["summary"]) for r in per_seed]


def test_disjoint_seeds_in_two_processes_aggregate_to_one_process_running_all(synthetic, tmp_path):
    one = tmp_path / "one"
    assert c.main(tiny_args(one, synthetic, "--n-seeds", "4", "--workers", "1")) == 0
    folder = tmp_path / "runs"
    assert c.main(tiny_args(tmp_path / "a", synthetic, "--seed", "0", "--n-seeds", "2", "--workers", "1",
                            "--run-dir", str(folder))) == 0
    assert c.main(tiny_args(tmp_path / "b", synthetic, "--seed", "2", "--n-seeds", "2", "--workers", "1",
                            "--run-dir", str(folder))) == 0
    assert len(list(folder.glob("seed*.json"))) == 4 * 3
    merged = tmp_path / "merged.json"
    assert c.main(["--aggregate", str(folder), "--out", str(merged), "--snapshots", str(tmp_path / "m.npz")]) == 0
    want, got = results(one / "out" / "results.json"), results(merged)
    assert summaries(got[0]) == summaries(want[0])
    assert got[1] == want[1]                                   # every statistic, bit for bit
    assert got[2] == want[2]                                   # the headline seed 0 and its curves
    # the second process's results.json already aggregated the whole folder
    assert summaries(results(tmp_path / "b" / "out" / "results.json")[0]) == summaries(want[0])
    with np.load(tmp_path / "m.npz") as z, np.load(one / "out" / "snapshots.npz") as w:
        assert all(np.array_equal(z[k], w[k], equal_nan=z[k].dtype.kind == "f") for k in w.files
                   if k not in ("config_json",))


def test_rerun_skips_finished_jobs_and_gives_the_same_numbers(synthetic, tmp_path, monkeypatch):
    args = tiny_args(tmp_path, synthetic, "--n-seeds", "3", "--workers", "1", "--run-dir", str(tmp_path / "runs"))
    assert c.main(args) == 0
    first = results(tmp_path / "out" / "results.json")
    monkeypatch.setattr(c, "run_course", lambda *a, **k: pytest.fail("a finished job ran again"))
    assert c.main(args) == 0
    assert results(tmp_path / "out" / "results.json") == first


def test_a_missing_job_is_run_again_and_only_it(synthetic, tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    args = tiny_args(tmp_path, synthetic, "--n-seeds", "2", "--workers", "1", "--run-dir", str(folder))
    assert c.main(args) == 0
    first = results(tmp_path / "out" / "results.json")
    (folder / "seed00001_lwta.json").unlink()
    ran, real = [], c.run_course
    monkeypatch.setattr(c, "run_course", lambda *a, **k: ran.append(a[:2]) or real(*a, **k))
    assert c.main(args) == 0
    assert ran == [(1, "lwta")]
    again = results(tmp_path / "out" / "results.json")
    assert summaries(again[0]) == summaries(first[0]) and again[1:] == first[1:]


@pytest.mark.robustness
def test_a_folder_of_another_configuration_is_refused_naming_the_settings(synthetic, tmp_path, capsys):
    folder = tmp_path / "runs"
    assert c.main(tiny_args(tmp_path, synthetic, "--workers", "1", "--run-dir", str(folder))) == 0
    capsys.readouterr()
    assert c.main(tiny_args(tmp_path, synthetic, "--workers", "1", "--run-dir", str(folder), "--lr", "0.1",
                            "--epochs", "3")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds jobs of a different configuration" in err
    assert "epochs: 2 in the folder, 3 now" in err and "lr: 0.05 in the folder, 0.1 now" in err


@pytest.mark.robustness
def test_a_folder_from_before_an_optional_setting_existed_resumes_only_without_it(synthetic, tmp_path, capsys):
    folder = tmp_path / "runs"
    assert c.main(tiny_args(tmp_path, synthetic, "--workers", "1", "--run-dir", str(folder))) == 0
    meta = json.loads((folder / "run.json").read_text())
    del meta["settings"]["max_norm"]                      # as written before --max-norm existed
    (folder / "run.json").write_text(json.dumps(meta))
    assert c.main(tiny_args(tmp_path, synthetic, "--workers", "1", "--run-dir", str(folder))) == 0
    capsys.readouterr()
    assert c.main(tiny_args(tmp_path, synthetic, "--workers", "1", "--run-dir", str(folder),
                            "--max-norm", "3")) == 2
    assert "max_norm: None in the folder, 3.0 now" in capsys.readouterr().err


@pytest.mark.robustness
def test_aggregate_refuses_folders_of_different_configurations(synthetic, tmp_path, capsys):
    for name, lr in (("a", "0.05"), ("b", "0.1")):
        assert c.main(tiny_args(tmp_path, synthetic, "--workers", "1", "--lr", lr,
                                "--run-dir", str(tmp_path / name))) == 0
    capsys.readouterr()
    assert c.main(["--aggregate", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m.json"),
                   "--snapshots", str(tmp_path / "m.npz")]) == 2
    err = capsys.readouterr().err
    assert "lr: 0.05 in the folder, 0.1 in " in err and not (tmp_path / "m.json").exists()


@pytest.mark.robustness
def test_aggregate_errors(tmp_path, capsys):
    assert c.main(["--aggregate", str(tmp_path), "--out", str(tmp_path / "m.json")]) == 1
    assert "not a run folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        c.main(["--aggregate", str(tmp_path), "--lr", "0.1"])
    assert e.value.code == 2 and "--lr" in capsys.readouterr().err


def test_seeds_missing_a_variant_are_left_out_and_said(synthetic, tmp_path, capsys):
    folder = tmp_path / "runs"
    assert c.main(tiny_args(tmp_path, synthetic, "--n-seeds", "3", "--workers", "1", "--run-dir", str(folder))) == 0
    (folder / "seed00002_topk.json").unlink()
    capsys.readouterr()
    assert c.main(["--aggregate", str(folder), "--out", str(tmp_path / "m.json"),
                   "--snapshots", str(tmp_path / "m.npz")]) == 0
    assert [r["seed"] for r in json.loads((tmp_path / "m.json").read_text())["per_seed"]] == [0, 1]
    assert "seeds [2] lack some variants" in capsys.readouterr().err


def test_job_files_round_trip_exactly(tmp_path):
    store = c.RunDir.__new__(c.RunDir)
    store.path, store.digest = tmp_path, "0123"
    result = {"seed": 3, "variant": "lwta:k=4", "settings_digest": "0123", "summary": {"acc": 0.1 + 0.2, "R": [[0.9, None]], "failed": None},
              "timings": {"train_s": 1.5}, "curves": np.array([[np.nan, 0.5]]),
              "units": {"W1": np.arange(6, dtype=np.float32).reshape(2, 3), "freq": np.zeros((1, 1, 3))}}
    store.save(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed00003_lwta_k=4.json", "seed00003_lwta_k=4.npz"]
    back = store.load(3, "lwta:k=4", headline=True)
    assert back["summary"] == result["summary"] and back["summary"]["acc"] == 0.1 + 0.2
    np.testing.assert_array_equal(back["curves"], result["curves"])
    assert back["units"]["W1"].dtype == np.float32
    np.testing.assert_array_equal(back["units"]["W1"], result["units"]["W1"])
    assert store.load(4, "lwta:k=4", headline=False) is None


def test_seeds_are_grouped_in_models_order_whatever_order_the_jobs_finished_in():
    """results.json must be the same bytes however the jobs were spread: no dict follows finishing order."""
    models = ["relu", "lwta", "topk"]
    jobs = [{"seed": s, "variant": v, "summary": {"acc": s}, "timings": {"train_s": 1.0},
             **({"curves": [s], "units": {"W1": v}} if s == 0 else {})} for s in (0, 1) for v in models]
    grouped = [json.dumps(c.group_by_seed(order, models)) for order in (jobs, jobs[::-1], jobs[1::2] + jobs[::2])]
    assert grouped[0] == grouped[1] == grouped[2]
    first = json.loads(grouped[0])
    assert [list(first[0][k]) for k in ("summary", "timings", "curves", "units")] == [models] * 4
    assert list(first[0]) == ["seed", "summary", "timings", "curves", "units"] and [r["seed"] for r in first] == [0, 1]


def run_cli(args, cwd):
    env = dict(os.environ, MNIST_DIR=MNIST_DIR or "", XDG_CACHE_HOME=os.environ["XDG_CACHE_HOME"])
    return subprocess.Popen([sys.executable, str(ROOT / "compete_to_compute.py"), *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


SMALL = ["--hidden", "64", "--models", "relu,lwta,topk:k=16", "--epochs", "1", "--n-train-per-class", "100",
         "--workers", "1"]


@needs_mnist
def test_two_concurrent_processes_fill_one_folder(tmp_path):
    folder = str(tmp_path / "runs")
    procs = [run_cli([*SMALL, "--seed", s, "--n-seeds", "2", "--run-dir", folder, "--quiet", "--out", f"r{s}.json",
                      "--snapshots", f"s{s}.npz"], tmp_path) for s in ("0", "2")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    alone = run_cli([*SMALL, "--n-seeds", "4", "--quiet", "--out", "alone.json", "--snapshots", "alone.npz"], tmp_path)
    assert alone.wait(timeout=120) == 0
    merged = run_cli(["--aggregate", folder, "--out", "merged.json", "--snapshots", "merged.npz"], tmp_path)
    assert merged.wait(timeout=60) == 0
    want, got = results(tmp_path / "alone.json"), results(tmp_path / "merged.json")
    assert summaries(got[0]) == summaries(want[0]) and got[1] == want[1]


@pytest.mark.robustness
@needs_mnist
def test_interrupt_keeps_every_finished_job_and_a_rerun_completes(tmp_path):
    folder = tmp_path / "runs"
    args = [*SMALL, "--n-seeds", "30", "--run-dir", str(folder), "--out", "r.json", "--snapshots", "s.npz"]
    p = run_cli(args, tmp_path)
    while "seed 1 done" not in p.stdout.readline():
        pass
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=20)
    assert p.returncode == 130 and "keeps every finished job" in err
    kept = sorted(x.name for x in folder.glob("seed*.json"))
    assert {"seed00000_relu.json", "seed00001_topk_k=16.json"} <= set(kept)
    assert not [x for x in folder.iterdir() if x.name.startswith(".")]        # no half-written file
    assert not (tmp_path / "r.json").exists()
    q = run_cli([*args[:args.index("--n-seeds") + 1], "3", *args[args.index("--n-seeds") + 2:], "--quiet"], tmp_path)
    assert q.wait(timeout=120) == 0


# ---------------------------------------------------------------------------------------------- issue 26
@pytest.mark.robustness
def test_two_processes_starting_at_once_on_a_new_folder_with_other_settings_one_refused(synthetic, tmp_path):
    program = synthetic_program(tmp_path / "bin")
    folder = tmp_path / "runs"
    procs = [subprocess.Popen([sys.executable, str(program), *tiny_args(tmp_path / e, synthetic, "--epochs", e,
                                                                          "--run-dir", str(folder), "--workers", "1")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for e in ("1", "2")]
    done = [(p.communicate(timeout=120)[1], p.returncode)[::-1] for p in procs]
    assert sorted(code for code, _ in done) == [0, 2], done
    won = json.loads((folder / "run.json").read_text())["settings"]["epochs"]
    code, err = next(d for d in done if d[0] == 2)
    other = 3 - won
    assert err == (f"error: {folder}: holds jobs of a different configuration (epochs: {won} in the folder, {other} "
                   "now); use another folder\n")
    assert c.main(["--aggregate", str(folder), "--out", str(tmp_path / "m.json"),
                   "--snapshots", str(tmp_path / "m.npz")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["config"]["epochs"] == won


@pytest.mark.robustness
def test_the_loser_of_the_race_for_run_json_reads_the_winners_settings(synthetic, tmp_path, monkeypatch):
    """The race made certain: the second process checked for run.json before the first created it."""
    folder = tmp_path / "runs"
    first, second = (c.parse_config(tiny_args(tmp_path, synthetic, "--epochs", e, "--run-dir", str(folder)))[0]
                     for e in ("1", "2"))
    c.RunDir(folder, first)
    real_is_file = c.Path.is_file
    monkeypatch.setattr(c.Path, "is_file", lambda p: p.name != c.RUN_FILE and real_is_file(p))
    with pytest.raises(c.SettingsMismatch, match="epochs: 1 in the folder, 2 now"):
        c.RunDir(folder, second)
    assert json.loads((folder / "run.json").read_text())["settings"]["epochs"] == 1
    assert not [p for p in folder.iterdir() if p.name != "run.json"]           # no temporary file left


def test_run_json_is_created_exclusively_without_hard_links_too(tmp_path, monkeypatch):
    assert c.create_exclusive(tmp_path / "a", b"1") and not c.create_exclusive(tmp_path / "a", b"2")
    monkeypatch.setattr(c.os, "link", lambda *a: (_ for _ in ()).throw(PermissionError(1, "no hard links")))
    assert c.create_exclusive(tmp_path / "b", b"1") and not c.create_exclusive(tmp_path / "b", b"2")
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes() == b"1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


@pytest.mark.robustness
@pytest.mark.parametrize("change", ["another digest", "no digest", "another seed's name"])
def test_resume_and_aggregate_refuse_a_job_file_of_other_settings_or_name_naming_it(change, synthetic, tmp_path,
                                                                                    capsys):
    folder = tmp_path / "runs"
    args = tiny_args(tmp_path, synthetic, "--n-seeds", "2", "--workers", "1", "--run-dir", str(folder))
    assert c.main(args) == 0
    path = folder / "seed00001_lwta.json"
    doc = json.loads(path.read_text())
    if change == "another digest":          # e.g. copied in from a folder of other settings
        doc["settings_digest"] = "0" * 16
        why = "computed with other settings (digest 0000000000000000) than the folder's run.json"
    elif change == "no digest":             # a job file written before job files recorded their settings
        del doc["settings_digest"]
        why = "records no settings digest (written by an older version of the program)"
    else:                                   # seed 1's file holding seed 0's job
        doc = json.loads((folder / "seed00000_lwta.json").read_text())
        doc.pop("curves"), doc.pop("units")
        why = "holds 'lwta' seed 0, whose file is seed00000_lwta.json"
    path.write_text(json.dumps(doc))
    capsys.readouterr()
    for command in (args, ["--aggregate", str(folder), "--out", str(tmp_path / "m.json"),
                           "--snapshots", str(tmp_path / "m.npz")]):
        assert c.main(command) == 1
        err = capsys.readouterr().err
        assert f"{path}: {why}" in err and "1 broken job file(s); delete them" in err
    assert not (tmp_path / "m.json").exists()


def test_every_job_file_records_the_digest_of_its_settings(synthetic, tmp_path):
    folder = tmp_path / "runs"
    assert c.main(tiny_args(tmp_path, synthetic, "--workers", "1", "--run-dir", str(folder))) == 0
    config = c.parse_config(tiny_args(tmp_path, synthetic, "--workers", "1", "--run-dir", str(folder)))[0]
    digest = c.settings_digest(c.experiment_settings(config))
    assert [json.loads(p.read_text())["settings_digest"] for p in sorted(folder.glob("seed*.json"))] == [digest] * 3
    assert c.RunDir(folder).digest == digest
    other = c.parse_config(tiny_args(tmp_path, synthetic, "--workers", "1", "--lr", "0.1"))[0]
    assert c.settings_digest(c.experiment_settings(other)) != digest
    store = c.RunDir(folder)
    with pytest.raises(c.OutputError, match="computed with other settings than the folder's; not saved"):
        store.save({**store.load(0, "relu", headline=True), "settings_digest": "0" * 16})
