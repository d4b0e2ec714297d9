"""Model maths: activations, masked loss, gradients, optimiser, subsampling and statistics."""
import numpy as np
import pytest
from conftest import c

CFG = {"hidden": 8, "depth": 2, "k": 2, "topk": 3, "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}


def tiny_model(name, dtype=np.float64, seed=0, n_in=6):
    rng = np.random.default_rng(seed)
    params = [p.astype(dtype) for p in c.init_params(CFG, rng, n_in=n_in)]
    for p in params[1::2]:
        p += rng.normal(0, 0.1, p.shape)             # non-zero biases exercise their gradients too
    return c.Model(name, params, CFG)


@pytest.mark.parametrize("name", ["relu", "lwta", "topk"])
def test_gradients_match_finite_differences(name):
    rng = np.random.default_rng(1)
    model = tiny_model(name)
    head = c.head_mask([2, 5, 7])
    x, y = rng.normal(size=(5, 6)), rng.choice([2, 5, 7], 5)

    def loss():
        return c.masked_cross_entropy(model.forward(x)[0], y, head)[0]

    logits, inputs, masks = model.forward(x)
    grads = model.backward(c.masked_cross_entropy(logits, y, head)[1], inputs, masks)
    eps = 1e-6
    for p, g in zip(model.params, grads):
        numeric = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            up = loss()
            p[i] = old - eps
            down = loss()
            p[i] = old
            numeric[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-8)
    assert any(np.abs(g).max() > 1e-3 for g in grads)


def test_masked_softmax_gives_zero_gradient_on_inactive_logits():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(7, 10)).astype(np.float32)
    y = rng.integers(5, 10, 7)
    loss, d = c.masked_cross_entropy(logits, y, c.head_mask([5, 6, 7, 8, 9]))
    assert np.all(d[:, :5] == 0) and np.all(d[:, 5:] != 0)
    np.testing.assert_allclose(d[:, 5:].sum(axis=1), 0, atol=1e-7)   # softmax rows: p - onehot sums to 0
    z = logits[:, 5:].astype(np.float64)
    expected = np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(7), y - 5])
    assert loss == pytest.approx(expected, rel=1e-6)


def test_inactive_head_gets_no_gradient_and_does_not_move():
    rng = np.random.default_rng(3)
    model = tiny_model("relu", np.float32)
    head = c.head_mask([0, 1, 2, 3, 4])
    c.reset_optimizer(model, head, CFG)
    before = [p.copy() for p in model.params]
    x, y = rng.normal(size=(4, 6)).astype(np.float32), rng.integers(0, 5, 4)
    for _ in range(3):
        logits, inputs, masks = model.forward(x)
        grads = model.backward(c.masked_cross_entropy(logits, y, head)[1], inputs, masks)
        assert np.all(grads[-2][:, 5:] == 0) and np.all(grads[-1][5:] == 0)
        c.sgd_step(model, grads, CFG)
    np.testing.assert_array_equal(model.params[-2][:, 5:], before[-2][:, 5:])
    np.testing.assert_array_equal(model.params[-1][5:], before[-1][5:])
    assert not np.array_equal(model.params[-2][:, :5], before[-2][:, :5])


def test_sgd_step_matches_textbook_momentum_with_weight_decay():
    model = tiny_model("relu", np.float64)
    c.reset_optimizer(model, c.head_mask([0]), CFG)
    w0 = model.params[0].copy()
    g1, g2 = np.full_like(w0, 0.5), np.full_like(w0, -0.25)
    zeros = [np.zeros_like(p) for p in model.params]
    lr, mu, wd = CFG["lr"], CFG["momentum"], CFG["weight_decay"]
    v, w = np.zeros_like(w0), w0.copy()
    for g in (g1, g2):
        c.sgd_step(model, [lr * g] + zeros[1:], CFG)          # the step takes lr-scaled gradients
        v = mu * v + g + wd * w
        w = w - lr * v
    np.testing.assert_allclose(model.params[0], w, rtol=1e-6)      # decay is kept in float32
    np.testing.assert_array_equal(model.params[1], tiny_model("relu", np.float64).params[1])  # no bias decay


