"""Issue 18: the methods studies' selection (studies/methods.py) reads validation numbers only, never picks a
setting that failed on a tuning seed, and breaks ties towards the lower learning rate and weaker strength."""
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "studies"))
import methods  # noqa: E402


def job(end, after_two=(0.5, 0.5), failed=None):
    """A search job's summary: validation accuracy after task 2 and at the end (three tasks)."""
    return {"failed": failed, "val_R": [[0.9, 0.0, 0.0], [*after_two, 0.0], list(end)]}


def test_families_spell_out_every_strength_of_the_grid():
    assert methods.family("lwta", "alone", methods.GRIDS) == ["lwta"]
    assert methods.family("sdm", "ewc", {"ewc": (1, 1e4)}) == ["sdm:ewc=1", "sdm:ewc=10000"]


def test_each_rule_reads_its_own_validation_numbers():
    assert methods.scores(job([0.3, 0.6, 0.9], after_two=(0.2, 0.8))) == {"all": 0.6, "two": 0.5}
    assert methods.scores(job([1, 1, 1], failed={"reason": "diverged"})) == {"all": None, "two": None}


def test_a_setting_that_failed_on_any_tuning_seed_is_never_picked_and_ties_go_to_the_first():
    search = {"relu:l2=1": {0: {7: job([0.5] * 3), 8: job([0.5] * 3)}},
              "relu:l2=10": {0: {7: job([0.9] * 3), 8: job([0.9] * 3, failed={"reason": "diverged"})},
                             1: {7: job([0.5] * 3), 8: job([0.5] * 3)}}}
    candidates = [(0, "relu:l2=1"), (0, "relu:l2=10"), (1, "relu:l2=10")]
    assert methods.pick(search, candidates, [7, 8], "all") == (0, "relu:l2=1")
    search["relu:l2=10"][1] = {7: job([0.6] * 3), 8: job([0.5] * 3)}
    assert methods.pick(search, candidates, [7, 8], "all") == (1, "relu:l2=10")
    assert methods.pick(search, candidates[1:2], [7, 8], "all") is None     # every candidate failed
    assert methods.pick(search, candidates, [7, 8, 9], "all") is None       # a tuning seed not run yet


def test_the_rules_flag_takes_known_rules_only(capsys):
    import pytest
    from common import parse_study_args
    assert parse_study_args("doc", ["--rules", "all"], extra=methods.rules_flag).rules == ["all"]
    with pytest.raises(SystemExit):
        parse_study_args("doc", ["--rules", "all,first"], extra=methods.rules_flag)
    assert "argument --rules: must be rules from all, two" in capsys.readouterr().err
    parse_study_args("doc", [], extra=methods.rules_flag)                    # back to the defaults
