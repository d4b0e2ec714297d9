"""Issue 23: the details of the k-winners source (numenta/nupic.research) that the kwta-permuted recipe
needs: normalised inputs, the "modified" initialisation, and each model at its own learning rate."""
import math

import numpy as np
import pytest

from conftest import c, tiny_args


def config_of(*flags):
    return c.parse_config(["--data-dir", "unused", *flags])[0]


def test_normalize_subtracts_the_datasets_mean_and_divides_by_its_std(synthetic):
    plain = config_of("--data-dir", str(synthetic), "--n-train-per-class", "20", "--val-per-class", "5")
    normed = {**plain, "normalize": True}
    plain["data_dir"] = normed["data_dir"] = str(synthetic)
    mean, std = c.DATASETS["mnist"].pixel_mean_std
    assert (mean, std) == (0.13062755, 0.30810780)                  # the source's constants
    for a, b in zip(c.make_tasks(3, plain), c.make_tasks(3, normed)):
        for x, z in ((a.x_train, b.x_train), (a.x_test, b.x_test), (a.x_val, b.x_val)):
            assert z.dtype == np.float32
            np.testing.assert_allclose(z, (x.astype(np.float64) - mean) / std, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(a.y_train, b.y_train)          # the same images, only rescaled
    assert c.experiment_settings(plain) != c.experiment_settings(normed)


def test_fashion_constants_are_its_training_images_mean_and_std():
    mean, std = c.DATASETS["fashion-mnist"].pixel_mean_std
    assert 0.28 < mean < 0.29 and 0.35 < std < 0.36


@pytest.mark.robustness
def test_normalize_is_refused_for_a_sleeping_model(capsys):
    with pytest.raises(SystemExit) as e:
        config_of("--normalize", "--models", "relu,relu:sleep=1")
    assert e.value.code == 2 and "argument --normalize" in capsys.readouterr().err


def bounds(model):
    """The largest absolute initial weight and bias of each layer."""
    return [float(np.abs(W).max()) for W in model.params[0::2]], [float(np.abs(b).max()) for b in model.params[1::2]]


@pytest.mark.parametrize("spec, hidden_density, weight_density", [
    ("kwinners:percent_on=0.05:boost_strength=0:weight_sparsity=0.5", 0.05, 0.5),
    ("kwinners:percent_on=0.1:boost_strength=0:weight_sparsity=1", 0.1, 1.0),
    ("relu", 0.5, 1.0),
    ("topk:k=20", 0.05, 1.0),
    ("relu:weight_sparsity=0.5", 0.5, 0.5),
    ("lwta:k=4", 0.25, 1.0)])
def test_modified_init_bounds_by_hand(spec, hidden_density, weight_density):
    width = 400
    model = c.Model(c.parse_variant(spec), {"hidden": width, "depth": 2, "init": "modified"}, c.seed_streams(0))
    weights, biases = bounds(model)
    # numenta's modified init: +-1/sqrt(input density x weight density x fan-in); the output layer is dense
    expected = [1 / math.sqrt(1.0 * weight_density * 784),
                1 / math.sqrt(hidden_density * weight_density * width),
                1 / math.sqrt(hidden_density * 1.0 * width)]
    for got, bound in zip(weights, expected):
        assert 0.97 * bound < got <= bound
    for got, fan_in in zip(biases, (784, width, width)):
        assert 0.5 / math.sqrt(fan_in) < got <= 1 / math.sqrt(fan_in)     # biases keep torch's bound


def test_modified_init_at_the_recipes_size_matches_the_sources_bounds():
    spec = "kwinners:percent_on=0.05:boost_strength=0:k_inference_factor=1:weight_sparsity=0.5"
    model = c.Model(c.parse_variant(spec), {"hidden": 2048, "depth": 2, "init": "modified"}, c.seed_streams(1))
    weights, _ = bounds(model)
    assert [round(w, 4) for w in weights[:2]] == [0.0505, 0.1398]      # the 0.0505, 0.1398
    # and with ReLU (the source's dense MLP, density 0.5 after a ReLU layer): 1/sqrt(784), 1/sqrt(1024) twice
    relu = c.Model(c.parse_variant("relu"), {"hidden": 2048, "depth": 2, "init": "modified"}, c.seed_streams(1))
    assert [round(w, 4) for w in bounds(relu)[0]] == [0.0357, 0.0312, 0.0312]


def test_modified_init_draws_what_torch_init_draws_before_scaling():
    """The same uniform draws as --init torch, only each layer's weights stretched: a change of bound
    changes nothing else of the seed's stream."""
    torch = c.Model(c.parse_variant("relu"), {"hidden": 64, "depth": 2, "init": "torch"}, c.seed_streams(2))
    modified = c.Model(c.parse_variant("relu"), {"hidden": 64, "depth": 2, "init": "modified"}, c.seed_streams(2))
    np.testing.assert_allclose(modified.params[0], torch.params[0], rtol=1e-6)              # layer 1: density 1
    np.testing.assert_allclose(modified.params[2], torch.params[2] * math.sqrt(2), rtol=1e-5)
    for a, b in zip(modified.params[1::2], torch.params[1::2]):
        np.testing.assert_array_equal(a, b)


def test_a_variants_own_learning_rate_equals_a_run_at_that_rate(synthetic):
    base = ["--data-dir", str(synthetic), "--hidden", "32", "--epochs", "2", "--n-train-per-class", "30"]
    at_05 = c.parse_config([*base, "--lr", "0.05", "--models", "relu:lr=0.01,lwta"])[0]
    at_01 = c.parse_config([*base, "--lr", "0.01", "--models", "relu"])[0]
    own = c.run_course(0, "relu:lr=0.01", at_05, headline=False)
    alone = c.run_course(0, "relu", at_01, headline=False)
    assert own["summary"]["R"] == alone["summary"]["R"]                  # bit for bit
    other = c.run_course(0, "relu", {**at_05, "models": ["relu"]}, headline=False)
    assert other["summary"]["R"] != own["summary"]["R"]                  # and --lr itself is not used
    assert at_05["variants"]["relu:lr=0.01"]["lr"] == 0.01 and "lr" not in at_05["variants"]["lwta"]


def test_a_variant_rate_works_with_adam_and_with_sdms_plain_sgd(synthetic, tmp_path):
    args = tiny_args(tmp_path, synthetic, "--optimizer", "adam", "--lr", "0.001",
                     "--models", "relu:lr=0.003,sdm:k=4:lr=0.02")
    config = c.parse_config(args)[0]
    model = c.Model(c.parse_variant("sdm:k=4:lr=0.02"), config, c.seed_streams(0))
    settings = c.optimizer_settings(model, config)
    assert settings["lr"] == 0.02 and settings["optimizer"] == "sgd"       # sdm keeps its own optimiser
    model = c.Model(c.parse_variant("relu:lr=0.003"), config, c.seed_streams(0))
    assert c.optimizer_settings(model, config)["lr"] == 0.003
    assert c.main(args) in (0, 3)


@pytest.mark.robustness
@pytest.mark.parametrize("spec", ["relu:lr=0", "relu:lr=-1", "relu:lr=fast", "relu:lr=inf"])
def test_a_bad_variant_rate_is_refused_naming_the_key(spec, capsys):
    with pytest.raises(SystemExit) as e:
        config_of("--models", spec)
    assert e.value.code == 2 and "lr" in capsys.readouterr().err


# ---------------------------------------------------------------------------- the SDM source's GABA counters
def sdm_model(spec, synthetic):
    config = config_of("--data-dir", str(synthetic), "--hidden", "40", "--depth", "1", "--models", spec,
                       "--n-train-per-class", "20")
    config["data_dir"] = str(synthetic)
    return c.Model(c.parse_variant(spec), config, c.seed_streams(0)), c.make_tasks(0, config)


def _fired(model, x):
    """How often each unit fires on x in a test-mode pass, by hand (nothing counted)."""
    layer = model.layers[0]
    z = layer.prepare_input(x.copy()) @ model.params[0] + model.params[1]
    out, _ = layer.activate(z, training=False)
    return np.count_nonzero(out > 0, axis=0)


def test_gaba_eval_counts_the_sources_evaluation_passes_and_nothing_else(synthetic):
    model, tasks = sdm_model("sdm:k=4:gaba=100:gaba_eval=1", synthetic)
    layer = model.layers[0]
    before = layer.counts.copy()
    c.evaluate(model, tasks[0])                                        # this program's own measurement
    np.testing.assert_array_equal(layer.counts, before)
    want = sum(_fired(model, t.x_test) for t in tasks)
    model.source_passes(tasks)                                         # the source's: test images of the tasks seen
    np.testing.assert_array_equal(layer.counts - before, want)
    assert want.sum() > 0 and not layer.counting
    plain, _ = sdm_model("sdm:k=4:gaba=100", synthetic)
    plain.source_passes(tasks)
    assert not plain.layers[0].counts.any()                            # gaba_eval=0: the passes are not made


def test_gaba_eval_counts_ewcs_importance_pass(synthetic):
    model, tasks = sdm_model("sdm:k=4:gaba=100:gaba_eval=1:ewc=1:ewc_fisher=sdm", synthetic)
    phase = c.training_phases(tasks, False)[0]
    model.methods[0].end_phase(model, phase)
    assert model.layers[0].counts.sum() > 0
    plain, _ = sdm_model("sdm:k=4:gaba=100:ewc=1:ewc_fisher=sdm", synthetic)
    plain.methods[0].end_phase(plain, phase)
    assert not plain.layers[0].counts.any()


def test_a_gaba_eval_job_is_the_same_whether_or_not_it_is_the_headline(synthetic):
    config = config_of("--data-dir", str(synthetic), "--hidden", "40", "--depth", "1", "--epochs", "3",
                       "--n-train-per-class", "20", "--models", "sdm:k=4:gaba=2000:gaba_eval=1")
    config["data_dir"] = str(synthetic)
    head = c.run_course(0, "sdm:k=4:gaba=2000:gaba_eval=1", config, headline=True)
    other = c.run_course(0, "sdm:k=4:gaba=2000:gaba_eval=1", config, headline=False)
    assert head["summary"]["R"] == other["summary"]["R"]
    plain = c.run_course(0, "sdm:k=4:gaba=2000", {**config, "models": ["sdm:k=4:gaba=2000"]}, headline=True)
    assert not np.array_equal(plain["units"]["W1"], head["units"]["W1"])  # the counted passes move the switch


def test_no_normalize_undoes_a_recipes_normalisation_and_any_activation_takes_sparse_weights():
    """Two ingredients of the k-winners recipe switched back one at a time, as its ablation does."""
    recipe = c.parse_config(["--recipe", "kwta-permuted", "--data-dir", "unused"])[0]
    back = c.parse_config(["--recipe", "kwta-permuted", "--no-normalize", "--data-dir", "unused"])[0]
    assert recipe["normalize"] is True and back["normalize"] is False
    assert {k for k in recipe if recipe[k] != back[k]} == {"normalize"}
    dense = c.parse_config(["--recipe", "kwta-permuted", "--models", "relu:lr=0.0001:weight_sparsity=0.5",
                            "--data-dir", "unused"])[0]
    assert c.parse_variant(dense["models"][0]).weight_sparsity == 0.5