@pytest.mark.parametrize("k", [2, 4])
def test_lwta_exactly_one_winner_per_block_even_on_ties(k):
    rng = np.random.default_rng(4)
    cfg = dict(CFG, k=k)
    for z in (rng.normal(size=(50, 16)).astype(np.float32), np.zeros((3, 16), np.float32),
              np.round(rng.normal(size=(50, 16))).astype(np.float32)):
        mask = c.lwta_mask(z, cfg)
        blocks_mask = mask.reshape(len(z), k, -1)
        blocks_z = z.reshape(len(z), k, -1)
        assert np.all(blocks_mask.sum(axis=1) == 1)
        winners = (blocks_z * blocks_mask).sum(axis=1)
        np.testing.assert_array_equal(winners, blocks_z.max(axis=1))


def test_topk_keeps_exactly_k_largest_even_on_ties():
    rng = np.random.default_rng(5)
    for z in (rng.normal(size=(40, 20)).astype(np.float32), np.zeros((3, 20), np.float32),
              np.round(rng.normal(size=(40, 20))).astype(np.float32)):
        mask = c.topk_mask(z, dict(CFG, topk=3))
        assert np.all(mask.sum(axis=1) == 3)
        kept_min = np.where(mask, z, np.inf).min(axis=1)
        dropped_max = np.where(mask, -np.inf, z).max(axis=1)
        assert np.all(kept_min >= dropped_max)


def test_forward_passes_winners_linear_value_and_zeroes_the_rest():
    model = tiny_model("topk", np.float64)
    x = np.random.default_rng(6).normal(size=(4, 6))
    _, inputs, masks = model.forward(x)
    z1 = x @ model.params[0] + model.params[1]
    np.testing.assert_allclose(inputs[1], np.where(masks[0], z1, 0))
    assert np.all(np.count_nonzero(inputs[1], axis=1) == 3)


def test_init_is_he_scaled_and_shared_by_seed():
    a = c.init_params({"hidden": 400, "depth": 2}, np.random.default_rng(0))
    b = c.init_params({"hidden": 400, "depth": 2}, np.random.default_rng(0))
    assert all(np.array_equal(p, q) and p.dtype == np.float32 for p, q in zip(a, b))
    assert a[0].std() == pytest.approx(np.sqrt(2 / 784), rel=0.02)
    assert a[2].std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)


def test_balanced_subsample_exact_counts_and_no_repeats():
    labels = np.random.default_rng(7).integers(0, 10, 3000)
    rows = c.balanced_subsample(labels, [1, 3, 8], 50, np.random.default_rng(0))
    assert len(rows) == len(set(rows)) == 150
    assert sorted(np.unique(labels[rows])) == [1, 3, 8]
    assert all(np.sum(labels[rows] == k) == 50 for k in (1, 3, 8))


def test_tasks_are_balanced_disjoint_and_use_every_test_image(synthetic):
    config = {"dataset": "mnist", "data_dir": str(synthetic), "task1_classes": [0, 2, 4],
              "task2_classes": [1, 3], "n_train_per_class": 30}
    tasks = c.make_tasks(config, np.random.default_rng(0))
    assert [len(x) for x in tasks.x_train] == [90, 60]
    assert [np.bincount(y, minlength=10).tolist() for y in tasks.y_train] == [
        [30, 0, 30, 0, 30, 0, 0, 0, 0, 0], [0, 30, 0, 30, 0, 0, 0, 0, 0, 0]]
    assert [np.flatnonzero(h).tolist() for h in tasks.heads] == [[0, 2, 4], [1, 3]]
    assert [len(x) for x in tasks.x_test] == [36, 24]                 # all 12 test images per class
    assert not np.any(tasks.heads[0] & tasks.heads[1])
    assert set(np.unique(tasks.y_test[0])) == {0, 2, 4} and set(np.unique(tasks.y_test[1])) == {1, 3}
    assert tasks.x_train[0].dtype == np.float32 and 0 <= tasks.x_train[0].min() and tasks.x_train[0].max() <= 1


