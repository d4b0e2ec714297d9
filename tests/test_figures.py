"""The figure and GIF scripts, on synthetic schema-2 outputs (tests/fake_schema2.py): fast, no training."""
import contextlib
import io
import json
import re
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import fake_schema2 as fake  # noqa: E402
import make_compete_to_compute_gif as gif  # noqa: E402
import visualize_compete_to_compute as viz  # noqa: E402

V3 = ("relu", "lwta", "topk")
V5 = ("relu", "lwta", "topk", "lwta:k=4", "relu:dropout=0.5")
FIGURES = ["training_curves.png", "accuracy_matrix.png", "acc_forgetting.png", "forgetting_paired.png",
           "winner_freq.png"]


def draw(run: dict, out: Path, results=None) -> int:
    return viz.main(["--snapshots", str(run["snapshots"]), "--results", str(results or run["results"]),
                     "--out-dir", str(out)])


def printed_block(stdout: str, header: str) -> list:
    """The indented lines printed under `header`."""
    lines = stdout.splitlines()
    start = lines.index(header) + 1
    block = []
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        block.append(line[2:])
    return block


@pytest.fixture(scope="module")
def run23(tmp_path_factory):
    """T = 2 tasks, V = 3 variants, 5 epochs per task, 3 seeds (files only read by the tests)."""
    return fake.write_fake_run(tmp_path_factory.mktemp("run23"), V3, T=2, E=5, n_seeds=3)


@pytest.fixture(scope="module")
def drawn23(run23, tmp_path_factory):
    out = tmp_path_factory.mktemp("figs23")
    capture = {}
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        capture["code"] = draw(run23, out)
    capture["out"], capture["stdout"] = out, buf.getvalue()
    return capture


@pytest.fixture
def make_run(tmp_path):
    """write_fake_run into a fresh folder of tmp_path."""
    count = iter(range(100))

    def make(**kw):
        return fake.write_fake_run(tmp_path / f"run{next(count)}", **kw)
    return make


@pytest.fixture
def no_w1(monkeypatch):
    """Skip the receptive-field figures (tested on their own) where a test is about something else."""
    monkeypatch.setattr(viz, "plot_receptive_fields", lambda snap, out: ([], []))


def assert_not_blank(path: Path) -> None:
    img = iio.imread(path)
    assert img[..., :3].std() > 5, f"{path.name} is blank"


