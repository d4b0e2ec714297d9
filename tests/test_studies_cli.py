"""Issue 17, item 3: every study script reads its command line first (--help, --seeds, --workers,
--dry-run) and shows progress."""
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import MNIST_DIR, ROOT, c, needs_mnist, synthetic_program

STUDY_SCRIPTS = sorted((ROOT / "studies").glob("[0-9][0-9]_*.py"))
sys.path.insert(0, str(ROOT / "studies"))
import common  # noqa: E402


def test_there_are_study_scripts():
    assert len(STUDY_SCRIPTS) >= 15


@pytest.fixture(scope="module")
def studies_copy(tmp_path_factory):
    """The program and the committed study outputs (no run folders, no job files) in a folder of their own,
    so that what a study script writes there is its own doing (a study running beside the tests writes into
    the repository's studies/runs)."""
    root = tmp_path_factory.mktemp("repo")
    for p in ROOT.glob("*.py"):
        shutil.copy(p, root)
    shutil.copytree(ROOT / "studies", root / "studies", ignore=shutil.ignore_patterns("runs", "jobs", "__pycache__"))
    return root


def files_in(root: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if "__pycache__" not in p.parts}


@pytest.mark.parametrize("script", STUDY_SCRIPTS, ids=[p.stem for p in STUDY_SCRIPTS])
def test_help_prints_the_studys_description_and_runs_nothing(script, studies_copy, tmp_path):
    before = files_in(studies_copy)
    done = subprocess.run([sys.executable, "-B", str(studies_copy / "studies" / script.name), "--help"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0 and "--dry-run" in done.stdout and "--seeds" in done.stdout
    assert done.stdout.split("\n\n")[1].strip()                    # the study's own description
    assert files_in(studies_copy) == before and not any(tmp_path.iterdir())


@pytest.mark.robustness
def test_a_bad_study_flag_exits_2():
    done = subprocess.run([sys.executable, str(STUDY_SCRIPTS[0]), "--seeds", "0"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "argument --seeds: must be a positive integer" in done.stderr


@needs_mnist
def test_seeds_and_dry_run_are_honoured_and_progress_is_shown(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_DIR", MNIST_DIR)
    monkeypatch.setattr(common, "STUDIES", tmp_path / "studies")
    monkeypatch.setattr(common, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(common, "PROGRESS_EVERY_S", 0.2)
    tiny = ["--hidden", "16", "--epochs", "2", "--n-train-per-class", "40", "--models", "relu,lwta"]
    common.parse_study_args("test", ["--seeds", "3", "--workers", "1", "--dry-run"])
    with pytest.raises(SystemExit, match="does not exist yet"):
        common.run_setting("t", "tiny", tiny, 20)
    assert "--n-seeds 3  (6 jobs" in capsys.readouterr().out and not (tmp_path / "runs").exists()
    common.parse_study_args("test", ["--seeds", "3", "--workers", "1"])
    doc = common.run_setting("t", "tiny", tiny, 20)
    assert doc["seeds"] == [0, 1, 2] and doc["config"]["workers"] is None
    assert len(list((tmp_path / "runs" / "t" / "tiny").glob("seed*.json"))) == 6
    printed = capsys.readouterr().out
    assert "jobs, " in printed and "/6 jobs" in printed                        # progress while it ran
    common.parse_study_args("test", [])                                        # back to the defaults
    assert json.loads((tmp_path / "studies" / "t" / "tiny.json").read_text())["seeds"] == [0, 1, 2]


@needs_mnist
def test_a_long_study_resumes_from_its_committed_job_files_on_a_fresh_machine(tmp_path, monkeypatch, capsys):
    """keep=True: finished jobs are copied to studies/<study>/jobs/<label>/ as JSON (the headline seed's curves
    and firing frequencies inline, its weights left out); with the run folder gone (a fresh clone), the study
    restores them, runs nothing, and gives the same numbers and curves; --dry-run says what is committed
    and what is left. With its aggregate there too, a finished setting is read and nothing is rewritten."""
    monkeypatch.setenv("MNIST_DIR", MNIST_DIR)
    monkeypatch.setattr(common, "STUDIES", tmp_path / "studies")
    monkeypatch.setattr(common, "RUNS", tmp_path / "runs")
    tiny = ["--hidden", "16", "--epochs", "1", "--n-train-per-class", "30", "--models", "relu,lwta"]
    common.parse_study_args("test", ["--seeds", "3", "--workers", "1"])
    first = common.run_setting("t", "tiny", tiny, 3, keep=True)
    kept = tmp_path / "studies" / "t" / "jobs" / "tiny"
    assert sorted(p.name for p in kept.iterdir()) == ["run.json"] + [f"seed0000{s}_{v}.json" for s in range(3)
                                                                     for v in ("lwta", "relu")]
    assert not any(p.suffix in (".npz", ".ckpt") for p in kept.iterdir())
    assert (kept / "seed00000_relu.json").stat().st_size < 60_000                  # curves, no weights
    common.parse_study_args("test", ["--seeds", "4", "--workers", "1", "--dry-run"])
    common.run_setting("t", "tiny", tiny, 3, keep=True)
    assert "6 finished jobs committed in studies/t/jobs/tiny, 2 jobs" in capsys.readouterr().out
    runs = tmp_path / "runs" / "t" / "tiny"
    before = {p.name: p.read_bytes() for p in runs.glob("seed*.json")}
    shutil.rmtree(tmp_path / "runs")                                         # a fresh clone: only git's files
    stamps = {p.name: p.stat().st_mtime_ns for p in kept.iterdir()}
    common.parse_study_args("test", ["--seeds", "3", "--workers", "1"])
    out = tmp_path / "studies" / "t" / "tiny.json"
    text = out.read_bytes()
    assert common.run_setting("t", "tiny", tiny, 3, keep=True) == json.loads(text)   # finished: read, not rewritten
    assert out.read_bytes() == text and not runs.exists() and "delete it to aggregate" in capsys.readouterr().out
    out.unlink()                                                             # aggregated again from the jobs
    again = common.run_setting("t", "tiny", tiny, 3, keep=True)
    after = {p.name: p.read_bytes() for p in runs.glob("seed*.json")}
    assert {k: v for k, v in after.items() if k[8] != "0"} == {k: v for k, v in before.items() if k[8] != "0"}
    for name in ("seed00000_relu.json", "seed00000_lwta.json"):                # restored, not run again
        was, now = json.loads(before[name]), json.loads(after[name])
        assert set(was["units"]) - set(now["units"]) == {"W1", "W1_init"}
        assert {k: v for k, v in now.items() if k != "units"} == {k: v for k, v in was.items() if k != "units"}
    assert {p.name: p.stat().st_mtime_ns for p in kept.iterdir()} == stamps      # nothing rewritten
    for key in ("per_seed", "aggregate"):
        assert again[key] == first[key]
    assert again["headline"]["curves"] == first["headline"]["curves"]
    common.parse_study_args("test", [])


def test_a_kept_headline_job_round_trips_its_arrays_exactly_nan_included():
    arrays = {"/curves": np.array([[0.5, np.nan], [1 / 3, 0.25]]), "/units/freq": np.arange(6, dtype=np.float32) / 7,
              "/units/W1": np.ones((3, 2), dtype=np.float32), "/units/W1_init": np.zeros((3, 2), dtype=np.float32)}
    doc = {"seed": 0, "curves": {"npz": "/curves"}, "units": {k: {"npz": f"/units/{k}"} for k in ("freq", "W1", "W1_init")}}
    kept = json.loads(json.dumps(common.inline_arrays(doc, arrays), allow_nan=False))
    assert set(kept["units"]) == {"freq"}
    back = {}
    assert common.outline_arrays(kept, back) == {"seed": 0, "curves": {"npz": "/curves"},
                                                 "units": {"freq": {"npz": "/units/freq"}}}
    np.testing.assert_array_equal(back["/curves"], arrays["/curves"])
    assert back["/units/freq"].dtype == np.float32 and back["/units/freq"].tobytes() == arrays["/units/freq"].tobytes()


# ---------------------------------------------------------------------------- issue 26, item 3: signals
SETTING_STUDY = '''"""A study like studies/01_toy.py, on the synthetic data: one setting, then its summary."""
import sys
from pathlib import Path

import synthetic_pin  # noqa: F401  (the synthetic data set, here and in the child compete_to_compute.py)
sys.path.insert(0, {studies!r})
import common  # noqa: E402

if __name__ == "__main__":
    here = Path(__file__).resolve().parent       # the child is here/compete_to_compute.py, the outputs here too
    common.ROOT, common.STUDIES, common.RUNS = here, here / "studies", here / "runs"
    common.PROGRESS_EVERY_S = 0.2
    common.parse_study_args(__doc__)
    doc = common.run_setting("t", "tiny", {flags!r}, 1000)
    common.write_study("t", "a study", {{"tiny": doc}}, [], figure=False)
'''

POOL_STUDY = '''"""A study like studies/10_tuned_default.py, on the synthetic data: a pool of search jobs, then an output."""
import sys
from pathlib import Path

import synthetic_pin  # noqa: F401  (the synthetic data set, here and in every spawned worker)
sys.path.insert(0, {studies!r})
import common  # noqa: E402
import tuning  # noqa: E402

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    common.parse_study_args(__doc__)
    config = tuning.job_config({flags!r}, ["relu", "lwta"], {{"lr": 0.05, "momentum": 0.9, "epochs": 2}}, 5)
    store = synthetic_pin.c.RunDir(here / "runs" / "t", config)
    tuning.run_pool(tuning.pending(store, config, list(range(1000)), ["relu", "lwta"]), "search")
    common.write_text(here / "studies" / "t" / "tuned.json", ["written after the search"])
'''


def descendants(pid: int) -> set:
    """The live (not zombie) processes below pid, read from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:                                     # gone meanwhile
            continue
        if fields[0] != "Z":
            parents.setdefault(int(fields[1]), set()).add(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        kids = parents.get(todo.pop(), set()) - found
        found |= kids
        todo += kids
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def signal_study(script: Path, args: list, sig: int, started) -> tuple:
    """Run a study script until `started()`, send `sig` to it alone; (exit code, stderr, its children then)."""
    proc = subprocess.Popen([sys.executable, str(script), *args], cwd=script.parent, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not started() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1]
    kids = descendants(proc.pid)
    os.kill(proc.pid, sig)
    err = proc.communicate(timeout=120)[1]
    deadline = time.monotonic() + 20                        # multiprocessing's resource tracker leaves last
    while any(alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc.returncode, err, kids


def written(folder: Path) -> dict:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.robustness
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_a_study_alone_stops_its_child_and_nothing_is_rewritten(sig, synthetic, tmp_path):
    bin_ = synthetic_program(tmp_path / "bin").parent
    flags = ["--data-dir", str(synthetic), "--hidden", "16", "--epochs", "2", "--n-train-per-class", "30",
             "--models", "relu,lwta"]
    script = bin_ / "study.py"
    script.write_text(SETTING_STUDY.format(studies=str(ROOT / "studies"), flags=flags))
    outputs = bin_ / "studies" / "t"
    outputs.mkdir(parents=True)
    for name in ("tiny.json", "summary.md"):                # what an earlier, complete run left
        (outputs / name).write_text("the committed output\n")
    before = written(outputs)
    code, err, kids = signal_study(script, ["--workers", "1"], sig,
                                   lambda: any((bin_ / "runs" / "t" / "tiny").glob("seed*.json")))
    assert code == 128 + sig and "Traceback" not in err
    assert kids and not [k for k in kids if alive(k)]       # the compete_to_compute.py child stopped too
    lines = err.splitlines()
    assert lines[-1].startswith(f"interrupted by {signal.Signals(sig).name}: stopped every running job and waited")
    assert all(line.startswith(f"interrupted by {signal.Signals(sig).name}: stopped; ") for line in lines[:-1])
    assert len(lines) <= 2                                  # the child's own line, if it got that far, and the study's
    assert written(outputs) == before                       # nothing (re)written, then or later
    assert not [p for p in bin_.rglob("*.tmp")]


@pytest.mark.robustness
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_sigterm_to_a_tuned_study_alone_stops_its_workers_and_nothing_is_written(synthetic, tmp_path):
    bin_ = synthetic_program(tmp_path / "bin").parent
    flags = ["--data-dir", str(synthetic), "--hidden", "16", "--n-train-per-class", "25"]
    script = bin_ / "study.py"
    script.write_text(POOL_STUDY.format(studies=str(ROOT / "studies"), flags=flags))
    code, err, kids = signal_study(script, ["--workers", "2"], signal.SIGTERM,
                                   lambda: len(list((bin_ / "runs" / "t").glob("seed*.json"))) >= 2)
    assert code == 143 and err.count("\n") == 1 and err.startswith("interrupted by SIGTERM: stopped every running")
    assert len(kids) >= 2 and not [k for k in kids if alive(k)]      # the pool's workers (and resource tracker)
    assert not (bin_ / "studies").exists() and not [p for p in bin_.rglob("*.tmp")]


def test_a_second_signal_while_the_program_stops_is_ignored():
    c.INTERRUPTED.clear()
    with pytest.raises(c.Interrupted):
        c._raise_interrupted(signal.SIGINT, None)
    assert c._raise_interrupted(signal.SIGINT, None) is None       # the study's forwarded copy of the Ctrl-C
    c.INTERRUPTED.clear()
    c.STOP.clear()


TUNED = [p for p in STUDY_SCRIPTS if "run_study(" in p.read_text()]


def keep_options(monkeypatch):
    """Study flags are module state: put them back after the test."""
    for k, v in vars(common.OPTIONS).items():
        monkeypatch.setattr(common.OPTIONS, k, v)


@pytest.mark.parametrize("script", TUNED, ids=[p.stem for p in TUNED])
def test_redraw_of_a_tuned_study_runs_nothing_and_rewrites_its_summary_from_tuned_json(script, tmp_path,
                                                                                       monkeypatch, capsys):
    import runpy
    import shutil
    import tuning
    keep_options(monkeypatch)
    monkeypatch.setattr(tuning, "ROOT", tmp_path)
    for name in ("run_pool", "job_config", "configurations"):       # any of these would start work
        monkeypatch.setattr(tuning, name, lambda *a, **k: pytest.fail("--redraw started the study"))
    monkeypatch.setattr(sys, "argv", [str(script), "--redraw"])
    with pytest.raises(SystemExit, match="tuned.json does not exist yet"):
        runpy.run_path(str(script), run_name="__main__")
    (tmp_path / "studies" / script.stem).mkdir(parents=True)
    shutil.copy(ROOT / "studies" / script.stem / "tuned.json", tmp_path / "studies" / script.stem)
    runpy.run_path(str(script), run_name="__main__")
    committed = (ROOT / "studies" / script.stem / "summary.md").read_text()
    assert (tmp_path / "studies" / script.stem / "summary.md").read_text() == committed
    assert "frontier.png kept as committed" in capsys.readouterr().out


FIXED = [p for p in STUDY_SCRIPTS if p not in TUNED]


@pytest.mark.parametrize("script", FIXED, ids=[p.stem for p in FIXED])
def test_redraw_needs_no_data_and_gives_the_committed_tables_byte_for_byte(script, studies_copy):
    """--redraw of a fixed-rate study, with no data set to be found, rewrites its tables and comparisons
    exactly as committed: the committed outputs are what this code makes of the committed aggregates."""
    folder = studies_copy / "studies" / script.stem
    before = {p: p.read_bytes() for p in sorted(folder.glob("*")) if p.suffix in (".md", ".json")}
    env = {**os.environ, "MNIST_DIR": str(studies_copy / "none"), "FASHION_MNIST_DIR": str(studies_copy / "none"),
           "XDG_CACHE_HOME": str(studies_copy / "cache")}
    done = subprocess.run([sys.executable, str(studies_copy / "studies" / script.name), "--redraw"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=studies_copy)
    assert done.returncode == 0, done.stderr[-2000:]
    after = {p: p.read_bytes() for p in sorted(folder.glob("*")) if p.suffix in (".md", ".json")}
    assert before and [p.name for p in after if after[p] != before.get(p)] == []


@needs_mnist
@pytest.mark.parametrize("flag", ["--redraw", "--dry-run"])
def test_recipes_redraw_and_dry_run_skip_the_settings_not_run_yet_and_say_so(flag, tmp_path, monkeypatch, capsys):
    import runpy
    import shutil
    keep_options(monkeypatch)
    # a dry run's costs count the recipes' images; a redraw reads committed outputs only, no data set
    monkeypatch.setenv("MNIST_DIR", MNIST_DIR if flag == "--dry-run" else str(tmp_path / "no-mnist-here"))
    monkeypatch.setattr(common, "ROOT", tmp_path)
    monkeypatch.setattr(common, "STUDIES", tmp_path / "studies")
    monkeypatch.setattr(common, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(common.subprocess, "Popen", lambda *a, **k: pytest.fail("a setting was run"))
    shutil.copytree(ROOT / "studies" / "15_recipes", tmp_path / "studies" / "15_recipes",     # the 500-epoch
                    ignore=shutil.ignore_patterns("*.md", "*.png", "sdm_500_epochs*"))      # settings: not run
    monkeypatch.setattr(sys, "argv", ["15_recipes.py", flag])
    runpy.run_path(str(ROOT / "studies" / "15_recipes.py"), run_name="__main__")     # no SystemExit
    printed = capsys.readouterr().out
    assert "sdm_500_epochs: skipped, studies/15_recipes/sdm_500_epochs.json does not exist yet" in printed
    assert "sdm_500_epochs_baselines: skipped" in printed and "sdm_200_epochs: skipped" not in printed
    written = tmp_path / "studies" / "15_recipes" / "recipes.md"
    if flag == "--dry-run":
        assert not written.exists()
    else:                                        # every committed setting redrawn, the skipped ones absent
        table = written.read_text()
        assert all(f"| {label} |" in table for label in ("src", "src joint", "sdm 200 epochs", "kwta 5 epochs"))
        assert "| sdm 500 epochs |" not in table and (tmp_path / "studies" / "15_recipes" / "budget.png").is_file()


def run_study_tiny(name: str, flags: list, tmp_path, monkeypatch) -> None:
    """A fixed-rate study script run for real, each setting shrunk to a second or two, outputs in tmp_path."""
    import runpy
    keep_options(monkeypatch)
    monkeypatch.setenv("MNIST_DIR", MNIST_DIR)
    for name_, value in (("ROOT", tmp_path), ("STUDIES", tmp_path / "studies"), ("RUNS", tmp_path / "runs")):
        monkeypatch.setattr(common, name_, value)
    if not (tmp_path / "compete_to_compute.py").exists():               # the program run_setting starts
        (tmp_path / "compete_to_compute.py").symlink_to(ROOT / "compete_to_compute.py")
    real = common.run_setting
    shrink = ["--hidden", "100", "--epochs", "2", "--n-train-per-class", "60"]
    monkeypatch.setattr(common, "run_setting", lambda study, label, args, *a, **k: real(study, label,
                                                                                       [*args, *shrink], *a, **k))
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *flags])
    runpy.run_path(str(ROOT / "studies" / f"{name}.py"), run_name="__main__")


@needs_mnist
@pytest.mark.parametrize("name,title", [("01_toy", "# Study 1: every competitor at the default scale (2 seeds)"),
                                        ("06_layers", "# Study 6: task selectivity per layer (depth 3, 2 seeds)"),
                                        ("08_float64", "# Study 8: the same 2 seeds in float32 and float64")])
def test_a_study_run_with_fewer_seeds_is_titled_with_the_seeds_it_ran(name, title, tmp_path, monkeypatch):
    run_study_tiny(name, ["--seeds", "2", "--workers", "1"], tmp_path, monkeypatch)
    assert (tmp_path / "studies" / name / "summary.md").read_text().splitlines()[0] == title


@needs_mnist
@pytest.mark.parametrize("name", ["06_layers", "07_seed_doc_choices", "08_float64"])
def test_a_dry_run_prints_the_plan_and_not_the_committed_tables(name, tmp_path, monkeypatch, capsys):
    run_study_tiny(name, ["--seeds", "2", "--workers", "1"], tmp_path, monkeypatch)
    before = {p: p.read_bytes() for p in (tmp_path / "studies" / name).iterdir()}
    capsys.readouterr()
    run_study_tiny(name, ["--seeds", "2", "--dry-run"], tmp_path, monkeypatch)
    printed = capsys.readouterr().out
    assert printed.startswith(f"[{name}]") and "|" not in printed and "# Study" not in printed
    assert all(line.startswith(f"[{name}]") for line in printed.splitlines())
    assert {p: p.read_bytes() for p in (tmp_path / "studies" / name).iterdir()} == before


@pytest.mark.robustness
def test_only_runs_the_named_settings_and_a_typo_exits_2_before_any_work(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "studies" / "15_recipes.py"), "--only", "sdm_200_epoch",
                           "--dry-run"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MNIST_DIR": MNIST_DIR or "unused"})
    assert done.returncode == 2 and "argument --only: no setting sdm_200_epoch" in done.stderr
    assert "sdm_200_epochs" in done.stderr and not done.stdout


@needs_mnist
def test_only_reads_the_other_settings_from_their_committed_results(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_DIR", MNIST_DIR)
    monkeypatch.setattr(common, "STUDIES", tmp_path / "studies")
    monkeypatch.setattr(common, "RUNS", tmp_path / "runs")
    tiny = ["--hidden", "16", "--epochs", "1", "--n-train-per-class", "30", "--models", "relu,lwta"]
    common.parse_study_args("test", ["--seeds", "2", "--workers", "1"])
    first = common.run_setting("t", "a", tiny, 2)
    common.parse_study_args("test", ["--seeds", "2", "--workers", "1", "--only", "b"])
    again = common.run_setting("t", "a", tiny, 2)                   # not named: read, not run
    assert again == first and not (tmp_path / "runs" / "t" / "b").exists()
    assert common.run_setting("t", "c", tiny, 2, missing_ok=True) is None
    common.run_setting("t", "b", tiny, 2)
    assert len(list((tmp_path / "runs" / "t" / "b").glob("seed*.json"))) == 4
    common.parse_study_args("test", [])


def test_benjamini_hochberg_matches_a_hand_computation():
    import summarize
    # sorted 0.005, 0.01, 0.03, 0.04: 4p/rank = 0.02, 0.02, 0.04, 0.04, already monotone
    assert summarize.benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    # step-up: a larger p can lower a smaller one's q (0.02 * 3 / 1 = 0.06 > 0.03 * 3 / 3 = 0.03)
    assert summarize.benjamini_hochberg([0.02, 0.03, 0.025]) == pytest.approx([0.03, 0.03, 0.03])


def test_the_summary_says_where_a_variant_failed_and_draws_it_hollow():
    import summarize
    agg = {"variants": {"maxout:k=2": {"n_failed": 20, "n_seeds": 20}, "lwta:k=2": {"n_failed": 0, "n_seeds": 20}}}
    cmp = {"diff": {"mean": -0.11, "ci95": [-0.16, -0.06]}, "wilcoxon_p": 5.7e-6, "wilcoxon_p_holm": 1.7e-5,
           "can_reach_005": True}
    label, _, d = summarize.figure_row("Fashion, lr 0.05: maxout", "maxout:k=2", cmp, agg)
    assert label == "Fashion, lr 0.05: maxout (failed on 20 of 20)" and d["failed"] and d["mean"] == -0.11
    label, _, d = summarize.figure_row("Fashion, lr 0.05: lwta", "lwta:k=2", cmp, agg)
    assert label == "Fashion, lr 0.05: lwta" and not d["failed"]
    acc = {"diff": {"mean": -0.613}}
    assert summarize.cell(cmp, acc, summarize.failed_count(agg["variants"]["maxout:k=2"])).endswith("ACC -0.613<br>failed on 20 of 20")
    assert summarize.cell(cmp, acc, summarize.failed_count(agg["variants"]["lwta:k=2"])).endswith("ACC -0.613")


def test_the_band_row_gives_the_range_over_pairings_and_counts_each_verdict():
    import summarize

    def pairing(f, p, a):
        def cmp(mean):
            return {"diff": {"mean": mean}, "wilcoxon_p_holm": p, "can_reach_005": True}
        return {"aggregate": {"paired": {"metrics": {"forgetting": {"lwta:k=2": cmp(f)}, "acc": {"lwta:k=2": cmp(a)}}}}}
    doc = {"variants": ["relu", "lwta:k=2", "topk"], "eval_seeds": list(range(20)),
           "band": {"pairings": [pairing(-0.045, 0.001, 0.01), pairing(0.052, 0.002, -0.02), pairing(0.003, 0.4, 0.0)],
                    "left_out": ["topk"]}}
    row = summarize.band_row("3 × 1000 units, band", doc)
    cells = [x.strip() for x in row.split("|")]
    assert cells[1] == "3 × 1000 units, band (20, 3 pairings)"
    assert cells[1 + summarize.COLUMNS.index("lwta k=2") + 1] == "-0.045 to +0.052 (more 1, less 1, n.s. 1)<br>ACC -0.020 to +0.010"
    assert cells[1 + summarize.COLUMNS.index("topk 10%") + 1] == "no configuration chosen"
    import matplotlib.pyplot as plt
    from common import forest
    fig, ax = plt.subplots()
    forest(ax, [("band", "C0", {"mean": None, "band": [-0.045, 0.052]})], "t")     # a bar from end to end, no point
    assert [list(line.get_xdata()) for line in ax.lines if line.get_marker() in ("None", "|")][:2] == [[-0.045, 0.052]] * 2
    assert not [line for line in ax.lines if line.get_marker() == "o"]
    plt.close(fig)


def test_every_front_page_verdict_of_the_family_is_a_stored_comparison():
    import summarize
    for claim, rel, path in summarize.PRIMARY:
        cmp = summarize.find(json.loads((ROOT / rel).read_text()), path)
        assert cmp is not None and cmp["n_pairs"] >= 10, claim


def test_each_ablation_cell_differs_from_its_reference_in_exactly_its_ingredient():
    """Study 19's cells: the SDMLP minus one ingredient differs from the SDMLP, and the bare Top-K plus one
    from the bare one, in that ingredient's settings alone; study 20's cells parse, each at one change."""
    import importlib
    s19 = importlib.import_module("19_sdm_ablation")
    keys = {"unit-norm inputs and rows": {"unit_norm"}, "non-negative weights": {"nonneg"}, "bias-free": {"bias"},
            "GABA switch": {"gaba"}, "competition (k = width)": {"k"}}
    for k, epochs, _ in s19.SETTINGS.values():                 # k = 10 at 20 epochs, k = 1 at 50
        cells = s19.make_cells(k, epochs)
        settings = {name: c.parse_variant(spec).settings() for name, spec in cells.items()}

        def changed(a, b):
            return {x for x in settings[a].keys() | settings[b].keys() if settings[a].get(x) != settings[b].get(x)}
        for name in settings:
            if name.startswith("SDMLP − "):
                assert changed(name, "SDMLP") == keys[name[len("SDMLP − "):]], name
            if name.startswith("bare + "):
                assert changed(name, s19.BARE) == keys[name[len("bare + "):]], name
        assert changed(s19.BARE, "SDMLP") == {"unit_norm", "nonneg", "bias", "gaba"}
        assert settings["SDMLP"]["k"] == k and settings["SDMLP"]["gaba"] == 10_000 * epochs
        assert len(set(cells.values())) == len(cells)
    s20 = importlib.import_module("20_kwta_ablation")
    recipe = s20.SETTINGS["recipe"][1]
    kwta = c.parse_variant(recipe["k-winners"])
    for name, spec in recipe.items():
        v = c.parse_variant(spec)
        if name.startswith("k-winners, "):
            assert (v.params != kwta.params) + (v.lr != kwta.lr) + (v.weight_sparsity != kwta.weight_sparsity) == 1
    assert c.parse_variant(recipe["dense, all else equal"]).weight_sparsity == kwta.weight_sparsity


def test_study_18_at_another_budget_scales_the_gaba_switch_and_writes_apart():
    import importlib
    s18 = importlib.import_module("18_sdm_ewc")
    assert s18.spec("SDMLP k=10", 200, 50) == "sdm:k=10:schedule=gaba:gaba=500000:ewc=200:ewc_fisher=sdm"
    assert s18.spec("ReLU", 1e5, 10) == "relu:ewc=100000:ewc_fisher=sdm"
    assert s18.where(Path("x"), 10) == Path("x/18_sdm_ewc")                   # the first budget, where it ran
    assert s18.where(Path("x"), 50) == Path("x/18_sdm_ewc/50_epochs")


def test_ablation_cells_pair_by_seed_with_one_base_or_each_its_own():
    """An ablation's comparisons: a cell minus its base on the seeds both ran (hand-computed means), Holm over
    the table's rows; with a base per cell (study 20's competition in each setting), each against its own."""
    def doc(accs, seeds=range(6)):
        return {"per_seed": [{"seed": s, "summary": {"v": {"acc": a, "forgetting": 0.1, "learning_acc": a,
                                                          "failed": False}}} for s, a in zip(seeds, accs)]}
    cells = {"A": (doc([0.5, 0.6, 0.7, 0.8, 0.9, 0.4]), "v"), "B": (doc([0.6, 0.8, 0.8, 0.9, 1.0, 0.6]), "v"),
             "A2": (doc([0.1] * 6), "v"), "B2": (doc([0.3] * 5, seeds=range(1, 6)), "v")}
    one = common.cell_comparisons(cells, "A", ["B", "A2"])["acc"]
    assert one["B"]["diff"]["mean"] == pytest.approx(0.8 / 6) and one["B"]["n_pairs"] == 6
    assert one["A2"]["diff"]["mean"] == pytest.approx(0.1 - 0.65) and one["A2"]["holm_m"] == 2
    own = common.cell_comparisons(cells, {"B": "A", "B2": "A2"}, ["B", "B2"])["acc"]
    assert own["B"]["diff"]["mean"] == pytest.approx(0.8 / 6)
    assert own["B2"]["diff"]["mean"] == pytest.approx(0.2) and own["B2"]["n_pairs"] == 5   # seed 0 not in B2
    table = common.cell_table(cells, {"B": "A", "B2": "A2"}, ["B", "B2"], "per setting")
    assert "| B2 − A2 | 0 of 5 |" in "\n".join(table) and "ACC − its pair" in table[4]


def test_study_20_chooses_each_rate_on_validation_alone():
    """The rate searches: in each setting the searched network at each rate (only the rate differs), with the
    setting's own flags, on tuning seeds apart from the evaluation seeds; the best mean validation ACC is
    chosen, a rate that failed on any tuning seed never is, ties go to the rate listed first, and the table
    marks the choice."""
    import importlib
    s20 = importlib.import_module("20_kwta_ablation")
    assert set(s20.SEARCHES) <= set(s20.SETTINGS)
    for label, (_, network, _) in s20.SEARCHES.items():
        args = s20.search_args(label)
        assert all(flag in args for flag in s20.SETTINGS[label][0]) and "--val-per-class" in args
        assert network in s20.SETTINGS[label][1].values()          # the setting's own cell, at 1e-4
        searched = c.parse_variant(network)
        for spec, lr in zip(args[args.index("--models") + 1].split(","), s20.SEARCH_LRS, strict=True):
            v = c.parse_variant(spec)
            assert v.lr == pytest.approx(lr) and dataclasses.replace(v, spec=network, lr=None) == searched
    assert [s20.search_names(label) for label in s20.SEARCHES] == [
        ("rate_search", "chosen rate"), ("pixels_rate_search", "pixels chosen rate"),
        ("torch_init_rate_search", "torch init chosen rate")]
    assert s20.chosen_cell("pixels", 3e-5) == ("k-winners at its validation-chosen lr 3e-5, pixel inputs",
                                               s20.KWTA + ":lr=3e-05")
    assert s20.RECIPE_LR in s20.SEARCH_LRS and s20.TUNE_SEED >= s20.SEEDS
    scores = {1e-5: [0.5, 0.6, 0.7], 3e-5: [0.9, None, 0.9], 1e-4: [0.7, 0.6, 0.5], 3e-4: [0.6, 0.6, 0.6]}
    assert s20.chosen_rate(scores) == 1e-5                       # 0.6 ties: the first listed; 3e-5 failed once
    assert s20.chosen_rate({1e-5: [None, 0.1, 0.1]}) is None
    lines = s20.search_lines("recipe", scores, 1e-5)
    assert "| 1e-05 (chosen) | 0.5000 | 0.6000 | 0.7000 | 0.6000 |" in lines
    assert "| 3e-05 | 0.9000 | failed | 0.9000 | failed |" in lines
    assert s20.search_lines("torch init", scores, None)[0] == ("## The rate of k-winners, torch init, chosen on "
                                                               "validation")


def test_study_20_writes_its_tables_with_any_settings_run(tmp_path, monkeypatch):
    """Study 20's outputs from hand-made results: the recipe alone, then with the dense network at a chosen
    rate (a setting without k-winners, which the per-setting table must skip), one more setting and k-winners
    at a chosen rate there (paired with that setting's dense network); each
    cell's row shows its seeds' mean difference from k-winners."""
    import importlib
    s20 = importlib.import_module("20_kwta_ablation")
    monkeypatch.setattr(s20, "ROOT", tmp_path)
    (tmp_path / "studies" / s20.STUDY).mkdir(parents=True)

    def doc(specs, shift):
        return {"per_seed": [{"seed": s, "summary": {v: {"acc": 0.8 - shift * i + 0.01 * s, "forgetting": 0.1,
                                                         "learning_acc": 0.9, "failed": False}
                                                     for i, v in enumerate(specs.values())}} for s in range(6)]}
    settings = dict(s20.SETTINGS)
    settings["chosen rate"] = ([], {"dense at its validation-chosen lr 3e-5": f"{s20.EQUAL_DENSE}:lr=3e-05"})
    docs = {"recipe": doc(settings["recipe"][1], 0.01)}
    s20.write_outputs(docs, settings, [])
    first = json.loads((tmp_path / "studies" / s20.STUDY / "comparisons.json").read_text())
    assert list(first) == ["against k-winners", "against the equal dense network"]
    settings["pixels chosen rate"] = (settings["pixels"][0], dict([s20.chosen_cell("pixels", 3e-4)]))
    docs |= {"chosen rate": doc(settings["chosen rate"][1], 0.0), "pixels": doc(settings["pixels"][1], 0.02),
             "pixels chosen rate": doc(settings["pixels chosen rate"][1], -0.5)}
    s20.write_outputs(docs, settings, ["## search", ""])
    cmp = json.loads((tmp_path / "studies" / s20.STUDY / "comparisons.json").read_text())
    tuned = "k-winners at its validation-chosen lr 3e-4, pixel inputs"
    assert set(cmp["competition in each setting"]["acc"]) == {"k-winners", "k-winners, pixel inputs", tuned}
    pair = cmp["competition in each setting"]["acc"][tuned]                  # against the pixel inputs' dense
    assert pair["diff"]["mean"] == pytest.approx(0.8 - 0.78)
    assert tuned in cmp["against k-winners"]["acc"]
    assert tuned not in cmp["against the equal dense network"]["acc"]
    assert cmp["against k-winners"]["acc"]["dense at its validation-chosen lr 3e-5"]["diff"]["mean"] == pytest.approx(0)
    assert cmp["against k-winners"]["acc"]["dense, all else equal"]["diff"]["mean"] == pytest.approx(-0.01)
    summary = (tmp_path / "studies" / s20.STUDY / "summary.md").read_text()
    assert "## search" in summary and "(not run yet)" in summary and (tmp_path / "studies" / s20.STUDY /
                                                                      "ablation.png").is_file()
