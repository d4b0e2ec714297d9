"""The validation split (--val-per-class) and the tuned studies' machinery (studies/tuning.py):
selection rules, the frontier's envelope, and a resumable end-to-end search on real MNIST."""
import json
import sys

import numpy as np
import pytest

from conftest import MNIST_DIR, ROOT, c, needs_mnist, tiny_args

sys.path.insert(0, str(ROOT / "studies"))
import tuning  # noqa: E402


def split_config(data_dir, **kw):
    return {"dataset": "mnist", "data_dir": str(data_dir), "tasks": [[0, 2, 4], [1, 3]], "permuted": None,
            "scenario": "task", "n_train_per_class": 20, "n_train_first": None, "val_per_class": 10, "dtype": "float32", **kw}


def row_index(rows: np.ndarray, table: np.ndarray) -> list:
    """For each row, the indices of the table's rows equal to it."""
    return [np.flatnonzero((table == r).all(axis=1)).tolist() for r in rows]


# ---------------------------------------------------------------------------- the validation split
def test_validation_images_are_balanced_held_out_training_images_disjoint_from_the_subsample(synthetic):
    tasks = c.make_tasks(0, split_config(synthetic))
    train = c.to_float(c.load_dataset("mnist", str(synthetic))["train_images"])
    for t in tasks:
        assert np.bincount(t.y_val, minlength=10)[list(t.classes)].tolist() == [10] * len(t.classes)
        assert set(np.unique(t.y_val)) == set(t.classes)
        val_rows, train_rows = row_index(t.x_val, train), row_index(t.x_train, train)
        assert all(len(r) == 1 for r in val_rows + train_rows)       # every image is one training image
        assert not {r[0] for r in val_rows} & {r[0] for r in train_rows}   # never one the model trains on
        assert t.x_val.dtype == np.float32 and len(t.x_test) == 12 * len(t.classes)   # test set untouched


def test_validation_split_is_reproducible_from_the_seed_and_leaves_training_unchanged(synthetic):
    with_val = c.make_tasks(3, split_config(synthetic))
    again = c._cached_tasks.__wrapped__(3, c.task_key(split_config(synthetic)))
    other_seed = c.make_tasks(4, split_config(synthetic))
    without = c.make_tasks(3, split_config(synthetic, val_per_class=0))
    for a, b, o, w in zip(with_val, again, other_seed, without):
        np.testing.assert_array_equal(a.x_val, b.x_val)
        assert not np.array_equal(a.x_val, o.x_val)
        np.testing.assert_array_equal(a.x_train, w.x_train)        # holding images out changes no draw
        np.testing.assert_array_equal(a.y_train, w.y_train)
        assert w.x_val.shape == (0, 784) and len(w.y_val) == 0        # empty by default


def test_permuted_tasks_permute_their_validation_images_with_the_task(synthetic):
    config = split_config(synthetic, tasks=[list(range(10))] * 3, permuted=3, scenario="domain", n_train_per_class=10,
                          val_per_class=5)
    tasks = c.make_tasks(0, config)
    train = c.to_float(c.load_dataset("mnist", str(synthetic))["train_images"])
    perm_rng = np.random.default_rng(c.seed_streams(0)[4])
    for i, t in enumerate(tasks):
        pixels = np.arange(784) if i == 0 else perm_rng.permutation(784)
        unpermuted = np.empty_like(t.x_val)
        unpermuted[:, pixels] = t.x_val                                # x_val = plain[:, pixels]
        rows = row_index(unpermuted, train)
        assert all(len(r) == 1 for r in rows)
        labels = c.load_dataset("mnist", str(synthetic))["train_labels"]
        assert labels[[r[0] for r in rows]].tolist() == t.y_val.tolist()