# ============================================================================ every figure
def test_every_figure_for_two_tasks_three_variants(drawn23):
    out = drawn23["out"]
    assert drawn23["code"] == 0
    expected = FIGURES + ["W1_relu.png", "W1_lwta.png", "W1_topk.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    for name in expected:
        assert_not_blank(out / name)
    for v in V3:                                  # README width: receptive fields at least ~900 px wide
        assert iio.imread(out / f"W1_{v}.png").shape[1] >= 900
    assert "forgetting_bar.png" not in drawn23["stdout"]


def test_every_figure_for_five_tasks_five_variants_with_a_failed_one(make_run, tmp_path, capsys):
    run = make_run(variants=V5, T=5, E=2, n_seeds=4, depth=1, failed="relu:dropout=0.5")
    out = tmp_path / "figs"
    assert draw(run, out) == 0
    expected = FIGURES + [f"W1_{viz.slug(v)}.png" for v in V5]
    assert "W1_relu_dropout=0.5.png" in expected and "W1_lwta_k=4.png" in expected
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    for name in expected:
        assert_not_blank(out / name)
    stdout = capsys.readouterr().out
    assert "relu:dropout=0.5 layer 1: not measured" in stdout
    assert "units hold inf/nan" in stdout          # the diverged variant's weights


def test_single_seed_has_no_paired_figure(make_run, tmp_path, capsys, no_w1):
    run = make_run(variants=("relu", "lwta"), T=2, E=2, n_seeds=1, depth=1)
    out = tmp_path / "figs"
    assert draw(run, out) == 0
    names = {p.name for p in out.iterdir()}
    assert "forgetting_paired.png" not in names and "acc_forgetting.png" in names
    assert "single seed" in capsys.readouterr().out
    notes = []                                   # no results file at all: the snapshot's seed alone
    assert viz.read_results(tmp_path / "absent.json", viz.read_snapshots(run["snapshots"]), notes.append) is None
    assert "absent.json not found" in notes[0]


@pytest.mark.parametrize("kw", [dict(T=1, E=3), dict(T=2, E=2, joint=True), dict(T=3, E=1, failed="lwta")],
                         ids=["one task", "joint", "three tasks one epoch"])
def test_other_shapes_of_run_draw(make_run, tmp_path, kw):
    """The figures that depend on the number of tasks and the schedule (W1 does not), and the GIF."""
    run = make_run(variants=("relu", "lwta"), n_seeds=2, depth=1, **kw)
    snap = viz.read_snapshots(run["snapshots"])
    doc = viz.read_results(run["results"], snap)
    viz.plot_training_curves(snap, tmp_path / "curves.png")
    viz.plot_accuracy_matrix(snap, tmp_path / "matrix.png")
    viz.plot_acc_forgetting(snap, doc, tmp_path / "acc.png")
    viz.plot_winner_freq(snap, tmp_path / "freq.png")
    for name in ("curves.png", "matrix.png", "acc.png", "freq.png"):
        assert_not_blank(tmp_path / name)
    frames = gif.render_frames(snap)
    assert len(frames) == snap["P"] + 1 and not np.array_equal(frames[0], frames[-1])


def test_names_and_colours():
    assert viz.slug("topk:k=10%") == "topk_k=10pct" and viz.slug("relu:dropout=0.5") == "relu_dropout=0.5"
    assert viz.slug("lwta:k=4") == "lwta_k=4" and viz.slug("a b/c") == "a_b_c"
    assert [viz.variant_color(v) for v in ("relu", "lwta", "topk")] == ["#D55E00", "#0072B2", "#009E73"]
    # one colour per variant, whatever else is drawn and in whatever order (issue 17, item 9)
    assert viz.colors(["relu", "sdm", "kwinners"]) == {"relu": "#D55E00", "sdm": "#CC79A7", "kwinners": "#56B4E9"}
    assert viz.colors(["kwinners", "relu"])["kwinners"] == viz.colors(["relu", "lwta", "kwinners"])["kwinners"]
    assert viz.variant_color("relu:sleep=1") == "#000000" and viz.variant_color("relu:bias=0") != "#D55E00"
    shades = {viz.variant_color(v) for v in ("lwta", "lwta:k=4", "topk:k=5%", "topk:k=20%", "topk")}
    assert len(shades) == 5 and all(c.startswith("#") and len(c) == 7 for c in shades)
    assert viz.text_color("lwta") == "#0072B2"


def test_reader_returns_the_schema_2_arrays(run23):
    snap = viz.read_snapshots(run23["snapshots"])
    assert snap["variants"] == list(V3) and snap["T"] == 2 and snap["P"] == 11 and snap["phase_ends"] == [5, 10]
    assert snap["task_labels"] == ["digits 0-4", "digits 5-9"]
    assert snap["curves"]["lwta"].shape == (11, 2) and snap["freq"]["topk"].shape == (2, 2, 32)
    assert viz.SNAPSHOT_SCHEMA == 2


# ============================================================================ GIF
def test_gif_has_one_frame_per_point_plus_held_frame(run23, tmp_path, capsys):
    out = tmp_path / "anim.gif"
    assert gif.main(["--snapshots", str(run23["snapshots"]), "--out", str(out)]) == 0
    frames = iio.imread(out, index=None)
    P = 2 * 5 + 1
    assert frames.shape[0] == P + 1
    assert iio.immeta(out, index=len(frames) - 1)["duration"] == gif.HOLD_MS
    assert out.stat().st_size < 300 * 1024
    assert not np.array_equal(frames[0], frames[-2]) and not np.array_equal(frames[-2], frames[-1])
    assert f"{P + 1} frames" in capsys.readouterr().out


def test_gif_frame_titles(run23, make_run):
    snap = viz.read_snapshots(run23["snapshots"])
    assert gif.frame_title(snap, 0) == "before training \u2014 seed 0"
    assert gif.frame_title(snap, 3) == "epoch 3 of 10 (task 1: digits 0-4) \u2014 seed 0"
    assert gif.frame_title(snap, 5) == "epoch 5 of 10 (task 1: digits 0-4) \u2014 seed 0"
    assert gif.frame_title(snap, 6) == "epoch 6 of 10 (task 2: digits 5-9) \u2014 seed 0"
    assert gif.final_title(snap) == "after training both tasks \u2014 seed 0"
    joint = viz.read_snapshots(make_run(T=3, E=2, joint=True, n_seeds=1)["snapshots"])
    assert gif.frame_title(joint, 2) == "epoch 2 of 2 (all 3 tasks jointly) \u2014 seed 0"


def test_gif_legend_matches_the_png(run23):
    """The GIF frames are drawn by the same CurvePlot as training_curves.png, at the same dpi: the same
    legend font size, line styles and markers."""
    snap = viz.read_snapshots(run23["snapshots"])
    png, anim = viz.CurvePlot(snap), viz.CurvePlot(snap, dpi=gif.GIF_DPI, verdict=True)
    assert gif.GIF_DPI >= viz.DPI
    for a, b in zip(png.legend.get_texts(), anim.legend.get_texts()):
        assert a.get_fontsize() == b.get_fontsize() >= 9
    styles = [(h.get_linestyle(), h.get_marker()) for h in png.legend.legend_handles]
    assert styles == [(h.get_linestyle(), h.get_marker()) for h in anim.legend.legend_handles]
    viz.plt.close("all")


# ============================================================================ bad input
def bad_snapshot_cases(tmp_path: Path, good: Path) -> list:
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    readme = tmp_path / "README.md"
    readme.write_text("# Compete to Compute\n\nA small, exact, fast reproduction.\n")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    old = fake.write_schema1_snapshot(tmp_path / "schema1.npz")
    newer = tmp_path / "schema99.npz"
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(newer, **{**arrays, "schema_version": np.array(99)})
    incomplete = tmp_path / "incomplete.npz"
    np.savez(incomplete, **{k: a for k, a in arrays.items() if k != "curve_lwta"})
    return [(tmp_path / "missing.npz", "not found"), (truncated, "unreadable or truncated"),
            (empty, "unreadable or truncated"),
            (garbage, "not a snapshot file written by compete_to_compute.py"),
            (readme, "not a snapshot file written by compete_to_compute.py"),
            (old, "written with snapshot schema 1 by an older version of compete_to_compute.py"),
            (newer, "schema 99"), (incomplete, "curve_lwta")]


@pytest.mark.robustness
@pytest.mark.parametrize("script", [viz, gif], ids=["visualize", "gif"])
def test_bad_snapshot_gives_one_line_error_naming_file_and_fix(script, run23, tmp_path, capsys):
    for path, what in bad_snapshot_cases(tmp_path, run23["snapshots"]):
        assert script.main(["--snapshots", str(path)]) == 1, path.name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"error: {path}: "), err
        assert what in err and "python compete_to_compute.py --seed 0" in err, err
        assert "Traceback" not in err and "allow_pickle" not in err and ".tmp" not in err, err


