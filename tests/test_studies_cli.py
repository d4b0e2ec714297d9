"""Issue 17, item 3: every study script reads its command line first (--help, --seeds, --workers,
--dry-run) and shows progress."""
import json
import subprocess
import sys

import pytest

from conftest import MNIST_DIR, ROOT, needs_mnist

STUDY_SCRIPTS = sorted((ROOT / "studies").glob("[0-9][0-9]_*.py"))
sys.path.insert(0, str(ROOT / "studies"))
import common  # noqa: E402


def test_there_are_study_scripts():
    assert len(STUDY_SCRIPTS) >= 15


@pytest.mark.parametrize("script", STUDY_SCRIPTS, ids=[p.stem for p in STUDY_SCRIPTS])
def test_help_prints_the_studys_description_and_runs_nothing(script, tmp_path):
    before = sorted((ROOT / "studies" / "runs").rglob("*")) if (ROOT / "studies" / "runs").exists() else []
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert done.returncode == 0 and "--dry-run" in done.stdout and "--seeds" in done.stdout
    assert done.stdout.split("\n\n")[1].strip()                    # the study's own description
    after = sorted((ROOT / "studies" / "runs").rglob("*")) if (ROOT / "studies" / "runs").exists() else []
    assert after == before


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


@needs_mnist
@pytest.mark.parametrize("flag", ["--redraw", "--dry-run"])
def test_recipes_redraw_and_dry_run_skip_the_settings_not_run_yet_and_say_so(flag, tmp_path, monkeypatch, capsys):
    import runpy
    import shutil
    keep_options(monkeypatch)
    monkeypatch.setenv("MNIST_DIR", MNIST_DIR)                       # the costs count the recipes' images
    monkeypatch.setattr(common, "ROOT", tmp_path)
    monkeypatch.setattr(common, "STUDIES", tmp_path / "studies")
    monkeypatch.setattr(common, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(common.subprocess, "Popen", lambda *a, **k: pytest.fail("a setting was run"))
    shutil.copytree(ROOT / "studies" / "15_recipes", tmp_path / "studies" / "15_recipes",
                    ignore=shutil.ignore_patterns("*.md", "*.png"))
    monkeypatch.setattr(sys, "argv", ["15_recipes.py", flag])
    runpy.run_path(str(ROOT / "studies" / "15_recipes.py"), run_name="__main__")     # no SystemExit
    printed = capsys.readouterr().out
    assert "sdm_200_epochs: skipped, studies/15_recipes/sdm_200_epochs.json does not exist yet" in printed
    assert "sdm_500_epochs: skipped" in printed and "sdm_100_epochs: skipped" not in printed
    written = tmp_path / "studies" / "15_recipes" / "recipes.md"
    if flag == "--dry-run":
        assert not written.exists()
    else:                                        # every committed setting redrawn, the skipped ones absent
        table = written.read_text()
        assert all(f"| {label} |" in table for label in ("src", "src joint", "sdm 100 epochs", "kwta 5 epochs"))
        assert "| sdm 200 epochs |" not in table and (tmp_path / "studies" / "15_recipes" / "budget.png").is_file()


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