def test_held_out_validation_leaves_every_test_number_unchanged_and_adds_val_matrices(synthetic, tmp_path):
    base, _ = c.parse_config(tiny_args(tmp_path, synthetic, "--models", "relu,lwta"))
    val, _ = c.parse_config(tiny_args(tmp_path, synthetic, "--models", "relu,lwta", "--val-per-class", "8"))
    for spec in ("relu", "lwta"):
        a, b = c.run_course(0, spec, base, False), c.run_course(0, spec, val, False)
        assert a["summary"]["R"] == b["summary"]["R"]                  # bit for bit
        assert "val_R" not in a["summary"]
        assert np.shape(b["summary"]["val_R"]) == (2, 2) and np.shape(b["summary"]["val_last"]) == (2, 2)
        assert b["summary"]["val_last"][-1] == b["summary"]["val_R"][-1]    # the last epoch is the phase end
        assert all(0 <= x <= 1 for row in b["summary"]["val_R"] for x in row)


@pytest.mark.robustness
def test_val_per_class_beyond_the_images_left_names_the_flag(capsys):
    with pytest.raises(SystemExit) as e:
        c.parse_config(["--n-train-per-class", "5000", "--val-per-class", "1000"])
    assert e.value.code == 2
    assert "argument --val-per-class: with --n-train-per-class 5000, at most 421" in capsys.readouterr().err


# ---------------------------------------------------------------------------- selection rules
def job(first, final, failed=None):
    """A hand-made job summary: validation accuracy on task 1 after task 1, and per task at the end."""
    if failed:
        return {"failed": {"reason": failed}}
    return {"failed": None, "val_R": [[first, 0.0], final]}


def test_selection_rules_on_a_hand_made_table_with_ties_and_failures():
    table = {0: [job(0.90, [0.80, 0.90]), job(0.92, [0.82, 0.88])],    # first 0.91, all 0.85
             1: [job(0.99, [0.70, 0.70]), job(0.99, [0.99, 0.99], "diverged")],   # best first, but failed once
             2: [job(0.91, [0.90, 0.90]), job(0.91, [0.80, 0.80])],    # first 0.91 (tie with 0), all 0.85 (tie)
             3: [job(0.80, [0.86, 0.86]), job(0.80, [0.86, 0.84])]}    # best all (0.855)
    scores = {rule: tuning.rule_scores({i: [tuning.job_scores(s) for s in seeds] for i, seeds in table.items()}, rule)
              for rule in tuning.RULES}
    assert scores["first"][1] is None and scores["all"][1] is None     # failed on one seed: never selected
    assert scores["first"][0] == pytest.approx(0.91) and scores["all"][3] == pytest.approx(0.855)
    assert tuning.select(scores["first"]) == 0                         # tie 0.91 / 0.91: the first drawn
    assert tuning.select(scores["all"]) == 3
    assert tuning.select({0: None, 1: None}) is None                   # every configuration failed
    assert tuning.select({4: 0.5, 2: 0.5}) == 2


def summary_of(acc1, acc2):
    return {"failed": None, "R": [[acc1, 0.0], [acc1 - 0.1, acc2]], **c.continual_metrics(
        np.array([[acc1, 0.0], [acc1 - 0.1, acc2]]))}


def test_a_variant_with_no_selected_configuration_is_left_out_of_the_evaluation_and_named():
    table = {"relu": {0: {s: summary_of(0.9, 0.9) for s in range(6)}},
             "lwta": {1: {s: summary_of(0.95, 0.9) for s in range(6)}}, "sdm": {}}
    ev = tuning.evaluation(table, {"relu": 0, "lwta": 1, "sdm": None}, ["relu", "lwta", "sdm"], list(range(6)))
    assert ev["left_out"] == ["sdm"] and list(ev["aggregate"]["variants"]) == ["relu", "lwta"]
    assert ev["aggregate"]["paired"]["metrics"]["acc"]["lwta"]["better"] == 6
    assert tuning.evaluation(table, {"relu": None, "lwta": 1, "sdm": None}, ["relu", "lwta", "sdm"], [0]) is None


def scored(val_final, acc, failed=None):
    """A job summary with a validation ACC at the end (val_final) and a test ACC (acc) on two tasks."""
    if failed:                                  # a failed run keeps its test numbers (chance after a divergence)
        return {**summary_of(acc, acc), "failed": {"reason": failed}}
    return {**summary_of(acc, acc), "val_R": [[0.9, 0.0], [val_final, val_final]]}