@pytest.mark.robustness
def test_corrupt_results_file_is_named(run23, tmp_path, capsys):
    for content in (b"{ not json", b"[1, 2]", b"\xff\xfe not utf-8", b""):
        bad = tmp_path / "bad.json"
        bad.write_bytes(content)
        assert draw(run23, tmp_path / "figs", results=bad) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"error: {bad}: ") and err.count("\n") == 1 and "Traceback" not in err, err


@pytest.mark.robustness
@pytest.mark.parametrize("script,flag", [(viz, "--out-dir"), (gif, "--out")], ids=["visualize", "gif"])
def test_unwritable_output_is_reported(script, flag, run23, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    target = blocker / ("figs" if flag == "--out-dir" else "x.gif")
    assert script.main(["--snapshots", str(run23["snapshots"]), flag, str(target)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {target}") and "cannot write" in err and f"choose another {flag}" in err
    assert err.count("\n") == 1 and ".tmp" not in err


@pytest.mark.robustness
@pytest.mark.parametrize("script", [viz, gif], ids=["visualize", "gif"])
def test_unknown_flag_exits_2_naming_it(script, capsys):
    with pytest.raises(SystemExit) as e:
        script.main(["--colour", "red"])
    assert e.value.code == 2 and "--colour" in capsys.readouterr().err


@pytest.mark.robustness
def test_results_from_another_run_are_not_mixed_in(make_run, tmp_path, capsys, no_w1):
    run = make_run(variants=("relu", "lwta"), T=2, E=1, n_seeds=3, depth=1)
    snap = viz.read_snapshots(run["snapshots"])
    assert viz.read_results(run["results"], snap, note=lambda s: None) is not None
    doc = json.loads(run["results"].read_text())
    doc["config"]["lr"] = 0.123
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    notes = []
    assert viz.read_results(other, snap, note=notes.append) is None
    assert len(notes) == 1 and str(other) in notes[0] and "lr" in notes[0] and "not mixed in" in notes[0]
    out = tmp_path / "figs"
    assert draw(run, out, results=other) == 0
    assert not (out / "forgetting_paired.png").exists()
    assert "not mixed in" in capsys.readouterr().out


@pytest.mark.robustness
def test_stale_figures_of_another_run_are_removed(make_run, tmp_path, capsys):
    out = tmp_path / "figs"
    out.mkdir()
    for name in ("W1_relu.png", "W1_lwta.png", "W1_topk.png", "forgetting_paired.png",   # an earlier run
                 "forgetting_bar.png"):                                                 # a retired name
        (out / name).write_bytes(b"old")
    (out / "notes.txt").write_text("mine")                     # not figures of this script: kept
    (out / "other.png").write_bytes(b"mine")
    assert draw(make_run(variants=("relu", "lwta:k=4"), T=1, E=1, n_seeds=1, depth=1), out) == 0
    names = {p.name for p in out.iterdir()}
    assert {"W1_relu.png", "W1_lwta_k=4.png", "notes.txt", "other.png"} <= names
    assert not names & {"W1_lwta.png", "W1_topk.png", "forgetting_bar.png", "forgetting_paired.png"}
    stdout = capsys.readouterr().out
    assert "removed stale figures" in stdout and "W1_topk.png" in stdout and "forgetting_bar.png" in stdout


# ============================================================================ the numbers the figures show
def test_shared_w1_colour_limits_are_the_max_over_variants(make_run):
    snap = viz.read_snapshots(make_run(variants=V3 + ("lwta:k=4",), T=2, E=1, n_seeds=1)["snapshots"])
    per_variant = [viz.w1_variant_limits(snap, v) for v in snap["variants"]]
    lim_w, lim_d = viz.w1_limits(snap)
    assert lim_w == max(w for w, _ in per_variant) and lim_d == max(d for _, d in per_variant)
    W = snap["W1"]["lwta"][:, :viz.W1_UNITS]
    assert viz.w1_variant_limits(snap, "lwta")[0] == float(np.abs(W).max())
    assert lim_w > 0 and lim_d > 0


def test_shared_w1_colour_limits_ignore_the_inf_of_a_diverged_variant(make_run):
    snap = viz.read_snapshots(make_run(variants=V3, T=2, E=2, n_seeds=1, failed="lwta")["snapshots"])
    assert not np.isfinite(snap["W1"]["lwta"]).all()
    lims = viz.w1_limits(snap)
    assert np.isfinite(lims).all()
    assert lims == tuple(max(viz.w1_variant_limits(snap, v)[i] for v in ("relu", "topk")) for i in (0, 1))
    rel = viz.relative_change(snap["W1"]["lwta"], snap["W1_init"]["lwta"])
    assert np.isinf(rel).any() and np.isfinite(rel).any()


def test_winner_freq_printed_numbers_are_the_figures(drawn23, run23, tmp_path):
    snap = viz.read_snapshots(run23["snapshots"])
    stats = viz.winner_freq_stats(snap)
    expected = [viz.winner_freq_line(v, st) for v in snap["variants"] for st in stats[v]]
    assert printed_block(drawn23["stdout"], "winner_freq.png:") == expected
    assert viz.plot_winner_freq(snap, tmp_path / "w.png") == expected
    # and the numbers are what they say: T = 2, selectivity |f1 - f2| / (f1 + f2) among units that fire
    for v in snap["variants"]:
        for st in stats[v]:
            f1, f2 = snap["freq"][v][0, st["layer"] - 1], snap["freq"][v][1, st["layer"] - 1]
            alive = (f1 + f2) > 0
            sel = np.abs(f1[alive] - f2[alive]) / (f1[alive] + f2[alive])
            assert st["silent"] == int((~alive).sum())
            assert st["share"] == pytest.approx(float(np.sum(sel > viz.SELECTIVE)) / len(f1))   # of all units
            share, silent = viz.winner_freq_text(st)
            assert f"{st['share']:.1%}" in share and f"{st['silent']} of {st['units']}" in silent


def test_selectivity_for_more_tasks():
    f = np.array([[0.4, 0.0, 0.1, 0.0], [0.0, 0.2, 0.1, 0.0], [0.0, 0.2, 0.1, 0.0]])
    # unit 2: 0.2 against the mean 0.1 of the others -> 0.1 / 0.3; the silent unit is left out
    assert viz.selectivity(f).tolist() == pytest.approx([1.0, 1 / 3, 0.0])


def test_a_real_run_is_drawn_by_both_scripts(synthetic, tmp_path, capsys):
    from conftest import c, tiny_args
    assert c.main(tiny_args(tmp_path, synthetic, "--n-seeds", "2", "--workers", "1", "--tasks", "01,23,45",
                            "--models", "relu,lwta:k=4,topk:k=25%")) == 0
    out = tmp_path / "out"
    assert viz.main(["--snapshots", str(out / "snapshots.npz"), "--results", str(out / "results.json"),
                     "--out-dir", str(out / "figs")]) == 0
    names = sorted(p.name for p in (out / "figs").iterdir())
    assert {"training_curves.png", "accuracy_matrix.png", "acc_forgetting.png", "forgetting_paired.png",
            "winner_freq.png"} <= set(names) and len([n for n in names if n.startswith("W1_")]) == 3
    printed = capsys.readouterr().out
    summary = json.loads((out / "results.json").read_text())["headline"]["summary"]
    for v in ("relu", "lwta:k=4"):                       # the printout agrees with each seed's summary
        for layer, share in enumerate(summary[v]["selective"], start=1):
            assert f"{v} layer {layer}: {share:.1%} selective" in printed
    assert gif.main(["--snapshots", str(out / "snapshots.npz"), "--out", str(out / "a.gif")]) == 0
    assert len(iio.imread(out / "a.gif", index=None)) == 3 * 2 + 1 + 1


def test_submask_figure_is_drawn_and_its_printout_matches_the_snapshot(synthetic, tmp_path, capsys):
    from conftest import c, tiny_args
    assert c.main(tiny_args(tmp_path, synthetic, "--workers", "1", "--models", "relu,lwta")) == 0
    out = tmp_path / "out"
    capsys.readouterr()
    assert viz.main(["--snapshots", str(out / "snapshots.npz"), "--out-dir", str(out / "figs")]) == 0
    assert iio.imread(out / "figs" / "submasks.png")[..., :3].std() > 5
    sub = json.loads((out / "results.json").read_text())["headline"]["submasks"]["lwta"]
    gaps = [100 * (k - s) for k, s in zip(sub["knn_acc"], sub["softmax_acc"])]
    assert f"lwta: task 1 {gaps[0]:+.1f} points, task 2 {gaps[1]:+.1f} points" in capsys.readouterr().out


# ============================================================================ colours and long names
def cielab(colour: str) -> np.ndarray:
    """CIELAB (D65) of a #RRGGBB colour."""
    rgb = np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ lin
    f = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(f > (6 / 29) ** 3, np.cbrt(f), f / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def distance(a: str, b: str) -> float:
    """CIE76 colour difference: about 2 is just noticeable, above 10 plainly different side by side."""
    return float(np.linalg.norm(cielab(a) - cielab(b)))


def closest(colours) -> float:
    colours = list(colours)
    return min(distance(a, b) for i, a in enumerate(colours) for b in colours[i + 1:])


LONG = ("relu:lr=3e-06", "kwinners:percent_on=0.05:boost_strength=0:k_inference_factor=1:weight_sparsity=0.5")
SDM = ("relu", "topk:k=10", "sdm:k=10:schedule=gaba:gaba=5000000", "sdm:k=1:schedule=gaba:gaba=5000000")


def project_variant_sets() -> list:
    """Every set of variants this project draws together: each committed results file's, each recipe's, the
    SDM recipe at every budget of study 15, and each --models list the README and docs/ show. The ablations
    (studies 19, 20) are not among them: their figures name every row and colour it by its activation alone,
    since a dozen cells of one activation cannot each have a colour of their own."""
    from conftest import c
    sets = set()

    def walk(x):
        if isinstance(x, dict):
            models = x.get("models")
            if isinstance(models, list) and models and all(isinstance(m, str) for m in models):
                sets.add(tuple(models))
            for y in x.values():
                walk(y)
        elif isinstance(x, list):
            for y in x:
                walk(y)
    ablations = ("19_sdm_ablation", "20_kwta_ablation")
    for path in [ROOT / "results.json", *sorted((ROOT / "studies").glob("**/*.json"))]:
        if not any(a in path.parts for a in ablations) and "runs" not in path.parts:   # committed outputs only
            walk(json.loads(path.read_text()))
    for recipe in c.RECIPES.values():
        flags = list(recipe.flags)
        if "--models" in flags:
            sets.add(tuple(flags[flags.index("--models") + 1].split(",")))
    for epochs in (10, 20, 50, 100, 200, 500):
        n = 10_000 * epochs
        sets.add(("relu", "topk:k=10", f"sdm:k=10:schedule=gaba:gaba={n}", f"sdm:k=1:schedule=gaba:gaba={n}"))
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for models in re.findall(r"--models ([\w:=.%,-]+)", page.read_text()):
            sets.add(tuple(models.split(",")))
    return sorted(s for s in sets if len(s) > 1)


def test_shades_of_one_activation_are_clearly_distinct_and_visible():
    for base in [*viz.ACTIVATION_COLOURS.values(), viz.SLEEP_COLOUR]:
        family = [base] + [viz.nth_shade(base, i) for i in range(len(viz.SHADES))]
        assert len(family) == 5 and closest(family) >= 13, (base, family)
        assert all(distance(c, "#FFFFFF") >= 25 for c in family), family     # no line vanishes on white


def test_a_spec_has_one_colour_everywhere():
    spec = "sdm:k=1:schedule=gaba:gaba=5000000"
    assert viz.variant_color(spec) == viz.variant_color("sdm:gaba=5000000:k=1") == viz.colors(SDM)[spec]
    assert viz.colors(SDM) == viz.colors(SDM[::-1]) == {v: viz.variant_color(v) for v in SDM}
    assert viz.variant_color("lwta:k=2") == viz.variant_color("lwta") != viz.variant_color("lwta:k=4")
    # a method key is a different model: a different colour; at its default (off) the same
    assert viz.variant_color("lwta:ewc=100") != viz.variant_color("lwta") == viz.variant_color("lwta:ewc=0")


def test_the_two_sdm_variants_are_clearly_distinct():
    colours = viz.colors(SDM)
    assert closest(colours.values()) >= 17
    assert distance(viz.variant_color("sdm:k=10"), viz.variant_color("sdm:k=1")) >= 17     # study 15's names


def test_every_set_of_variants_the_project_draws_has_distinct_colours():
    sets = project_variant_sets()
    assert len(sets) > 15 and ("relu", "lwta", "topk") in sets and SDM in sets
    for variants in sets:
        colours = viz.colors(variants)
        assert colours == {v: viz.variant_color(v) for v in variants}, variants    # no spec moved: one colour
        assert closest(colours.values()) >= 17, (variants, colours)


def test_specs_of_one_activation_drawn_together_never_share_a_colour():
    """Two specs whose keys pick the same shade: the later in spec order moves to the next free shade."""
    first = {}
    clash = None
    for k in range(3, 200):
        spec = f"lwta:k={k}"
        choice = viz.shade_choice(viz.changed_keys(spec))
        if choice in first:
            clash = (first[choice], spec)
            break
        first[choice] = spec
    assert clash and viz.variant_color(clash[0]) == viz.variant_color(clash[1])
    drawn = viz.colors(["relu", clash[1], clash[0]])
    assert drawn[clash[0]] == viz.variant_color(clash[0]) and drawn[clash[1]] != drawn[clash[0]]
    assert drawn == viz.colors([clash[0], "relu", clash[1]])                    # whatever the order given
    many = [f"topk:k={k}" for k in range(2, 6)]                                 # four keyed specs: four shades
    assert len(set(viz.colors(["topk", *many]).values())) == 5


def test_spec_lines_breaks_only_after_colons():
    spec = LONG[1]
    for chars in (10, 25, 30, 200):
        text = viz.spec_lines(spec, chars)
        assert text.replace("\n", "") == spec
        assert all(len(line) <= max(chars, max(len(p) + 1 for p in spec.split(":"))) for line in text.split("\n"))
    assert viz.spec_lines("relu", 2) == "relu" and viz.spec_lines(spec, 200) == spec


def test_one_epoch_phases_are_titled_epoch_not_epochs(make_run):
    for E, first, second in ((1, "(epoch 1)", "(epoch 2)"), (2, "(epochs 1-2)", "(epochs 3-4)")):
        snap = viz.read_snapshots(make_run(variants=("relu", "lwta"), T=5, E=E, n_seeds=1, depth=1)["snapshots"])
        plot = viz.CurvePlot(snap)
        titles = [ax.get_title().replace("\u00a0", " ") for ax in plot.fig.axes if ax.get_title().startswith("task")]
        assert titles[0].endswith(first) and titles[1].endswith(second) and "epochs 1)" not in " ".join(titles)
        viz.plt.close(plot.fig)


def boxes_overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("variants,T", [(LONG, 10), (SDM, 5), (V5, 2)], ids=["kwta recipe", "sdm recipe", "five"])
def test_long_variant_names_overlap_nothing(make_run, tmp_path, variants, T):
    """The legend stays clear of the title, and no two titles or tick labels of variants overlap."""
    run = make_run(variants=variants, T=T, E=1, n_seeds=3, depth=2)
    snap = viz.read_snapshots(run["snapshots"])
    doc = viz.read_results(run["results"], snap)

    def extent(artist, renderer):
        return artist.get_window_extent(renderer)

    plot = viz.CurvePlot(snap)
    r = plot.fig.canvas.get_renderer()
    plot.fig.canvas.draw()
    assert not boxes_overlap(extent(plot.title, r), extent(plot.legend, r))
    titles = [extent(ax.title, r) for ax in plot.fig.axes if ax.get_title()]
    assert not any(boxes_overlap(a, b) for i, a in enumerate(titles) for b in titles[i + 1:])
    viz.plt.close(plot.fig)

    drawn = {}
    real_save = viz.save
    try:
        viz.save = lambda fig, path, dpi=viz.DPI: drawn.setdefault(Path(path).name, fig)
        viz.plot_acc_forgetting(snap, doc, tmp_path / "acc.png")
        viz.plot_winner_freq(snap, tmp_path / "freq.png")
        viz.plot_accuracy_matrix(snap, tmp_path / "matrix.png")
    finally:
        viz.save = real_save
    for name, fig in drawn.items():
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        texts = [extent(fig._suptitle, r)] + [extent(ax.title, r) for ax in fig.axes if ax.get_title()]
        if name == "acc.png":                    # the variants' tick labels, level, and the metrics' labels
            texts += [extent(ax.yaxis.label, r) for ax in fig.axes]
            for ax in fig.axes:
                ticks = [t for t in ax.get_xticklabels() if t.get_text()]
                assert all(t.get_rotation() == 0 for t in ticks)
                texts += [extent(t, r) for t in ticks]
        assert not any(boxes_overlap(a, b) for i, a in enumerate(texts) for b in texts[i + 1:]), name
        viz.plt.close(fig)
