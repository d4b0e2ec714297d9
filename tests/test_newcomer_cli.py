"""Issue 26, a newcomer's day round two: the command-line items. Each case here failed before its fix."""
import json
import os

import pytest

from conftest import TINY, c, tiny_args


def no_training(monkeypatch):
    """Any job started fails the test."""
    monkeypatch.setattr(c, "run_course", lambda *a, **k: pytest.fail("a job was started"))


# ---------------------------------------------------------------------------------------------- 4
@pytest.mark.robustness
def test_a_headline_seed_outside_the_seeds_run_is_refused_before_any_work(synthetic, tmp_path, capsys, monkeypatch):
    no_training(monkeypatch)
    with pytest.raises(SystemExit) as e:
        c.main(tiny_args(tmp_path, synthetic, "--seed", "0", "--n-seeds", "2", "--headline-seed", "5"))
    assert e.value.code == 2 and not (tmp_path / "out").exists()
    assert "argument --headline-seed: 5 is not among the seeds 0-1 this command runs" in capsys.readouterr().err


@pytest.mark.robustness
def test_with_a_run_folder_the_headline_seed_may_come_from_the_folder_but_must_be_there(synthetic, tmp_path, capsys,
                                                                                         monkeypatch):
    folder = tmp_path / "runs"
    both = tiny_args(tmp_path, synthetic, "--seed", "0", "--n-seeds", "2", "--workers", "1", "--run-dir",
                     str(folder), "--headline-seed", "5")
    real = c.run_course
    no_training(monkeypatch)
    assert c.main(both) == 2
    assert f"5 is not among the seeds 0-1 this command runs, and {folder} does not hold" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(c, "run_course", real)
    job = ["--data-dir", str(synthetic), *TINY, "--seed", "5", "--workers", "1", "--run-dir", str(folder),
           "--headline-seed", "5"]
    assert c.main(job) == 0                                  # the headline seed's jobs, as a run-folder job
    assert c.main(both) == 0
    assert json.loads((tmp_path / "out" / "results.json").read_text())["headline"]["seed"] == 5


# ---------------------------------------------------------------------------------------------- 8
@pytest.mark.robustness
@pytest.mark.parametrize("flags,message", [
    (["--optimizer", "adam", "--lr", "0.001", "--momentum", "0.5"],
     "argument --momentum: sgd only, and --optimizer is adam"),
    (["--recipe", "kwta-permuted", "--momentum", "0"], "argument --momentum: sgd only, and --optimizer is adam"),
    (["--adam-betas", "0.9,0.99"], "argument --adam-betas: adam only, and --optimizer is sgd"),
    (["--optimizer", "sgd", "--adam-eps", "1e-6"], "argument --adam-eps: adam only, and --optimizer is sgd"),
    (["--recipe", "src-mnist", "--adam-eps", "1e-6"], "argument --adam-eps: adam only, and --optimizer is sgd"),
    (["--optimizer", "adam"], "argument --optimizer: adam would keep SGD's default --lr 0.05"),
    (["--optimizer", "adam", "--models", "relu:lr=0.001,lwta"], "argument --optimizer: adam would keep"),
])
def test_a_flag_of_the_other_optimizer_or_adam_at_sgds_rate_is_refused_naming_the_flag(flags, message, capsys):
    with pytest.raises(SystemExit) as e:
        c.parse_config(flags)
    assert e.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--optimizer", "adam", "--lr", "0.001", "--adam-eps", "1e-6"],
                                   ["--optimizer", "adam", "--models", "relu:lr=0.001,lwta:lr=0.002"],
                                   ["--recipe", "kwta-permuted"], ["--recipe", "kwta-permuted", "--adam-eps", "1e-7"],
                                   ["--recipe", "src-mnist", "--momentum", "0.9"], ["--momentum", "0.5"]])
def test_each_optimizers_own_flags_are_accepted(flags):
    assert c.parse_config(flags)[0]["optimizer"] in ("sgd", "adam")