def test_leave_one_seed_out_picks_on_the_other_seeds_and_tests_on_the_held_out_one():
    """relu: configuration 1 is better on seeds 1-2 only; held out, seed 0 and 3 see 1's mean over the others
    fall below 0's 0.5 (0.367), seeds 1 and 2 see it above (0.633). lwta: 2 would win on the others' mean for
    seed 2 but failed on seed 1, so it is never picked while seed 1 is among the others; held out on seed 1,
    it is picked and its failure there is an outcome of that seed."""
    seeds = [0, 1, 2, 3]
    table = {"relu": {0: {s: scored(0.5, 0.80) for s in seeds},
                      1: {s: scored(v, 0.90) for s, v in zip(seeds, (0.9, 0.1, 0.1, 0.9))}},
             "lwta": {0: {s: scored(0.6, 0.85) for s in seeds},
                      2: {0: scored(0.95, 0.7), 1: scored(0.0, 0.7, "diverged"), 2: scored(0.95, 0.7),
                          3: scored(0.95, 0.7)}}}
    loo = tuning.leave_one_out(table, ["relu", "lwta"], seeds)
    assert loo["chosen"] == {"relu": {"0": 2, "1": 2}, "lwta": {"0": 3, "2": 1}}
    got = {r["seed"]: (r["summary"]["relu"], r["summary"]["lwta"]["failed"]) for r in loo["per_seed"]}
    assert got == {0: (table["relu"][0][0], None), 1: (table["relu"][1][1], {"reason": "diverged"}),
                   2: (table["relu"][1][2], None), 3: (table["relu"][0][3], None)}
    lwta = loo["aggregate"]["variants"]["lwta"]
    assert lwta["n_failed"] == 1 and lwta["acc"]["n"] == 4          # the failed run is counted, at what it scored
    assert loo["aggregate"]["paired"]["metrics"]["acc"]["lwta"]["without_failed"]["n_pairs"] == 3


def test_leave_one_seed_out_equals_a_brute_force_argmax_over_the_other_seeds():
    rng = np.random.default_rng(5)
    seeds, configs = list(range(7)), range(5)
    table = {v: {i: {s: scored(float(rng.random()), float(rng.random())) for s in seeds} for i in configs}
             for v in ("relu", "topk")}
    loo = tuning.leave_one_out(table, ["relu", "topk"], seeds)
    for r in loo["per_seed"]:
        s = r["seed"]
        for v in ("relu", "topk"):
            means = [np.mean([table[v][i][t]["val_R"][-1][0] for t in seeds if t != s]) for i in configs]
            assert r["summary"][v] is table[v][int(np.argmax(means))][s]
    assert tuning.leave_one_out({"relu": {}, "topk": table["topk"]}, ["relu", "topk"], seeds) is None


def test_the_band_runs_each_variants_best_configurations_and_pairs_every_rank_with_every_baseline_rank():
    tune, seeds = [1000, 1001], list(range(6))
    val = {"relu": {0: 0.8, 1: 0.9, 2: 0.7, 3: 0.85}, "lwta": {0: 0.6, 1: 0.95, 2: 0.94, 3: None}}
    search = {v: {i: {t: scored(x, 0.5) if x is not None else scored(0.0, 0.5, "diverged") for t in tune}
                  for i, x in cfg.items()} for v, cfg in val.items()}
    ranks = {v: tuning.ranked(search, v, tune) for v in val}
    assert ranks == {"relu": [1, 3, 0], "lwta": [1, 2, 0]}            # best first; a failed configuration never
    assert ranks["relu"][0] == tuning.select(tuning.rule_scores(
        {i: [tuning.job_scores(search["relu"][i][t]) for t in tune] for i in search["relu"]}, "all"))  # the pick
    table = {"relu": {i: {s: summary_of(0.9, 0.90 - 0.01 * i) for s in seeds} for i in (0, 1, 3)},
             "lwta": {i: {s: summary_of(0.9, 0.95 - 0.1 * i + 0.001 * s) for s in seeds} for i in (0, 1, 2)}}
    bd = tuning.band(table, ranks, ["relu", "lwta"], seeds)
    assert len(bd["pairings"]) == 9 and bd["left_out"] == []
    p = next(x for x in bd["pairings"] if (x["variant_rank"], x["baseline_rank"]) == (2, 3))
    assert p["picks"] == {"relu": 0, "lwta": 2}
    assert p["aggregate"] == tuning.evaluation(table, {"relu": 0, "lwta": 2}, ["relu", "lwta"], seeds)["aggregate"]
    lines = tuning.band_lines({"band": bd, "variants": ["relu", "lwta"], "eval_seeds": seeds})
    row = next(line for line in lines if line.startswith("| lwta |"))
    means = [np.mean([table["lwta"][i][s]["acc"] - table["relu"][j][s]["acc"] for s in seeds])  # by hand
             for i in (0, 1, 2) for j in (0, 1, 3)]
    assert f"{min(means):+.4f} to {max(means):+.4f}" in row and "higher" in row and "lower" in row
    assert tuning.band(table, {"relu": [], "lwta": [1]}, ["relu", "lwta"], seeds) is None


