"""Issue 26, a newcomer's day round two: the command-line items. Each case here failed before its fix."""
import json

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
