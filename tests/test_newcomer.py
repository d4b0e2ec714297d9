"""Issue 17: a newcomer's day. Each case here failed before the fix it guards."""
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import MNIST_DIR, TINY, c, needs_mnist, tiny_args


def job_args(synthetic, folder, seed, *extra):
    """The README's run-folder recipe line for one seed (sizes shrunk)."""
    return ["--data-dir", str(synthetic), *TINY, "--seed", str(seed), "--n-seeds", "1", "--workers", "1",
            "--run-dir", str(folder), "--headline-seed", "0", *extra]


# ---------------------------------------------------------------------------------------------- 1
def test_run_folder_jobs_write_no_aggregate_and_only_the_headline_seed_keeps_arrays(synthetic, tmp_path, capsys,
                                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "runs" / "toy"
    for seed in (1, 0, 2):                       # any order, as xargs -P gives them
        assert c.main(job_args(synthetic, folder, seed)) == 0
    printed = capsys.readouterr().out
    assert "seed 1 relu: ACC" in printed and "--aggregate" in printed
    assert not (tmp_path / "results.json").exists() and not (tmp_path / "viz").exists()
    assert sorted(p.name for p in folder.glob("*.npz")) == [f"seed00000_{v}.npz" for v in ("lwta", "relu", "topk")]
    assert c.main(["--aggregate", str(folder)]) == 0                          # the README's next line
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["seeds"] == [0, 1, 2] and doc["headline"]["seed"] == 0
    one = tmp_path / "one"
    assert c.main(tiny_args(one, synthetic, "--n-seeds", "3", "--workers", "1")) == 0
    assert doc["aggregate"] == json.loads((one / "out" / "results.json").read_text())["aggregate"]


def test_aggregating_a_folder_without_the_headline_seed_says_what_to_run(synthetic, tmp_path, capsys):
    folder = tmp_path / "runs"
    assert c.main(job_args(synthetic, folder, 3)) == 0
    assert c.main(["--aggregate", str(folder), "--out", str(tmp_path / "r.json"), "--snapshots",
                   str(tmp_path / "s.npz")]) == 1
    assert "no seed of [3] was evaluated after every epoch" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- 4
@pytest.mark.robustness
@pytest.mark.parametrize("name", ["run.json", "seed00000_relu.json", "seed00000_relu.npz"])
def test_outputs_that_would_overwrite_a_run_folders_own_files_are_refused(synthetic, tmp_path, capsys, name):
    folder = tmp_path / "runs"
    assert c.main(tiny_args(tmp_path, synthetic, "--run-dir", str(folder))) == 0
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    for flags in (tiny_args(tmp_path, synthetic, "--run-dir", str(folder), "--out", str(folder / name)),
                  ["--aggregate", str(folder), "--out", str(folder / name)],
                  ["--aggregate", str(folder), "--out", str(tmp_path / "r.json"), "--snapshots", str(folder / name)]):
        assert c.main(flags) == 1
        assert f"would overwrite the run folder's own {name}" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before        # nothing touched
    assert c.main(["--aggregate", str(folder), "--out", str(tmp_path / "ok.json"), "--snapshots",
                   str(tmp_path / "ok.npz")]) == 0


# ---------------------------------------------------------------------------------------------- 6
@pytest.mark.robustness
def test_every_broken_job_file_is_named_for_itself_in_one_run(synthetic, tmp_path, capsys):
    folder = tmp_path / "runs"
    assert c.main(tiny_args(tmp_path, synthetic, "--n-seeds", "2", "--workers", "1", "--run-dir", str(folder))) == 0
    npz = folder / "seed00000_relu.npz"
    npz.write_bytes(npz.read_bytes()[:100])                                 # truncated arrays
    (folder / "seed00000_lwta.npz").unlink()                                # missing arrays
    (folder / "seed00001_topk.json").write_text("{not json")                # broken JSON
    for flags in (tiny_args(tmp_path, synthetic, "--n-seeds", "2", "--workers", "1", "--run-dir", str(folder)),
                  ["--aggregate", str(folder), "--out", str(tmp_path / "r.json"), "--snapshots", str(tmp_path / "s.npz")]):
        assert c.main(flags) == 1
        err = capsys.readouterr().err
        assert "3 broken job file(s)" in err
        assert f"{npz}: unreadable arrays file" in err
        assert f"{folder / 'seed00000_lwta.npz'}: missing (the arrays of seed00000_lwta.json)" in err
        assert f"{folder / 'seed00001_topk.json'}: unreadable job file" in err


def test_specs_that_differ_after_a_dot_keep_their_own_job_files(synthetic, tmp_path):
    folder = tmp_path / "runs"
    models = "relu:dropout=0.25,relu:dropout=0.5"
    assert c.main(tiny_args(tmp_path, synthetic, "--models", models, "--run-dir", str(folder))) == 0
    assert {p.name for p in folder.glob("*.json")} == {"run.json", "seed00000_relu_dropout=0.25.json",
                                                       "seed00000_relu_dropout=0.5.json"}
    assert c.main(tiny_args(tmp_path, synthetic, "--models", models, "--run-dir", str(folder))) == 0   # resumes


# ---------------------------------------------------------------------------------------------- 12
def test_the_interruption_message_names_the_files_the_command_writes():
    untouched = "were not written (earlier ones are untouched)"
    assert c.named_outputs(["--out", "x/r.json"]) == f"x/r.json and viz/snapshots.npz {untouched}"
    assert c.named_outputs(["--out=a.json", "--snapshots", "b.npz"]) == f"a.json and b.npz {untouched}"
    assert c.named_outputs([]) == f"results.json and viz/snapshots.npz {untouched}"
    assert c.named_outputs(["--run-dir", "runs"]) == "no results file was due"


def test_help_lists_aggregate(capsys):
    with pytest.raises(SystemExit):
        c.build_parser().parse_args(["--help"])
    assert "--aggregate DIR [DIR ...]" in capsys.readouterr().out


def test_progress_names_the_task_and_its_epoch(synthetic, tmp_path, capsys):
    args = [a for a in tiny_args(tmp_path, synthetic) if a != "--quiet"]
    assert c.main(args + ["--models", "relu"]) == 0
    out = capsys.readouterr().out
    assert "seed 0  task 2/2  epoch 1/2  relu" in out and "epoch 3/" not in out


def test_console_shows_learning_accuracy_and_the_sign_test(synthetic, tmp_path, capsys):
    assert c.main(tiny_args(tmp_path, synthetic, "--n-seeds", "7", "--workers", "1")) == 0
    out = capsys.readouterr().out
    assert "learning acc." in out and "sign test p" in out and "detectable" in out
    assert c.main(tiny_args(tmp_path / "three", synthetic, "--n-seeds", "3", "--workers", "1")) == 0
    out = capsys.readouterr().out          # 3 seeds cannot reach p < 0.05: nothing is said to be detectable
    assert "cannot be decided with 3 paired seeds" in out and "detectable" not in out


@pytest.mark.robustness
@pytest.mark.parametrize("flags,message", [
    (["--models", "topk:k=10%,topk:k=40"], "'topk:k=40' and 'topk:k=10%' are the same model at --hidden 400"),
    (["--joint", "--momentum-carry"], "argument --momentum-carry: not allowed with --joint"),
])
def test_same_model_twice_and_joint_with_carry_are_refused(flags, message, capsys):
    with pytest.raises(SystemExit) as e:
        c.parse_config(flags)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_a_recipes_carry_is_dropped_for_joint_training():
    config = c.parse_config(["--recipe", "src-mnist", "--joint"])[0]
    assert config["joint"] and not config["momentum_carry"]


@pytest.mark.robustness
def test_a_file_given_as_the_data_folder_is_called_a_file(tmp_path, capsys):
    f = tmp_path / "README.md"
    f.write_text("not data")
    assert c.main(["--data-dir", str(f), "--quiet", "--out", str(tmp_path / "r.json"), "--snapshots",
                   str(tmp_path / "s.npz")]) == 1
    assert f"{f}: is a file, not a folder" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- 7
def test_git_dirty_ignores_the_programs_own_outputs():
    assert all(c.is_program_output(p) for p in ("results.json", "viz/submasks.png", "compete_to_compute.gif",
                                                "studies/01_toy/summary.md", "studies/summary.png"))
    assert not any(c.is_program_output(p) for p in ("compete_to_compute.py", "studies/common.py", "README.md",
                                                     "tests/test_cli.py", "requirements.txt"))


def test_an_aggregate_lists_the_commit_each_job_was_computed_at(synthetic, tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    monkeypatch.setattr(c, "environment", lambda: {"git_commit": "aaa", "git_dirty": False, "numpy": "1"})
    assert c.main(job_args(synthetic, folder, 0)) == 0
    monkeypatch.setattr(c, "environment", lambda: {"git_commit": "bbb", "git_dirty": True, "numpy": "1"})
    assert c.main(job_args(synthetic, folder, 1)) == 0
    assert c.main(["--aggregate", str(folder), "--out", str(tmp_path / "r.json"), "--snapshots",
                   str(tmp_path / "s.npz")]) == 0
    env = json.loads((tmp_path / "r.json").read_text())["environment"]
    assert env["jobs_computed_at"] == [{"git_commit": "aaa", "git_dirty": False, "numpy": "1"},
                                       {"git_commit": "bbb", "git_dirty": True, "numpy": "1"}]


# ---------------------------------------------------------------------------------------------- 5
def cache_of(synthetic):
    sources = [c.find_idx_file(synthetic, n) for n in c.IDX_FILES]
    return c.decoded_cache_dir(sources, "mnist")


@pytest.mark.robustness
def test_a_damaged_decoded_cache_is_noticed_and_rebuilt_once(synthetic, capsys):
    good = {k: np.array(v) for k, v in c.load_dataset("mnist", str(synthetic)).items()}
    cache = cache_of(synthetic)
    labels = np.load(cache / "test_labels.npy")
    labels[: len(labels) // 2] = 0                                            # half the labels zeroed
    np.save(cache / "test_labels.npy", labels)
    c.load_dataset.cache_clear()
    again = c.load_dataset("mnist", str(synthetic))
    assert "does not match the digests recorded when it was decoded" in capsys.readouterr().err
    np.testing.assert_array_equal(np.asarray(again["test_labels"]), good["test_labels"])
    c.load_dataset.cache_clear()
    third = c.load_dataset("mnist", str(synthetic))                           # rebuilt: memory-mapped, silent
    assert isinstance(third["test_labels"], np.memmap) and capsys.readouterr().err == ""


@pytest.mark.robustness
def test_a_truncated_decoded_cache_is_replaced_not_decoded_on_every_run(synthetic, capsys):
    c.load_dataset("mnist", str(synthetic))
    cache = cache_of(synthetic)
    path = cache / "train_images.npy"
    path.write_bytes(path.read_bytes()[:1000])
    c.load_dataset.cache_clear()
    c.load_dataset("mnist", str(synthetic))
    assert "incomplete or unreadable" in capsys.readouterr().err
    c.load_dataset.cache_clear()
    assert isinstance(c.load_dataset("mnist", str(synthetic))["train_images"], np.memmap)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------------- 8
@pytest.mark.robustness
@pytest.mark.parametrize("flags,flag", [(["--hidden", "100000"], "--hidden"), (["--permuted", "1000"], "--permuted")])
def test_oversized_runs_are_refused_before_any_work_naming_the_flag(flags, flag, capsys, monkeypatch):
    monkeypatch.setattr(c, "available_memory", lambda: 8 * 10 ** 9)
    monkeypatch.setattr(c, "environment", lambda: pytest.fail("work started before the memory check"))
    assert c.main(flags) == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: the run needs about" in err and "more than the 8.0 GB available" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_memory_estimate_by_hand():
    config = c.parse_config(["--hidden", "100", "--depth", "1", "--workers", "1"])[0]
    need = c.estimate_memory(config)
    params = (784 * 100 + 100 * 10) * 4
    images = [(2500 + sum(c.DATASETS["mnist"].train_class_counts[d] for d in g) // 6) * 784 * 4
              for g in ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9])]
    assert need["weights"] == 4 * params and need["tasks"] == sum(images) + max(images)
    assert c.memory_problem(config, 10 ** 12) is None


# ---------------------------------------------------------------------------------------------- 12g
@pytest.mark.robustness
def test_the_gif_script_refuses_an_output_that_is_not_a_gif(tmp_path, capsys):
    import make_compete_to_compute_gif as gif
    with pytest.raises(SystemExit) as e:
        gif.main(["--out", str(tmp_path / "x.png")])
    assert e.value.code == 2 and "argument --out: writes a GIF" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


# ---------------------------------------------------------------------------------------------- 12j
def test_real_data_tests_find_mnist_in_the_programs_own_cache(tmp_path, monkeypatch):
    import conftest
    cache = tmp_path / "xdg"
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    assert conftest.real_mnist_folder() is None
    folder = cache / "compete_to_compute" / "mnist"
    folder.mkdir(parents=True)
    for name in c.IDX_FILES:
        (folder / (name + ".gz")).write_bytes(b"")
    assert conftest.real_mnist_folder() == str(folder.resolve())


# ---------------------------------------------------------------------------------------------- 12k
def processes_in_group(pgid: int) -> list:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(stat.parent.name)
    return out


@needs_mnist
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to list a process group")
def test_a_multi_seed_run_leaves_no_process_behind(tmp_path):
    import subprocess
    import sys
    cmd = [sys.executable, str(Path(c.__file__)), "--data-dir", MNIST_DIR, "--hidden", "20", "--epochs", "1",
           "--n-train-per-class", "20", "--n-seeds", "3", "--workers", "2", "--quiet", "--models", "relu,lwta",
           "--out", str(tmp_path / "r.json"), "--snapshots", str(tmp_path / "s.npz")]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.wait(timeout=120) == 0
    assert processes_in_group(proc.pid) == []


# ---------------------------------------------------------------------------------------------- 11
def test_sdm_at_settings_it_cannot_learn_at_is_flagged_before_training(synthetic, tmp_path, capsys):
    assert c.main(tiny_args(tmp_path, synthetic, "--models", "relu,sdm:k=4")) in (0, 3)
    err = capsys.readouterr().err
    assert "note: sdm trains slowly" in err and "--recipe sdm-split-mnist" in err
    flags = {"depth": 1, "epochs": 50, "tasks": [[0, 1]] * 5, "n_train_first": None, "n_train_per_class": 500}
    assert c.SDM(100, **c.parse_variant("sdm").params).caveat(flags) is None
    assert c.ReLU(100).caveat({**flags, "depth": 2, "epochs": 1}) is None


def test_a_gaba_switch_the_run_can_never_complete_is_flagged_before_training(capsys):
    """The SDM recipe's gaba=5,000,000 is set for 500 epochs per task: at 20 a unit can fire at most
    5 tasks x ~12,000 images x 20 epochs = 1.2 million times, so the switch never completes."""
    config = c.parse_config(["--recipe", "sdm-split-mnist", "--epochs", "20", "--data-dir", "unused"])[0]
    layer = c.parse_variant(config["models"][-1]).layers(config["hidden"], 1)[0]
    assert "gaba=5000000 is more firings than this run's at most 1,200,000" in layer.caveat(config)
    assert "sdm:...:gaba=200000" in layer.caveat(config)
    assert layer.caveat({**config, "epochs": 500}) is None                 # the recipe's own budget


def test_a_dry_run_prints_the_plan_and_runs_and_writes_nothing(synthetic, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(c, "run_course", lambda *a, **k: pytest.fail("a dry run trained"))
    assert c.main(tiny_args(tmp_path, synthetic, "--n-seeds", "2", "--dry-run")) == 0
    out = capsys.readouterr().out
    assert out.startswith("dry run: 6 job(s) (2 seed(s) x 3 variant(s))") and "nothing was run" in out
    config = {**c.parse_config(tiny_args(tmp_path, synthetic, "--n-seeds", "2"))[0], "workers": 2}
    monkeypatch.setattr(c, "count_flops", lambda *a: {"total": 2 * 60 * 102e9 * 100})   # 100 min at peak
    plan = c.plan_text(config)
    assert "at least 100.0 min on 2 core(s) at their peak (102 GFLOP/s each)" in plan   # a bound, never above
    assert "about 170.0 min at the 60 GFLOP/s whole jobs typically reach" in plan       # the real time
    assert not (tmp_path / "out").exists()
    assert "dry_run" in c.NOT_SETTINGS                                     # it never changes a job's numbers


def test_replacing_the_results_of_another_command_says_so(synthetic, tmp_path, capsys):
    args = tiny_args(tmp_path, synthetic, "--epochs", "1")
    assert c.main(args) in (0, 3)
    assert "held the results of another command" not in capsys.readouterr().out     # nothing there before
    assert c.main(args) in (0, 3)
    assert "held the results of another command" not in capsys.readouterr().out     # the same command again
    assert c.main([*args, "--n-seeds", "2"]) in (0, 3)
    out = capsys.readouterr().out
    assert "results.json held the results of another command, `python compete_to_compute.py" in out
    assert "--epochs 1`, now replaced" in out