def test_frontier_leaves_out_a_variant_without_points_and_pairs_the_others_by_seed():
    pts = lambda old: np.array([[0.90, old], [0.95, old - 0.1]])   # noqa: E731
    points = {"relu": {s: pts(0.8) for s in range(6)}, "lwta": {s: pts(0.9) for s in range(6)},
              "sdm": {s: np.zeros((0, 2)) for s in range(6)}}
    fr = tuning.frontier(points, ["relu", "lwta", "sdm"])
    assert fr["left_out"] == ["sdm"] and fr["span"] == pytest.approx([0.85, 0.95])
    assert fr["paired"]["lwta"]["diff"]["mean"] == pytest.approx(0.1) and fr["paired"]["lwta"]["better"] == 6
    assert fr["mean"]["relu"] == pytest.approx(np.mean(tuning.envelope(pts(0.8), np.linspace(0.85, 0.95, 21))))
    assert tuning.frontier({"relu": points["sdm"], "lwta": points["lwta"]}, ["relu", "lwta"]) is None
    low = tuning.frontier(points, ["relu", "lwta", "sdm"], floor=0.6)        # down to a chosen operating point
    assert low["span"] == pytest.approx([0.6, 0.95])
    assert low["mean"]["relu"] == pytest.approx(np.mean(tuning.envelope(pts(0.8), np.linspace(0.6, 0.95, 21))))
    assert tuning.frontier(points, ["relu", "lwta"], floor=0.9)["span"] == pytest.approx([0.85, 0.95])  # never less


def test_the_frontier_leaves_out_a_variant_no_selection_rule_chose_even_if_the_fixed_setting_ran_it():
    ev = lambda left: {"left_out": left}                                # noqa: E731
    evaluations = {"first": ev(["sdm"]), "all": ev(["sdm"]), tuning.FIXED: ev([])}
    assert tuning.never_chosen(["relu", "topk", "sdm"], evaluations, None) == {"sdm"}
    assert tuning.never_chosen(["relu", "topk", "sdm"], evaluations, ev([])) == set()      # chosen leaving seeds out
    assert tuning.never_chosen(["relu", "sdm"], {"first": ev(["sdm"]), "all": None}, ev(["sdm"])) == {"sdm"}


# ---------------------------------------------------------------------------- the frontier's envelope
def test_envelope_against_brute_force_on_a_hand_made_point_set():
    points = np.array([[0.90, 0.50], [0.80, 0.70], [0.95, 0.40], [0.80, 0.60], [0.60, 0.95], [0.70, 0.65]])
    grid = np.array([0.50, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95, 0.96])
    brute = [max((o for n, o in points if n >= x), default=np.nan) for x in grid]
    np.testing.assert_array_equal(tuning.envelope(points, grid), brute)
    np.testing.assert_array_equal(tuning.envelope(points, grid)[:4], [0.95, 0.95, 0.70, 0.70])
    assert np.isnan(tuning.envelope(points, grid)[-1])                 # nothing reaches 0.96
    rng = np.random.default_rng(0)
    cloud, xs = rng.random((200, 2)), rng.random(50)
    np.testing.assert_array_equal(tuning.envelope(cloud, xs),
                                  [max((o for n, o in cloud if n >= x), default=np.nan) for x in xs])


