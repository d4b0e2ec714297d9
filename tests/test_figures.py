"""The figure and GIF scripts, run on the snapshots of a tiny run made here."""
import json

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import c, tiny_args

import make_compete_to_compute_gif as gif
import visualize_compete_to_compute as viz


@pytest.fixture
def tiny_run(synthetic, tmp_path):
    """A 2-seed, 2-epochs-per-task run on the synthetic data: results.json + snapshots.npz."""
    assert c.main(tiny_args(tmp_path, synthetic, "--n-seeds", "2", "--workers", "1")) == 0
    return tmp_path / "out"


def test_visualize_writes_every_figure_at_its_size(tiny_run, capsys):
    out = tiny_run / "figs"
    assert viz.main(["--snapshots", str(tiny_run / "snapshots.npz"), "--results", str(tiny_run / "results.json"),
                     "--out-dir", str(out)]) == 0
    expected = {"training_curves.png": (7.5, 4.2), "forgetting_bar.png": (10.4, 4.2),
                "forgetting_paired.png": (5.6, 5.2), "W1_relu.png": (10.5, 5.2), "W1_lwta.png": (10.5, 5.2),
                "W1_topk.png": (10.5, 5.2), "winner_freq.png": (9.0, 9.0)}
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    for name, (w, h) in expected.items():
        img = iio.imread(out / name)
        dpi = viz.W1_DPI if name.startswith("W1_") else viz.DPI
        assert img.shape[:2] == (round(h * dpi), round(w * dpi)), name
        assert img[..., :3].std() > 5, f"{name} is blank"
    assert "lwta layer 2" in capsys.readouterr().out


def test_visualize_single_seed_has_no_multi_seed_figure(tiny_run):
    out = tiny_run / "figs"
    assert viz.main(["--snapshots", str(tiny_run / "snapshots.npz"), "--results", str(tiny_run / "absent.json"),
                     "--out-dir", str(out)]) == 0
    assert not (out / "forgetting_paired.png").exists()
    assert iio.imread(out / "forgetting_bar.png").shape[1] == round(5.2 * viz.DPI)


def test_gif_has_one_frame_per_evaluation_point_plus_the_held_frame(tiny_run, capsys):
    out = tiny_run / "anim.gif"
    assert gif.main(["--snapshots", str(tiny_run / "snapshots.npz"), "--out", str(out)]) == 0
    frames = iio.imread(out, index=None)
    assert frames.shape == (2 * 2 + 1 + 1, gif.SIZE_IN[1] * gif.DPI, gif.SIZE_IN[0] * gif.DPI, 3)
    assert iio.immeta(out, index=len(frames) - 1)["duration"] == gif.HOLD_MS
    assert out.stat().st_size < 300 * 1024
    assert not np.array_equal(frames[0], frames[-1])


def bad_snapshot_cases(tmp_path, good):
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    other = tmp_path / "other_schema.npz"
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["schema_version"] = np.array(99)
    np.savez(other, **arrays)
    return [(tmp_path / "missing.npz", "not found"), (truncated, "unreadable or truncated"),
            (garbage, "unreadable or truncated"), (other, "schema 99")]


@pytest.mark.robustness
@pytest.mark.parametrize("script", [viz, gif], ids=["visualize", "gif"])
def test_bad_snapshot_gives_one_line_error_naming_file_and_fix(script, tiny_run, capsys):
    for path, what in bad_snapshot_cases(tiny_run, tiny_run / "snapshots.npz"):
        assert script.main(["--snapshots", str(path)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
        assert str(path) in err and what in err and "python compete_to_compute.py --seed 0" in err


@pytest.mark.robustness
def test_corrupt_results_file_is_named(tiny_run, capsys):
    bad = tiny_run / "bad.json"
    bad.write_text("{ not json")
    assert viz.main(["--snapshots", str(tiny_run / "snapshots.npz"), "--results", str(bad),
                     "--out-dir", str(tiny_run / "figs")]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and err.count("\n") == 1


@pytest.mark.robustness
@pytest.mark.parametrize("script,flag", [(viz, "--out-dir"), (gif, "--out")], ids=["visualize", "gif"])
def test_unwritable_output_is_reported(script, flag, tiny_run, capsys):
    blocker = tiny_run / "a_file"
    blocker.write_text("x")
    target = blocker / ("figs" if flag == "--out-dir" else "x.gif")
    assert script.main(["--snapshots", str(tiny_run / "snapshots.npz"), flag, str(target)]) == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and err.count("\n") == 1


@pytest.mark.robustness
@pytest.mark.parametrize("script", [viz, gif], ids=["visualize", "gif"])
def test_unknown_flag_exits_2_naming_it(script, capsys):
    with pytest.raises(SystemExit) as e:
        script.main(["--colour", "red"])
    assert e.value.code == 2 and "--colour" in capsys.readouterr().err


@pytest.mark.robustness
def test_results_from_another_run_are_not_mixed_in(tiny_run):
    doc = json.loads((tiny_run / "results.json").read_text())
    doc["config"]["lr"] = 0.123
    (tiny_run / "other.json").write_text(json.dumps(doc))
    snap = c.read_snapshots(tiny_run / "snapshots.npz")
    assert viz.read_results(tiny_run / "other.json", snap) is None
    assert viz.read_results(tiny_run / "results.json", snap) is not None
