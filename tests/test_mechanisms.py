"""The seed documents' mechanisms: maxout, the SDMLP's Top-K (sdm) and Numenta's boosted k-winners with
sparse weights (kwinners). Finite-difference gradients, exact invariants, and hand computations."""
import json
import math

import numpy as np
import pytest
from conftest import c, tiny_args

CFG = {"hidden": 8, "depth": 2, "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "batch_size": 4}


def model_of(spec, config=CFG, n_in=6, seed=0, dtype=np.float64):
    """A small model in float64 (so finite differences are exact to ~1e-9), its constraints in force."""
    model = c.Model(c.parse_variant(spec), config, c.seed_streams(seed), n_in=n_in)
    model.params = [p.astype(dtype) for p in model.params]
    return model


def loss_and_grads(model, x, y, heads, training=False):
    logits, cache = model.forward(x, training=training)
    loss, d = c.masked_cross_entropy(logits, y, heads)
    return loss, model.backward(d, cache), cache


def numeric_grads(model, x, y, heads, eps=1e-6):
    """Central differences of the test-mode loss with respect to every parameter."""
    out = []
    for p in model.params:
        numeric = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            up = loss_and_grads(model, x, y, heads)[0]
            p[i] = old - eps
            down = loss_and_grads(model, x, y, heads)[0]
            p[i] = old
            numeric[i] = (up - down) / (2 * eps)
        out.append(numeric)
    return out


def assert_gradients_match(model, x, y, heads):
    grads = loss_and_grads(model, x, y, heads)[1]
    for g, n in zip(grads, numeric_grads(model, x, y, heads)):
        np.testing.assert_allclose(g, n, rtol=1e-5, atol=1e-8)
    assert any(np.abs(g).max() > 1e-3 for g in grads)


HEADS = c.head_mask([2, 5, 7], "task")


def data(n=5, n_in=6, seed=1, positive=False):
    rng = np.random.default_rng(seed)
    x = rng.random((n, n_in)) if positive else rng.normal(size=(n, n_in))
    return x, rng.choice([2, 5, 7], n)


# ---------------------------------------------------------------------------------------------- maxout
def test_maxout_passes_each_blocks_maximum_and_narrows_the_next_layer():
    model = model_of("maxout:k=4", config=dict(CFG, hidden=16))
    assert [p.shape for p in model.params[0::2]] == [(6, 16), (4, 16), (4, 10)]
    z = np.random.default_rng(2).normal(size=(7, 16))
    layer = model.layers[0]
    h, mask = layer.activate(z.copy(), True)
    blocks = z.reshape(7, 4, 4)                      # block j = units j, j+4, j+8, j+12
    np.testing.assert_array_equal(h, blocks.max(axis=1))
    assert np.all(mask.reshape(7, 4, 4).sum(axis=1) == 1)
    np.testing.assert_array_equal(np.where(mask, z, 0).reshape(7, 4, 4).sum(axis=1), h)   # the winners
    dropped = model_of("maxout:k=4:dropout=0.5", config=dict(CFG, hidden=16))   # dropout acts on the 4 values
    _, (inputs, masks, drops) = dropped.forward(np.ones((7, 6)), training=True)
    assert drops[1].shape == inputs[1].shape == (7, 4) and masks[0].shape == (7, 16)


def test_maxout_routes_the_gradient_to_each_blocks_arg_max_only():
    layer = c.Maxout(6, k=2)                         # blocks (0, 3), (1, 4), (2, 5)
    z = np.array([[1.0, -2.0, 0.5, 3.0, -1.0, 0.5]])  # winners 3, 1 (the larger of -2, -1 is -1: unit 4),
    h, mask = layer.activate(z, True)                # and the tie 0.5 = 0.5 goes to the first, unit 2
    np.testing.assert_array_equal(h, [[3.0, -1.0, 0.5]])
    np.testing.assert_array_equal(mask, [[False, False, True, True, True, False]])
    g = layer.backward(np.array([[10.0, 20.0, 30.0]]), mask)
    np.testing.assert_array_equal(g, [[0.0, 0.0, 30.0, 10.0, 20.0, 0.0]])


@pytest.mark.parametrize("spec", ["maxout", "maxout:k=4"])
def test_maxout_gradients_match_finite_differences(spec):
    model = model_of(spec)
    model.params[1::2] = [b + 0.1 * np.random.default_rng(3).normal(size=b.shape) for b in model.params[1::2]]
    x, y = data()
    assert_gradients_match(model, x, y, HEADS)


# ---------------------------------------------------------------------------------------------- sdm
def test_sdm_k_schedule_falls_linearly_from_the_width_to_k_then_stays():
    layer = c.SDM(400, schedule="both", k=10, anneal=4, gaba=0)
    # 400 - E * 390 / 4, floored: 302.5 -> 302, 107.5 -> 107
    assert [layer.k_at(e) for e in range(7)] == [400, 302, 205, 107, 10, 10, 10]
    assert [c.SDM(400, schedule="both", k=10, anneal=0, gaba=0).k_at(e) for e in (0, 5)] == [10, 10]
    assert [c.SDM(32, schedule="both", k="25%", anneal=3, gaba=0).k_at(e) for e in range(4)] == [32, 24, 16, 8]
    for width, k, s in [(400, 10, 2), (1000, 10, 200), (37, 3, 7)]:    # the paper's formula, in floats
        layer = c.SDM(width, schedule="both", k=k, anneal=s, gaba=0)
        assert all(layer.k_at(e) == max(k, math.floor(width - e * (width - k) / s)) for e in range(3 * s))


def test_sdm_k_follows_the_epochs_of_training():
    model = model_of("sdm:schedule=both:k=2:anneal=3:gaba=0", dtype=np.float32)
    c.reset_optimizer(model, HEADS, CFG)
    x, y = data(8, positive=True)
    heads = np.repeat(HEADS[None], 8, axis=0)
    seen = []
    for epoch in range(5):
        c.train_epoch(model, x.astype(np.float32), y, heads, CFG, {"task": 1, "epoch": epoch + 1})
        seen.append(model.layers[0].k_now)
    assert seen == [8, 6, 4, 2, 2]                  # 8 - E * 6 / 3


def test_sdm_gaba_factor_goes_from_excited_to_inhibited_with_firing_counts():
    layer = c.SDM(6, schedule="both", k=2, anneal=0, gaba=2000)
    layer.counts[:] = [0, 500, 1000, 1500, 2000, 5000]
    np.testing.assert_array_equal(layer.gaba_factor(np.float64), [-1, -0.5, 0, 0.5, 1, 1])
    assert layer.gaba_factor(np.float32).dtype == np.float32
    np.testing.assert_array_equal(c.SDM(3, schedule="both", k=1, anneal=0, gaba=0).gaba_factor(np.float64), [1, 1, 1])


def test_sdm_once_annealed_exactly_k_units_stay_positive_shifted_down_by_the_next_one():
    rng = np.random.default_rng(4)
    layer = c.SDM(50, schedule="both", k=7, anneal=0, gaba=0)
    z = rng.normal(size=(30, 50)).astype(np.float32) + 0.5
    out, mask = layer.activate(z, False)
    assert np.all(np.count_nonzero(out, axis=1) == 7) and np.all(mask == (out > 0))
    a = np.sort(np.maximum(z, 0), axis=1)[:, ::-1]
    np.testing.assert_array_equal(np.sort(out, axis=1)[:, ::-1][:, :7], a[:, :7] - a[:, 7:8])


def test_sdm_switch_by_hand_excites_then_inhibits_each_unit_by_its_own_factor():
    layer = c.SDM(4, schedule="both", k=1, anneal=0, gaba=4)
    z = np.array([[4.0, 3.0, 1.0, -2.0]])            # ReLU: 4, 3, 1, 0; the (k+1)-th = 3
    layer.counts[:] = [0, 2, 3, 8]                   # factors -1, 0, 0.5, 1
    out, mask = layer.activate(z, False)
    np.testing.assert_array_equal(out, [[4 + 3, 3 - 0, 0, 0]])       # 1 - 0.5 * 3 < 0: off
    np.testing.assert_array_equal(mask, [[True, True, False, False]])
    layer.counts[:] = [0, 0, 0, 0]                   # all excited: even a unit with z <= 0 fires,
    out, mask = layer.activate(z, False)             # but it has no gradient path
    np.testing.assert_array_equal(out, [[7, 6, 4, 3]])
    np.testing.assert_array_equal(mask, [[True, True, True, False]])


def test_sdm_counts_firings_and_silent_units_while_training_only():
    layer = c.SDM(4, schedule="both", k=1, anneal=0, gaba=0)
    z = np.array([[4.0, 3.0, 1.0, 0.0], [1.0, 5.0, 2.0, 0.0], [1.0, 5.0, 0.5, 0.0]])
    layer.start_epoch(0)
    layer.activate(z, False)
    assert layer.counts.tolist() == [0, 0, 0, 0]
    layer.activate(z, True)                           # winners: unit 0, unit 1, unit 1
    assert layer.counts.tolist() == [1, 2, 0, 0]
    layer.start_epoch(1)
    layer.activate(z[1:], True)
    assert layer.report() == {"dead_units": 3, "dead_units_per_epoch": [2, 3]}


def test_sdm_input_is_relud_and_unit_length():
    layer = c.SDM(4, schedule="both", k=1, anneal=0, gaba=0)
    x = np.array([[3.0, -1.0, 4.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(layer.prepare_input(x.copy()), [[0.6, 0, 0.8], [0, 0, 0]], rtol=1e-6)


def test_sdm_weights_non_negative_bias_free_and_first_layer_unit_norm_after_every_step():
    config = dict(CFG, hidden=16)
    model = model_of("sdm:schedule=both:k=3:anneal=1:gaba=20", config=config, n_in=12, dtype=np.float32)

    def check():
        W1, b1, W2, b2, W3, b3 = model.params
        assert all((W >= 0).all() for W in (W1, W2, W3)) and not any(b.any() for b in (b1, b2, b3))
        np.testing.assert_allclose(np.linalg.norm(W1, axis=0), 1, rtol=1e-6)   # one unit = one column
        assert np.linalg.norm(W2, axis=0).std() > 0.01                         # deeper layers: not normalised
    check()                                                                    # from initialisation on
    rng = np.random.default_rng(5)
    x, y = rng.random((32, 12)).astype(np.float32), rng.choice([2, 5, 7], 32)
    heads = np.repeat(HEADS[None], 32, axis=0)
    c.reset_optimizer(model, HEADS, config)
    before = [p.copy() for p in model.params]
    for epoch in range(3):
        assert c.train_epoch(model, x, y, heads, config, {"task": 1, "epoch": epoch + 1}) is not None
        check()
    assert not np.array_equal(before[0], model.params[0])


def test_sdm_trains_with_plain_sgd_whatever_the_runs_momentum_and_decay():
    config = dict(CFG, batch_size=5)                 # momentum 0.9 and weight decay 0.01 for the run
    model = model_of("sdm:schedule=both:k=2:anneal=0:gaba=0", config=config, dtype=np.float32)
    assert c.optimizer_settings(model, config) == {**c.ADDED_SETTINGS, **config, "optimizer": "sgd",
                                                   "momentum": 0.0, "weight_decay": 0.0}
    relu = model_of("relu", config=config)
    assert c.optimizer_settings(relu, config) == {**c.ADDED_SETTINGS, **config}
    x, y = data(5, positive=True)
    x = x.astype(np.float32)
    heads = np.repeat(HEADS[None], 5, axis=0)
    c.reset_optimizer(model, HEADS, config)
    for epoch in range(2):                           # a velocity would carry over into the second step
        expected = [p.copy() for p in model.params]
        _, grads, _ = loss_and_grads(model, x, y, heads, training=False)
        for p, g in zip(expected, grads):
            p -= (config["lr"] * g).astype(p.dtype)
        reference = c.Model(c.parse_variant("sdm:schedule=both:k=2:anneal=0:gaba=0"), config, c.seed_streams(0), n_in=6)
        reference.params = expected
        reference.constrain()
        c.train_epoch(model, x, y, heads, config, {"task": 1, "epoch": epoch + 1})
        for p, q in zip(model.params, reference.params):
            np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-7)


def test_sdm_is_bias_free_unless_bias_1_and_its_help_says_so():
    assert c.parse_variant("sdm").bias == 0 and c.parse_variant("sdm:bias=1").bias == 1
    assert c.parse_variant("relu").bias == 1 and c.parse_variant("sdm").settings()["bias"] == 0
    assert "bias (0: no biases (held at exactly zero); sleep implies 0; default 0)" in c.allowed_keys("sdm")
    assert "sleep implies 0; default 1)" in c.allowed_keys("relu")


def trained_sdm(spec, epochs=3, seed=0):
    """A two-layer sdm model after a few epochs of plain SGD on random positive and negative inputs."""
    config = dict(CFG, hidden=16)
    model = model_of(spec, config=config, n_in=12, seed=seed, dtype=np.float32)
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(32, 12)).astype(np.float32), rng.choice([2, 5, 7], 32)
    heads = np.repeat(HEADS[None], 32, axis=0)
    c.reset_optimizer(model, HEADS, config)
    for epoch in range(epochs):
        assert c.train_epoch(model, x, y, heads, config, {"task": 1, "epoch": epoch + 1}) is not None
    return model, x


SDM_FULL = "sdm:k=3:gaba=20"


def test_sdm_ingredients_switched_off_one_at_a_time_lose_exactly_that_ingredient():
    """Each ingredient key removes its own constraint and nothing else; the full SDMLP has all of them."""
    def norms_one(W):
        return np.allclose(np.linalg.norm(W, axis=0), 1, rtol=1e-5)
    full, x = trained_sdm(SDM_FULL)
    W1, b1, W2, b2, W3, b3 = full.params
    assert norms_one(W1) and all((W >= 0).all() for W in (W1, W2, W3)) and not any(b.any() for b in (b1, b2, b3))
    np.testing.assert_allclose(np.linalg.norm(full.layers[0].prepare_input(x.copy()), axis=1), 1, rtol=1e-5)
    free, _ = trained_sdm(SDM_FULL + ":unit_norm=0")
    assert not norms_one(free.params[0]) and all((W >= 0).all() for W in free.params[0::2])
    np.testing.assert_array_equal(free.layers[0].prepare_input(x.copy()), x)    # raw input, negatives kept
    signed, _ = trained_sdm(SDM_FULL + ":nonneg=0")
    assert norms_one(signed.params[0]) and all((W < 0).any() for W in signed.params[0::2])
    biased, _ = trained_sdm(SDM_FULL + ":bias=1")
    assert all(b.any() for b in biased.params[1::2]) and all((W >= 0).all() for W in biased.params[0::2])
    assert norms_one(biased.params[0])


def test_sdm_with_every_ingredient_off_is_a_subtractive_top_k_with_plain_weights():
    """unit_norm=0, nonneg=0, bias=1, gaba=0: the (k+1)-th largest ReLU value is subtracted from every unit
    of an unconstrained layer; with bias=1 the model's parameters equal a ReLU model's of the same seed."""
    bare = model_of("sdm:k=2:gaba=0:unit_norm=0:nonneg=0:bias=1", config=dict(CFG, depth=1), n_in=6)
    relu = model_of("relu", config=dict(CFG, depth=1), n_in=6)
    for p, q in zip(bare.params, relu.params):
        np.testing.assert_array_equal(p, q)
    z = np.array([[3.0, -1.0, 2.0, 0.5, 1.0, 0.0, -2.0, 4.0]])
    layer = bare.layers[0]
    layer.start_epoch(0)
    h, mask = layer.activate(z.copy(), True)
    np.testing.assert_array_equal(h, [[1.0, 0, 0, 0, 0, 0, 0, 2.0]])          # minus the third largest, 2.0
    np.testing.assert_array_equal(mask[0], [True, False, False, False, False, False, False, True])


def test_sdm_at_k_equal_to_the_width_has_no_competition():
    layer = c.SDM(4, **c.parse_variant("sdm:k=4:gaba=0").params)
    assert layer.problem() is None
    layer.start_epoch(0)
    z = np.array([[1.0, -2.0, 0.5, 3.0]])
    h, mask = layer.activate(z.copy(), True)
    np.testing.assert_array_equal(h, np.maximum(z, 0))
    np.testing.assert_array_equal(mask, z > 0)


@pytest.mark.parametrize("spec", ["sdm:k=2:gaba=0:unit_norm=0:nonneg=0:bias=1", "sdm:k=8:gaba=0:bias=1"])
def test_sdm_ablated_gradients_match_finite_differences_where_the_inhibition_is_inactive(spec):
    model = model_of(spec)
    model.params[1::2] = [b + 0.1 * np.random.default_rng(3).normal(size=b.shape) for b in model.params[1::2]]
    for layer in model.layers:
        layer.start_epoch(0)
        layer.k_now = layer.width                    # no inhibition: the one path the gradient detaches
    x, y = data()
    assert_gradients_match(model, x, y, HEADS)


@pytest.mark.parametrize("state", ["k = width", "factor 0"])
def test_sdm_gradients_match_finite_differences_where_the_inhibition_is_inactive(state):
    model = model_of("sdm:schedule=both:k=2:anneal=3:gaba=10")
    for layer in model.layers:
        layer.start_epoch(0)
        if state == "factor 0":                      # count N/2: zero inhibition whatever k is
            layer.k_now, layer.counts[:] = 2, 5
    x, y = data(positive=True)
    assert_gradients_match(model, x, y, HEADS)


def test_sdm_gradient_treats_the_inhibition_as_a_constant():
    """One layer, fully inhibitory. The analytic gradient equals the finite difference except for the
    path through the (k+1)-th value, which is detached; adding that path by hand recovers it exactly."""
    config = dict(CFG, depth=1)
    model = model_of("sdm:schedule=both:k=2:anneal=0:gaba=0", config=config)
    x, y = data(6, positive=True)
    W1, _, W2, _ = model.params
    x_hat = model.layers[0].prepare_input(x.copy())
    z = x_hat @ W1
    _, grads, cache = loss_and_grads(model, x, y, HEADS)
    numeric = numeric_grads(model, x, y, HEADS)
    np.testing.assert_allclose(grads[2], numeric[2], rtol=1e-5, atol=1e-9)      # output layer: no inhibition
    fired = cache[1][0]
    inhibitor = np.argsort(-z, axis=1)[:, 2]                                     # the (k+1)-th unit per input
    logits, _ = model.forward(x)
    d_out = c.masked_cross_entropy(logits, y, HEADS)[1] @ W2.T                   # dL / d(layer output)
    through_inhibition = np.zeros_like(W1)
    for s, j in enumerate(inhibitor):                # d out_i / d z_j = -1 for every fired unit i
        through_inhibition[:, j] += x_hat[s] * -(d_out[s] * fired[s]).sum()
    assert np.abs(through_inhibition).max() > 1e-3
    np.testing.assert_allclose(grads[0] + through_inhibition, numeric[0], rtol=1e-5, atol=1e-9)


# ---------------------------------------------------------------------------------------------- kwinners
def test_kwinners_boost_and_duty_cycles_equal_a_hand_computation():
    layer = c.KWinners(5, percent_on=0.4, boost_strength=2.0, boost_strength_factor=0.5, duty_cycle_period=3,
                       k_inference_factor=1.5)
    assert (layer.n_kept, layer.k_inference) == (2, 3)
    layer.setup(np.zeros((3, 5)), np.random.SeedSequence(0))
    layer.start_epoch(0)
    z = np.array([[1.0, 2.0, 3.0, -4.0, 0.5],
                  [3.0, 1.0, 2.0, 0.0, -1.0]])
    # batch 1: duty 0, boost exp(0.4 * 2) for all: winners are the two largest, units 1, 2 and 0, 2
    mask = layer.mask(z, True)
    np.testing.assert_array_equal(mask, [[0, 1, 1, 0, 0], [1, 0, 1, 0, 0]])
    np.testing.assert_allclose(layer.duty, np.array([1, 1, 2, 0, 0]) / 2)         # period min(3, 2) = 2
    # batch 2: boost exp((0.4 - duty) * 2) = e^-0.2, e^-0.2, e^-1.2, e^0.8, e^0.8
    z2 = np.array([[1.0, 1.1, 2.0, 0.6, -1.0]])
    boosted = z2 * np.exp((0.4 - np.array([0.5, 0.5, 1.0, 0.0, 0.0])) * 2.0)
    assert np.argsort(-boosted[0])[:2].tolist() == [3, 1]                          # 1.34, 0.90 beat 0.82, 0.60
    mask = layer.mask(z2, True)
    np.testing.assert_array_equal(mask, [[0, 1, 0, 1, 0]])
    # period min(3, 3) = 3: duty = (duty * (3 - 1) + active) / 3
    np.testing.assert_allclose(layer.duty, (np.array([0.5, 0.5, 1.0, 0.0, 0.0]) * 2 + [0, 1, 0, 1, 0]) / 3)
    # a winner with a value <= 0 does not count as active (nupic.torch counts output > 0)
    layer.boost = 0.0
    before = layer.duty.copy()
    layer.mask(np.array([[-1.0, -2.0, -3.0, -4.0, -5.0]]), True)                  # winners 0, 1, both negative
    np.testing.assert_allclose(layer.duty, before * (3 - 1) / 3)


def test_kwinners_tests_with_k_inference_winners_and_freezes_duty_cycles():
    layer = c.KWinners(20, percent_on=0.1, boost_strength=1.0, boost_strength_factor=0.9,
                       duty_cycle_period=1000, k_inference_factor=1.5)
    layer.setup(np.zeros((4, 20)), np.random.SeedSequence(0))
    z = np.random.default_rng(6).normal(size=(9, 20))
    assert np.all(layer.mask(z, True).sum(axis=1) == 2)
    duty, seen = layer.duty.copy(), layer.seen
    test_mask = layer.mask(z, False)
    assert np.all(test_mask.sum(axis=1) == 3) and layer.seen == seen
    np.testing.assert_array_equal(layer.duty, duty)
    # at test time boosting uses the test-time density k_inference / width, as nupic.torch does
    boosted = z * np.exp((3 / 20 - duty) * 1.0)
    np.testing.assert_array_equal(test_mask, c.top_k(boosted, 3))


def test_kwinners_boost_strength_decays_once_per_epoch():
    config = dict(CFG, hidden=10)
    model = model_of("kwinners:percent_on=0.2:boost_strength=1.5:boost_strength_factor=0.8", config=config,
                     dtype=np.float32)
    x, y = data(8)
    heads = np.repeat(HEADS[None], 8, axis=0)
    c.reset_optimizer(model, HEADS, config)
    for epoch in range(4):
        c.train_epoch(model, x.astype(np.float32), y, heads, config, {"task": 1, "epoch": epoch + 1})
        assert all(layer.boost == pytest.approx(1.5 * 0.8 ** epoch) for layer in model.layers)
        assert all(layer.seen == 8 * (epoch + 1) for layer in model.layers)


def test_kwinners_sparse_weights_are_seeded_shared_and_stay_exactly_zero():
    config = dict(CFG, hidden=10)
    spec = "kwinners:percent_on=0.2:weight_sparsity=0.7"
    model = model_of(spec, config=config, dtype=np.float32)
    relu = model_of("relu", config=config, dtype=np.float32)
    zeros = [W == 0 for W in model.params[0:4:2]]
    # weight_sparsity: the share that may be non-zero; per unit (column) fan-in - round(0.7 fan-in)
    # zeros: 6 -> 2 (6 - round(4.2)), 10 -> 3
    assert [z.sum(axis=0).tolist() for z in zeros] == [[2] * 10, [3] * 10]
    for W, R, z in zip(model.params[0:4:2], relu.params[0:4:2], zeros):
        np.testing.assert_array_equal(W, np.where(z, 0, R))                   # the same draw, masked
    assert (model.params[4] != 0).all()                                      # the output layer is dense
    twin = model_of("kwinners:percent_on=0.2:weight_sparsity=0.7:boost_strength=0", config=config)
    other_seed = model_of(spec, config=config, seed=1)
    assert all(np.array_equal(W == 0, z) for W, z in zip(twin.params[0:4:2], zeros))
    assert not np.array_equal(other_seed.params[0] == 0, zeros[0])
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(16, 6)).astype(np.float32), rng.choice([2, 5, 7], 16)
    heads = np.repeat(HEADS[None], 16, axis=0)
    c.reset_optimizer(model, HEADS, config)
    before = [W.copy() for W in model.params[0:4:2]]
    for epoch in range(3):
        c.train_epoch(model, x, y, heads, config, {"task": 1, "epoch": epoch + 1})
        assert all(not W[z].any() for W, z in zip(model.params[0:4:2], zeros))
    assert not np.array_equal(before[0], model.params[0])                    # the others did learn
    dense = model_of("kwinners:weight_sparsity=1", config=config)
    assert dense.keep == [] and (dense.params[0] != 0).all()
    sparse_relu = model_of("relu:weight_sparsity=0.7", config=config, dtype=np.float32)    # any activation
    assert all(np.array_equal(W == 0, z) for W, z in zip(sparse_relu.params[0:4:2], zeros))
    assert c.parse_variant("kwinners").weight_sparsity == 0.5 and c.parse_variant("relu").weight_sparsity == 1
    assert c.parse_variant("relu:weight_sparsity=0.5").settings()["weight_sparsity"] == 0.5
    assert "weight_sparsity" not in c.parse_variant("relu").settings()


def test_kwinners_mask_stream_is_new_and_leaves_the_other_streams_as_they_were():
    streams = c.seed_streams(3)                      # the masks come from stream 5 (child i = layer i)
    assert [s.spawn_key for s in streams[:6]] == [(i,) for i in range(6)]
    spawned = np.random.SeedSequence(3).spawn(6)
    assert all(np.array_equal(s.generate_state(4), t.generate_state(4)) for s, t in zip(streams, spawned))


def test_kwinners_gradients_match_finite_differences_at_test_time():
    config = dict(CFG, hidden=10)
    model = model_of("kwinners:percent_on=0.3:weight_sparsity=0.3", config=config)
    model.params[1::2] = [b + 0.1 * np.random.default_rng(3).normal(size=b.shape) for b in model.params[1::2]]
    for layer in model.layers:                       # boosting with uneven duty cycles decides the winners
        layer.duty = np.random.default_rng(8).random(10) * 0.6
    x, y = data()
    assert_gradients_match(model, x, y, HEADS)


# ---------------------------------------------------------------------------------------------- specs
NEW_SPECS = [
    ("maxout", ("maxout", {"k": 2})), ("maxout:k=4", ("maxout", {"k": 4})),
    ("sdm", ("sdm", {"k": 10, "schedule": "gaba", "anneal": 2, "gaba": 2000, "gaba_eval": 0, "unit_norm": 1,
                     "nonneg": 1})),
    ("sdm:schedule=both:k=5%:anneal=0:gaba=0", ("sdm", {"k": "5%", "schedule": "both", "anneal": 0, "gaba": 0,
                                                      "gaba_eval": 0, "unit_norm": 1, "nonneg": 1})),
    ("sdm:schedule=anneal:anneal=5:gaba_eval=1:unit_norm=0:nonneg=0",
     ("sdm", {"k": 10, "schedule": "anneal", "anneal": 5, "gaba": 2000, "gaba_eval": 1, "unit_norm": 0, "nonneg": 0})),
    ("kwinners", ("kwinners", {"percent_on": 0.1, "boost_strength": 1.0, "boost_strength_factor": 1.0,
                               "duty_cycle_period": 1000, "k_inference_factor": 1.0})),
    ("kwinners:percent_on=0.05:boost_strength=0:boost_strength_factor=0.9:duty_cycle_period=64:"
     "k_inference_factor=1.5:weight_sparsity=1",
     ("kwinners", {"percent_on": 0.05, "boost_strength": 0.0, "boost_strength_factor": 0.9,
                   "duty_cycle_period": 64, "k_inference_factor": 1.5})),
]


@pytest.mark.parametrize("spec,expected", NEW_SPECS, ids=[s for s, _ in NEW_SPECS])
def test_new_variant_specs(spec, expected):
    v = c.parse_variant(spec)
    assert (v.activation, v.params) == expected


WIDTH_PROBLEMS = [("maxout:k=3", "k=3 does not divide --hidden 400"),
                  ("sdm:k=401", "k=401 is more than --hidden 400"),
                  ("kwinners:percent_on=0.001", "keeps no unit of --hidden 400"),
                  ("kwinners:percent_on=0.8:k_inference_factor=1.5", "k_inference = int(k * k_inference_factor) = 480")]


@pytest.mark.robustness
@pytest.mark.parametrize("spec,message", WIDTH_PROBLEMS, ids=[s for s, _ in WIDTH_PROBLEMS])
def test_specs_that_do_not_fit_the_width_exit_2(spec, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        c.main(["--data-dir", str(tmp_path / "absent"), "--out", str(tmp_path / "r.json"), "--models", spec])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--models" in err and repr(spec) in err and message in err


# ---------------------------------------------------------------------------------------------- whole runs
PROTOCOLS = [["--scenario", "task"], ["--tasks", "01,23,45", "--scenario", "class"], ["--permuted", "2"]]


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=["task", "class", "domain"])
def test_maxout_and_kwinners_run_end_to_end(protocol, synthetic, tmp_path):
    models = "relu,maxout:k=4,kwinners"
    assert c.main(tiny_args(tmp_path, synthetic, "--models", models, "--epochs", "4", "--lr", "0.1", *protocol)) == 0
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    summary = doc["headline"]["summary"]
    assert all(s["failed"] is None for s in summary.values())
    assert not any("mechanism" in s for s in summary.values())
    assert summary["maxout:k=4"]["active"][0] == [pytest.approx(0.25)] * 2       # one winner per block of 4
    assert summary["kwinners"]["active"][0] == [pytest.approx(3 / 32)] * 2      # k_inference = int(3 * 1.0)
    with np.load(tmp_path / "out" / "snapshots.npz") as z:
        assert z["freq_maxout:k=4"].shape == (len(doc["tasks"]), 2, 32)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=["task", "class", "domain"])
def test_sdm_runs_end_to_end_and_reports_dead_units(protocol, synthetic, tmp_path):
    # one hidden layer as in the paper, and a learning rate that learns the toy tasks in 6 epochs
    assert c.main(tiny_args(tmp_path, synthetic, "--models", "relu,sdm:k=4", "--depth", "1", "--epochs", "6",
                            "--lr", "0.5", *protocol)) == 0
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    summary = doc["headline"]["summary"]
    assert all(s["failed"] is None for s in summary.values()) and "mechanism" not in summary["relu"]
    dead = summary["sdm:k=4"]["mechanism"]
    assert len(dead["dead_units_per_epoch"]) == 1 and len(dead["dead_units_per_epoch"][0]) == 6 * len(doc["tasks"])
    assert dead["dead_units"] == [dead["dead_units_per_epoch"][0][-1]] and 0 <= dead["dead_units"][0] < 32