def test_frontier_points_read_the_last_task_epochs():
    summary = {"failed": None, "val_last": [[0.9, 0.2, 0.5], [0.7, 0.5, 0.8]]}
    np.testing.assert_allclose(tuning.frontier_points(summary), [[0.5, 0.55], [0.8, 0.6]])
    assert tuning.frontier_points({"failed": {"reason": "diverged"}}).shape == (0, 2)


def test_configurations_start_with_the_fixed_setting_and_shorter_searches_are_prefixes():
    long, short = tuning.configurations(12, 5), tuning.configurations(4, 5)
    assert long[0] == {"lr": 0.05, "momentum": 0.9, "epochs": 5} and long[:4] == short
    assert all(tuning.LR_RANGE[0] <= x["lr"] <= tuning.LR_RANGE[1] and x["momentum"] in tuning.MOMENTA
               and x["epochs"] in tuning.EPOCHS for x in long[1:])


# ---------------------------------------------------------------------------- end to end
class Interrupt(Exception):
    pass


@needs_mnist
@pytest.mark.robustness
def test_tiny_search_on_real_mnist_interrupted_and_resumed_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    monkeypatch.setattr(tuning, "EPOCHS", (1,))
    monkeypatch.setattr(tuning, "EVAL_SEEDS", 2)
    monkeypatch.setattr(tuning.OPTIONS, "workers", 2)
    for flag, default in {"seeds": None, "dry_run": False, "redraw": False, "only": None, "loo": False,
                          "band": False}.items():      # whatever command line an earlier test parsed
        monkeypatch.setattr(tuning.OPTIONS, flag, default, raising=False)
    args = ["--data-dir", MNIST_DIR, "--hidden", "40", "--n-train-per-class", "200"]

    def study(root):
        (root / "studies").mkdir(parents=True, exist_ok=True)
        monkeypatch.setattr(tuning, "ROOT", root)
        monkeypatch.setattr(tuning, "RUNS", root / "runs")
        doc = tuning.run_study("tiny", "tiny", args, ["relu", "lwta"], n_configs=2, epochs=1, tune_seeds=2,
                               val=10, fixed=True, notes=[])
        return {k: v for k, v in doc.items() if k not in ("environment", "core_minutes")}   # times differ

    whole = study(tmp_path / "whole")
    saved, real_save = [], c.RunDir.save

    def save_then_stop(self, result):
        real_save(self, result)
        saved.append(result["seed"])
        if len(saved) == 3:
            raise Interrupt
    monkeypatch.setattr(c.RunDir, "save", save_then_stop)
    with pytest.raises(Interrupt):
        study(tmp_path / "cut")
    assert len(list((tmp_path / "cut" / "runs" / "tiny").glob("c*/seed*.json"))) == 3
    assert not (tmp_path / "cut" / "studies" / "tiny" / "tuned.json").exists()
    monkeypatch.setattr(c.RunDir, "save", real_save)
    resumed = study(tmp_path / "cut")
    assert resumed == whole
    ev = whole["evaluation"]["all"]["aggregate"]["variants"]
    assert all(ev[v]["n_seeds"] == 2 and ev[v]["learning_acc"]["mean"] > 0.75 for v in ("relu", "lwta"))  # chance 0.2
    assert (tmp_path / "whole" / "studies" / "tiny" / "frontier.png").stat().st_size > 10_000
    assert whole["frontier"]["on"] == "tuning" and whole["frontier"]["seeds"] == whole["tune_seeds"]
    monkeypatch.setattr(tuning.OPTIONS, "loo", True, raising=False)   # every configuration on the evaluation seeds:
    monkeypatch.setattr(tuning.OPTIONS, "band", True, raising=False)  # the frontier is read there, down to the picks
    loo = study(tmp_path / "whole")
    ranks = loo["band"]["ranks"]
    assert len(loo["band"]["pairings"]) == len(ranks["relu"]) * len(ranks["lwta"]) >= 1
    assert ranks["relu"][0] == loo["selected"]["all"]["relu"] and "## Evaluation at each of the 3 best" in \
        (tmp_path / "whole" / "studies" / "tiny" / "summary.md").read_text()
    fr, picked = loo["frontier"], [r["summary"][v]["val_last"][-1][-1] for ev in [*loo["evaluation"].values(),
                                   loo["leave_one_out"]] for r in ev["per_seed"] for v in r["summary"]]
    assert fr["on"] == "evaluation" and fr["seeds"] == [0, 1] and fr["span"][0] <= min(picked) + 1e-12