# --------------------------------------------------------------------------------------------- 12
def test_an_aggregate_of_more_seeds_than_asked_says_so_in_one_line(synthetic, tmp_path, capsys):
    folder = tmp_path / "runs"
    flags = ["--data-dir", str(synthetic), *TINY, "--workers", "1", "--run-dir", str(folder)]
    assert c.main([*flags, "--n-seeds", "2"]) == 0
    assert c.main([*flags, "--n-seeds", "2", "--out", str(tmp_path / "two.json"),
                   "--snapshots", str(tmp_path / "two.npz")]) == 0
    assert "note:" not in capsys.readouterr().err                    # the folder holds just the seeds asked
    assert c.main([*flags, "--seed", "2", "--n-seeds", "2"]) == 0
    capsys.readouterr()
    assert c.main([*flags, "--n-seeds", "2", "--out", str(tmp_path / "r.json"), "--snapshots",
                   str(tmp_path / "s.npz")]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert notes == [f"note: {tmp_path / 'r.json'} aggregates all 4 seeds {folder} holds: the seeds 0-1 this "
                     "command ran and 2 more (2, 3); give another --run-dir for these alone"]
    assert json.loads((tmp_path / "r.json").read_text())["config"]["n_seeds"] == 4


# --------------------------------------------------------------------------------------------- 13
def test_validation_scores_are_printed_beside_the_tables(synthetic, tmp_path, capsys):
    assert c.main(tiny_args(tmp_path, synthetic, "--n-seeds", "2", "--workers", "1")) == 0
    assert "validation images" not in capsys.readouterr().out
    assert c.main(tiny_args(tmp_path, synthetic, "--n-seeds", "2", "--workers", "1", "--val-per-class", "5")) == 0
    printed = capsys.readouterr().out.split("validation images (5 per class and task", 1)[1].splitlines()[1:]
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    for line, v in zip(printed, doc["config"]["models"]):
        val = [r["summary"][v]["val_R"] for r in doc["per_seed"]]
        acc, first = (sum(x) / len(x) for x in ([sum(R[-1]) / len(R[-1]) for R in val], [R[0][0] for R in val]))
        assert line == f"  {v:<12} ACC {acc:.4f}; task 1 after task 1 {first:.4f} (2 seed(s))"
    assert len(printed) >= 3


# --------------------------------------------------------------------------------------------- 15
def test_a_failure_is_placed_by_its_epoch_within_the_task():
    import visualize_compete_to_compute as viz
    failed = {"reason": "diverged", "task": 4, "epoch": 16, "detail": "the training loss became non-finite"}
    assert c.failure_text(failed, 5) == "failed (diverged) in task 4, epoch 1 of 5: the training loss became non-finite"
    assert c.failure_text({**failed, "epoch": 20}, 5).startswith("failed (diverged) in task 4, epoch 5 of 5:")
    assert c.failure_text({**failed, "task": None, "epoch": 7}, 10).startswith("failed (diverged) in joint "
                                                                               "training, epoch 7 of 10:")
    assert viz.failure_text(failed, {"config": {"epochs": 5}}) == "diverged: task 4, epoch 1 of 5"
    assert failed["epoch"] == 16                                     # the record keeps the count from the start


# --------------------------------------------------------------------------------------------- 16
@pytest.mark.robustness
@pytest.mark.parametrize("argv,said", [
    (["--run-dir", "runs"], "interrupted by SIGTERM: stopped; no results file was due; a --run-dir keeps every "
                            "finished job\n"),
    (["--out", "r.json"], "interrupted by SIGTERM: stopped; r.json and viz/snapshots.npz were not written (earlier "
                          "ones are untouched); a --run-dir keeps every finished job\n")])
def test_the_interruption_message_reads_right_with_and_without_a_results_file(argv, said, monkeypatch, capsys):
    import signal

    def terminated(argv):
        raise c.Interrupted(signal.SIGTERM)
    monkeypatch.setattr(c, "run_main", terminated)
    assert c.main(argv) == 143
    assert capsys.readouterr().err == said


# --------------------------------------------------------------------------------------------- 17
@pytest.mark.robustness
@pytest.mark.parametrize("argv,error", [
    (["--bogus"], "error: unrecognized arguments: --bogus"),
    (["--lr", "0"], "error: argument --lr: must be a positive number, got '0'"),
    (["--permuted", "1"], "error: argument --permuted: needs at least 2 tasks, got 1"),
    (["--aggregate"], "error: argument --aggregate: expected at least one argument")])
def test_a_bad_flag_prints_a_short_usage_line_and_the_error_only(argv, error, capsys):
    with pytest.raises(SystemExit) as e:
        c.main(argv)
    lines = capsys.readouterr().err.splitlines()
    assert e.value.code == 2 and len(lines) == 2
    assert lines[0].startswith("usage: ") and "--help" in lines[0] and lines[1].endswith(error)


@pytest.mark.robustness
def test_a_bad_study_flag_prints_two_lines():
    import subprocess
    import sys
    from conftest import ROOT
    done = subprocess.run([sys.executable, str(ROOT / "studies" / "01_toy.py"), "--seeds", "0"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 2
    assert done.stderr.splitlines()[1] == "01_toy.py: error: argument --seeds: must be a positive integer, got '0'"


# --------------------------------------------------------------------------------------------- 18
@pytest.mark.robustness
@pytest.mark.parametrize("under", ["x.json", "deeper/x.json"])
def test_an_output_under_a_file_is_called_that(under, tmp_path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(c.OutputError) as e:
        c.check_output_path(tmp_path / "a_file" / under)
    assert str(e.value) == (f"{tmp_path / 'a_file' / under}: cannot write here ({tmp_path / 'a_file'} is a file, "
                            "not a folder); choose another path")


@pytest.mark.robustness
@pytest.mark.parametrize("raw", [b"", b"\x00\x00\x08"])
def test_a_file_too_short_for_a_magic_number_says_how_short(raw, tmp_path):
    with pytest.raises(c.DataError) as e:
        c.parse_idx(raw, tmp_path / "t.idx")
    assert str(e.value) == (f"{tmp_path / 't.idx'}: not an IDX file ({len(raw)} bytes, too short to hold the 4-byte "
                            "magic number); replace it with the original file")


@pytest.mark.parametrize("spec,said", [
    ("relu:sleep_iters=5", "sleep_iters applies only with sleep=1; give that too, or leave sleep_iters out"),
    ("relu:si_xi=0.1", "si_xi applies only with si > 0; give that too, or leave si_xi out")])
def test_a_key_without_the_key_that_turns_it_on_is_named_in_good_grammar(spec, said):
    with pytest.raises(ValueError) as e:
        c.parse_variant(spec)
    assert str(e.value) == f"{spec!r}: {said}"


# --------------------------------------------------------------------------------------------- 19
def test_task_labels_say_digits_only_for_mnist():
    assert c.task_label([0, 1, 2, 3, 4], None) == "digits 0-4"
    assert c.task_label([0, 1, 2, 3, 4], None, "fashion-mnist") == "classes 0-4"
    assert c.task_label([7], None, "fashion-mnist") == "class 7"
    assert c.task_label([0, 2], None, "fashion-mnist") == "classes 0,2"
    assert c.task_label(range(10), 2, "fashion-mnist") == "permutation 2"


@pytest.mark.skipif(not os.environ.get("FASHION_MNIST_DIR"), reason="set FASHION_MNIST_DIR to the Fashion-MNIST files")
def test_fashion_mnist_runs_label_their_tasks_as_classes():
    config, _ = c.parse_config(["--dataset", "fashion-mnist", "--data-dir", os.environ["FASHION_MNIST_DIR"]])
    assert [t["label"] for t in c.task_table(config)] == ["classes 0-4", "classes 5-9"]


# --------------------------------------------------------------------------------------------- 20
def test_main_help_lists_every_method_key_and_the_variant_lr_key(capsys):
    with pytest.raises(SystemExit):
        c.build_parser().parse_args(["--help"])
    shown = " ".join(capsys.readouterr().out.split())                  # argparse wraps lines
    for key in ("ewc", "ewc_online", "si", "si_xi", "l2", "replay"):
        assert f" {key} (" in shown, key
    assert "lr (--lr)" in shown


@pytest.mark.parametrize("script", ["16_methods_class_incremental", "17_methods_permuted"])
def test_the_methods_studies_help_says_what_each_rule_means(script):
    import subprocess
    import sys
    from conftest import ROOT
    shown = subprocess.run([sys.executable, str(ROOT / "studies" / f"{script}.py"), "--help"], capture_output=True,
                           text=True, timeout=60).stdout
    shown = " ".join(shown.split())
    assert "two: two tasks: best mean validation accuracy on tasks 1-2 right after task 2" in shown
    assert "all: all tasks: best validation ACC at the end" in shown


# --------------------------------------------------------------------------------------------- 23
def test_the_results_page_captions_match_the_committed_results():
    import re
    from conftest import ROOT
    doc = json.loads((ROOT / "results.json").read_text())
    page = " ".join((ROOT / "docs" / "results.md").read_text().split())
    spread = {v: [r["summary"][v]["forgetting"] for r in doc["per_seed"]] for v in ("relu", "topk")}
    assert (f"spread (ReLU {min(spread['relu']):.3f}-{max(spread['relu']):.3f}, Top-K {min(spread['topk']):.3f}-"
            f"{max(spread['topk']):.3f})") in page
    said = float(re.search(r"After epoch 2 every variant is at (0\.\d+) or more on Task 1", page).group(1))
    at_epoch_2 = min(curve[2][0] for curve in doc["headline"]["curves"].values())
    assert f"{at_epoch_2:.4f}".startswith(f"{said}") and at_epoch_2 >= said


# --------------------------------------------------------------------------------------------- 25
MACHINE_PATH = r"(?<![\w.~])/(?:work|root|home|Users)/"       # folders of the machine a file was made on


def committed_files() -> list:
    import subprocess
    from conftest import ROOT
    done = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True)
    if done.returncode:
        pytest.skip("not a git checkout: the committed files are unknown")
    return [ROOT / name for name in done.stdout.decode().split("\0") if name]


def test_no_committed_file_names_a_machines_folders():
    import re
    import numpy as np
    found = []
    for path in committed_files():
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                text = " ".join(str(z[k]) for k in z.files if z[k].dtype.kind in "US")
        else:
            raw = path.read_bytes()
            if b"\0" in raw[:8192]:                  # images and other binary files
                continue
            text = raw.decode("utf-8", "replace")
        found += [f"{path.name}: {m.group(0)}..." for m in re.finditer(MACHINE_PATH, text)][:1]
    assert not found, f"absolute paths in committed files: {found}"


def test_outputs_record_paths_inside_the_repository_relative_to_it(synthetic, tmp_path, monkeypatch):
    import numpy as np
    monkeypatch.setattr(c, "HERE", tmp_path)                          # the repository, here
    out, snaps, folder = tmp_path / "studies" / "r.json", tmp_path / "studies" / "s.npz", tmp_path / "runs" / "x"
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    assert c.main(["--data-dir", str(synthetic), *TINY, "--workers", "1", "--out", str(out),
                   f"--snapshots={snaps}"]) == 0
    doc = json.loads(out.read_text())
    assert doc["command"][2:4] == ["--data-dir", "data"] and doc["command"][-3:] == [
        "--out", "studies/r.json", "--snapshots=studies/s.npz"]
    assert {k: doc["config"][k] for k in ("out", "snapshots", "run_dir", "data_dir")} == {
        "out": "studies/r.json", "snapshots": "studies/s.npz", "run_dir": None, "data_dir": "data"}
    with np.load(snaps, allow_pickle=False) as z:
        assert json.loads(str(z["config_json"])) == doc["config"]
    assert c.main(["--data-dir", str(synthetic), *TINY, "--workers", "1", "--run-dir", str(folder)]) == 0
    assert c.main(["--aggregate", str(folder), "--out", str(outside / "r.json"), "--snapshots",
                   str(outside / "s.npz")]) == 0
    doc = json.loads((outside / "r.json").read_text())
    assert doc["command"] == ["python", "compete_to_compute.py", "--aggregate", "runs/x", "--out",
                              str(outside / "r.json"), "--snapshots", str(outside / "s.npz")]   # outside: as given