def test_t_critical_values():
    for df, expected in [(1, 12.7062), (2, 4.3027), (9, 2.2622), (30, 2.0423), (200, 1.9719)]:
        assert c.t_critical_95(df) == pytest.approx(expected, abs=2e-4)


def test_sign_test_exact_p_values():
    assert c.sign_test(10, 0) == pytest.approx(2 / 1024)
    assert c.sign_test(6, 4) == pytest.approx(0.75390625)
    assert c.sign_test(0, 0) == 1.0
    assert c.sign_test(3, 3) == 1.0


def test_describe_and_aggregate_leave_out_diverged_runs():
    d = c.describe([1.0, 2.0, 3.0])
    assert d["mean"] == 2.0 and d["std"] == 1.0
    assert d["ci95"] == pytest.approx([2 - 4.3027 / np.sqrt(3), 2 + 4.3027 / np.sqrt(3)], abs=1e-3)

    def run(seed, relu, lwta):
        s = {"t1_after_t1": 0.97, "t1_after_t2": 0.9, "t2_after_t2": 0.95, "diverged": None}
        return {"seed": seed, "summary": {"relu": dict(s, forgetting=relu),
                                          "lwta": {"diverged": {"task": 2, "epoch": 7}} if lwta is None
                                          else dict(s, forgetting=lwta)}}
    agg = c.aggregate([run(0, 0.05, 0.02), run(1, 0.04, 0.04), run(2, 0.06, None), run(3, 0.03, 0.01)],
                      ["relu", "lwta"])
    assert agg["models"]["lwta"]["n_seeds"] == 3 and agg["models"]["lwta"]["n_diverged_left_out"] == 1
    pair = agg["paired_vs_relu"]["lwta"]
    assert (pair["n_pairs"], pair["wins"], pair["ties"], pair["losses"]) == (3, 2, 1, 0)
    assert pair["sign_test_p"] == 0.5 and pair["significant_at_0.05"] is False
    assert pair["forgetting_diff"]["mean"] == pytest.approx(-0.05 / 3)


def test_flop_count_of_default_run():
    config = {"hidden": 400, "depth": 2, "n_train_per_class": 500, "task1_classes": [0, 1, 2, 3, 4],
              "task2_classes": [5, 6, 7, 8, 9], "epochs": 5, "models": ["relu", "lwta", "topk"], "n_seeds": 1}
    f = c.count_flops(config, (5139, 4861))
    per_sample_fwd = 2 * (784 * 400 + 400 * 400 + 400 * 10)
    per_sample_bwd = 2 * (784 * 400 + 2 * 400 * 400 + 2 * 400 * 10)
    assert f["train"] == 3 * 25000 * (per_sample_fwd + per_sample_bwd)
    assert f["eval"] == 3 * 11 * 10000 * per_sample_fwd


@pytest.mark.robustness
def test_weights_broken_by_an_epochs_last_step_count_as_diverged():
    model = tiny_model("relu", np.float32)
    head = c.head_mask([0, 1])
    c.reset_optimizer(model, head, CFG)
    config = dict(CFG, batch_size=4)
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(8, 6)).astype(np.float32), rng.integers(0, 2, 8)
    assert c.train_epoch(model, x, y, head, config, {"task": 1, "epoch": 1}) is not None
    assert model.diverged is None
    model.params[2][0, 0] = np.inf                   # as if the last update had overflowed
    model.velocity = [np.zeros_like(p) for p in model.params]
    assert c.train_epoch(model, x[:0], y[:0], head, config, {"task": 1, "epoch": 2}) is None
    assert model.diverged == {"task": 1, "epoch": 2}