# ---------------------------------------------------------------------------- search jobs read no test image
def test_a_search_job_reads_no_test_image_and_scores_what_a_tested_job_scores(synthetic, monkeypatch, tmp_path):
    config = c.parse_config(tiny_args(tmp_path, synthetic, "--tasks", "01,23,45", "--val-per-class", "5"))[0]
    tested = c.run_course(0, "relu", config, headline=False)
    real = c.evaluate

    def no_test(model, task, with_freq=False, chunk=1024, split="test"):
        assert split == "val", "a search job read test images"
        return real(model, task, with_freq, chunk, split)

    monkeypatch.setattr(c, "evaluate", no_test)
    search = c.run_course(0, "relu", {**config, "no_test": True}, headline=False)
    assert search["summary"]["val_R"] == tested["summary"]["val_R"]          # the same training, bit for bit
    assert search["summary"]["val_last"] == tested["summary"]["val_last"]
    assert search["summary"]["failed"] is None and "acc" not in search["summary"]
    assert all(a is None for row in search["summary"]["R"] for a in row)


def test_a_search_job_that_learns_nothing_is_marked_on_validation_accuracy_and_trains_on(synthetic, tmp_path):
    config = c.parse_config(tiny_args(tmp_path, synthetic, "--tasks", "01,23", "--val-per-class", "5",
                                      "--lr", "1e-9", "--epochs", "1"))[0]
    out = c.run_course(0, "relu", {**config, "no_test": True}, headline=False)
    failed = out["summary"]["failed"]
    assert failed["reason"] == "learned nothing" and failed["detail"].startswith("validation accuracy")
    assert out["summary"]["val_R"][0][0] is not None and out["summary"]["val_R"][1][1] is not None   # task 2 ran


def test_the_studies_search_folders_are_separate_and_marked_no_test(synthetic, tmp_path):
    config = c.parse_config(tiny_args(tmp_path, synthetic, "--val-per-class", "5"))[0]
    stores = tuning.search_stores(tmp_path, [config, {**config, "lr": 0.01}])
    assert [s.path.name for s in stores] == ["c00-search", "c01-search"]
    assert all(s.settings["no_test"] is True for s in stores)
    assert c.RunDir(tmp_path / "plain", config).settings["no_test"] is False


@needs_mnist
@pytest.mark.robustness
def test_ctrl_c_in_a_tuned_study_says_one_line_and_exits_130(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tuning, "EPOCHS", (1,))
    monkeypatch.setattr(tuning.OPTIONS, "workers", 1)
    monkeypatch.setattr(tuning, "ROOT", tmp_path)
    monkeypatch.setattr(tuning, "RUNS", tmp_path / "studies" / "runs")
    saved, real_save = [], c.RunDir.save

    def ctrl_c_at_the_third_job(self, result):
        if len(saved) == 2:
            raise KeyboardInterrupt
        real_save(self, result)
        saved.append(result["seed"])
    monkeypatch.setattr(c.RunDir, "save", ctrl_c_at_the_third_job)
    with pytest.raises(SystemExit) as e:
        tuning.run_study("tiny", "tiny", ["--data-dir", MNIST_DIR, "--hidden", "40", "--n-train-per-class", "100"],
                         ["relu", "lwta"], n_configs=2, epochs=1, tune_seeds=2, val=10, fixed=True, notes=[])
    assert e.value.code == 130
    assert capsys.readouterr().err == ("interrupted: stopped; 2 of 8 search jobs saved in studies/runs/, no study "
                                       "output written; run the study again to resume\n")
    assert len(list((tmp_path / "studies" / "runs" / "tiny").glob("c*/seed*.json"))) == 2
    assert not (tmp_path / "studies" / "tiny").exists()
