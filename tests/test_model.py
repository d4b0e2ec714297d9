"""Model maths: activations, variant specs, masked loss, gradients, dropout, optimiser, metrics."""
import numpy as np
import pytest
from conftest import c

CFG = {"hidden": 8, "depth": 2, "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}


def tiny_model(spec, dtype=np.float64, seed=0, n_in=6, config=CFG):
    model = c.Model(c.parse_variant(spec), config, c.seed_streams(seed), n_in=n_in)
    rng = np.random.default_rng(seed)
    model.params = [p.astype(dtype) for p in model.params]
    for p in model.params[1::2]:
        p += rng.normal(0, 0.1, p.shape)             # non-zero biases exercise their gradients too
    return model


def fixed_dropout(model, seed=11):
    """Dropout generators reset to one state, so every forward pass draws the same masks."""
    model.dropout = [(d[0], np.random.default_rng(seed + i)) if d else None for i, d in enumerate(model.dropout)]


def check_gradients(model, x, y, heads, training=False):
    def run():
        if training:
            fixed_dropout(model)
        return model.forward(x, training=training)

    def loss():
        return c.masked_cross_entropy(run()[0], y, heads)[0]

    logits, cache = run()
    grads = model.backward(c.masked_cross_entropy(logits, y, heads)[1], cache)
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
    return cache


@pytest.mark.parametrize("spec", ["relu", "lwta", "lwta:k=4", "topk:k=3", "topk:k=50%"])
def test_gradients_match_finite_differences(spec):
    rng = np.random.default_rng(1)
    model = tiny_model(spec)
    x, y = rng.normal(size=(5, 6)), rng.choice([2, 5, 7], 5)
    check_gradients(model, x, y, c.head_mask([2, 5, 7], "task"))


def test_dropout_gradients_match_finite_differences_with_a_fixed_mask():
    rng = np.random.default_rng(1)
    model = tiny_model("lwta:dropout_in=0.3:dropout=0.5")
    x, y = rng.normal(size=(5, 6)), rng.choice([2, 5, 7], 5)
    inputs, masks, drops = check_gradients(model, x, y, c.head_mask([2, 5, 7], "task"), training=True)
    assert [d is None for d in drops] == [False, False, False]
    scale = {0: 1 / 0.7, 1: 2.0, 2: 2.0}
    for i, d in enumerate(drops):                    # inverted dropout: 0 or 1/(1-p), some of each
        np.testing.assert_allclose(np.unique(d), [0.0, scale[i]], rtol=1e-6)
    np.testing.assert_allclose(inputs[0], x * drops[0])


def test_dropout_only_while_training_and_shared_by_variants_with_the_same_rates():
    x = np.random.default_rng(2).normal(size=(64, 6))
    a, b = tiny_model("relu:dropout=0.5"), tiny_model("lwta:dropout=0.5")
    plain = tiny_model("relu")
    np.testing.assert_array_equal(a.forward(x)[0], plain.forward(x)[0])   # testing: no dropout
    da, db = a.forward(x, training=True)[1][2], b.forward(x, training=True)[1][2]
    assert da[0] is None and db[0] is None
    for u, v in zip(da[1:], db[1:]):
        np.testing.assert_array_equal(u, v)
    assert 0.35 < np.mean(da[1] == 0) < 0.65


def test_masked_softmax_gives_zero_gradient_on_inactive_logits():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(7, 10)).astype(np.float32)
    y = rng.integers(5, 10, 7)
    loss, d = c.masked_cross_entropy(logits, y, c.head_mask([5, 6, 7, 8, 9], "task"))
    assert np.all(d[:, :5] == 0) and np.all(d[:, 5:] != 0)
    np.testing.assert_allclose(d[:, 5:].sum(axis=1), 0, atol=1e-7)   # softmax rows: p - onehot sums to 0
    z = logits[:, 5:].astype(np.float64)
    expected = np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(7), y - 5])
    assert loss == pytest.approx(expected, rel=1e-6)


def test_heads_per_scenario():
    assert np.flatnonzero(c.head_mask([5, 6], "task")).tolist() == [5, 6]
    assert c.head_mask([5, 6], "class").all() and c.head_mask(range(10), "domain").all()


def test_class_scenario_gradient_reaches_every_output():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(6, 10))
    _, d = c.masked_cross_entropy(logits, rng.integers(0, 2, 6), c.head_mask([0, 1], "class"))
    assert np.all(d != 0)                            # other tasks' logits are pushed down: no mask


def test_per_image_heads_mask_each_row_by_its_own_task():
    rng = np.random.default_rng(3)
    heads = np.array([c.head_mask([0, 1], "task"), c.head_mask([2, 3], "task")])
    _, d = c.masked_cross_entropy(rng.normal(size=(2, 10)), np.array([1, 2]), heads)
    assert np.flatnonzero(d[0]).tolist() == [0, 1] and np.flatnonzero(d[1]).tolist() == [2, 3]


def test_inactive_head_gets_no_gradient_and_does_not_move():
    rng = np.random.default_rng(3)
    model = tiny_model("relu", np.float32)
    head = c.head_mask([0, 1, 2, 3, 4], "task")
    c.reset_optimizer(model, head, CFG)
    before = [p.copy() for p in model.params]
    x, y = rng.normal(size=(4, 6)).astype(np.float32), rng.integers(0, 5, 4)
    for _ in range(3):
        logits, cache = model.forward(x, training=True)
        grads = model.backward(c.masked_cross_entropy(logits, y, head)[1], cache)
        assert np.all(grads[-2][:, 5:] == 0) and np.all(grads[-1][5:] == 0)
        c.sgd_step(model, grads, CFG)
    np.testing.assert_array_equal(model.params[-2][:, 5:], before[-2][:, 5:])
    np.testing.assert_array_equal(model.params[-1][5:], before[-1][5:])
    assert not np.array_equal(model.params[-2][:, :5], before[-2][:, :5])


def test_momentum_is_reset_at_a_task_switch_unless_carried():
    model = tiny_model("relu", np.float32)
    head = c.head_mask([0, 1], "task")
    c.reset_optimizer(model, head, CFG)
    model.velocity[0][:] = 1.0
    c.reset_optimizer(model, head, CFG, carry=True)
    assert np.all(model.velocity[0] == 1.0)
    c.reset_optimizer(model, head, CFG)
    assert np.all(model.velocity[0] == 0.0)


def test_init_scales_and_dtype():
    shapes = [(784, 400), (400, 10)]
    lecun = c.init_params(shapes, np.random.default_rng(0), c.INIT_GAIN["lecun"])
    he = c.init_params(shapes, np.random.default_rng(0), c.INIT_GAIN["he"], "float64")
    assert lecun[0].std() == pytest.approx(np.sqrt(1 / 784), rel=0.02) and lecun[0].dtype == np.float32
    assert he[0].dtype == np.float64 and he[1].dtype == np.float64
    np.testing.assert_allclose(he[0] / np.sqrt(2), lecun[0], rtol=1e-6)    # the same draws, rescaled


def test_sgd_step_matches_textbook_momentum_with_weight_decay():
    model = tiny_model("relu", np.float64)
    c.reset_optimizer(model, c.head_mask([0], "task"), CFG)
    w0, b0 = model.params[0].copy(), model.params[1].copy()
    g1, g2 = np.full_like(w0, 0.5), np.full_like(w0, -0.25)
    zeros = [np.zeros_like(p) for p in model.params]
    lr, mu, wd = CFG["lr"], CFG["momentum"], CFG["weight_decay"]
    v, w = np.zeros_like(w0), w0.copy()
    for g in (g1, g2):
        c.sgd_step(model, [lr * g] + zeros[1:], CFG)          # the step takes lr-scaled gradients
        v = mu * v + g + wd * w
        w = w - lr * v
    np.testing.assert_allclose(model.params[0], w, rtol=1e-6)      # decay is kept in float32
    np.testing.assert_array_equal(model.params[1], b0)             # no bias decay


@pytest.mark.parametrize("k", [2, 4])
def test_lwta_exactly_one_winner_per_block_even_on_ties(k):
    rng = np.random.default_rng(4)
    layer = c.LWTA(16, k=k)
    for z in (rng.normal(size=(50, 16)).astype(np.float32), np.zeros((3, 16), np.float32),
              np.round(rng.normal(size=(50, 16))).astype(np.float32)):
        mask = layer.mask(z, True)
        blocks_mask = mask.reshape(len(z), k, -1)
        blocks_z = z.reshape(len(z), k, -1)
        assert np.all(blocks_mask.sum(axis=1) == 1)
        winners = (blocks_z * blocks_mask).sum(axis=1)
        np.testing.assert_array_equal(winners, blocks_z.max(axis=1))


def test_topk_keeps_exactly_k_largest_even_on_ties():
    rng = np.random.default_rng(5)
    layer = c.TopK(20, k=3)
    for z in (rng.normal(size=(40, 20)).astype(np.float32), np.zeros((3, 20), np.float32),
              np.round(rng.normal(size=(40, 20))).astype(np.float32)):
        mask = layer.mask(z, True)
        assert np.all(mask.sum(axis=1) == 3)
        kept_min = np.where(mask, z, np.inf).min(axis=1)
        dropped_max = np.where(mask, -np.inf, z).max(axis=1)
        assert np.all(kept_min >= dropped_max)


def test_topk_percent_is_a_share_of_the_width():
    assert [c.TopK(400, k=k).n_kept for k in ("10%", "5%", "20%", 40, "0.1%")] == [40, 20, 80, 40, 1]


def test_forward_passes_winners_linear_value_and_zeroes_the_rest():
    model = tiny_model("topk:k=3", np.float64)
    x = np.random.default_rng(6).normal(size=(4, 6))
    _, (inputs, masks, _) = model.forward(x)
    z1 = x @ model.params[0] + model.params[1]
    np.testing.assert_allclose(inputs[1], np.where(masks[0], z1, 0))
    assert np.all(np.count_nonzero(inputs[1], axis=1) == 3)


def test_init_is_he_scaled_shared_by_seed_and_by_variants_of_equal_shape():
    config = {"hidden": 400, "depth": 2}
    a = c.Model(c.parse_variant("relu"), config, c.seed_streams(0)).params
    b = c.Model(c.parse_variant("topk:k=5%:dropout=0.5"), config, c.seed_streams(0)).params
    other = c.Model(c.parse_variant("relu"), config, c.seed_streams(1)).params
    assert all(np.array_equal(p, q) and p.dtype == np.float32 for p, q in zip(a, b))
    assert not np.array_equal(a[0], other[0])
    assert a[0].std() == pytest.approx(np.sqrt(2 / 784), rel=0.02)
    assert a[2].std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)


SPECS = [("relu", ("relu", {}, 0.0, 0.0)), ("lwta", ("lwta", {"k": 2}, 0.0, 0.0)),
         ("lwta:k=4", ("lwta", {"k": 4}, 0.0, 0.0)), ("topk", ("topk", {"k": "10%"}, 0.0, 0.0)),
         ("topk:k=40", ("topk", {"k": 40}, 0.0, 0.0)),
         ("relu:dropout=0.5:dropout_in=0.2", ("relu", {}, 0.2, 0.5))]


@pytest.mark.parametrize("spec,expected", SPECS, ids=[s for s, _ in SPECS])
def test_variant_specs(spec, expected):
    v = c.parse_variant(spec)
    assert (v.spec, (v.activation, v.params, v.dropout_in, v.dropout)) == (spec, expected)


BAD_SPECS = [("foo", "unknown activation 'foo'; choose from relu, lwta, topk"),
             ("lwta:j=3", "unknown key 'j' for lwta; allowed keys: k ("),
             ("relu:k=3", "unknown key 'k' for relu; allowed keys: dropout_in"),
             ("lwta:k", "expected key=value"), ("lwta:k=1", "k must be an integer >= 2"),
             ("lwta:k=x", "k must be an integer >= 2"), ("topk:k=0", "k must be a count >= 1"),
             ("topk:k=150%", "percentage in (0, 100]"), ("relu:dropout=1", "dropout must be a rate in [0, 1)"),
             ("relu:dropout=0.1:dropout=0.2", "given twice")]


BAD_MECHANISM_SPECS = [  # the mechanisms of tests/test_mechanisms.py
    ("maxout:k=1", "k must be an integer >= 2"), ("maxout:j=2", "unknown key 'j' for maxout; allowed keys: k ("),
    ("sdm:k=0", "k must be a count >= 1"), ("sdm:anneal=-1", "anneal must be an integer >= 0"),
    ("sdm:gaba=1e6", "gaba must be an integer >= 0"), ("sdm:momentum=0", "allowed keys: k (units left"),
    ("kwinners:percent_on=1", "percent_on must be a number in (0, 1)"),
    ("kwinners:percent_on=0", "percent_on must be a number in (0, 1)"),
    ("kwinners:boost_strength=-1", "boost_strength must be a number >= 0"),
    ("kwinners:boost_strength=inf", "boost_strength must be a number >= 0"),
    ("kwinners:boost_strength_factor=1.5", "boost_strength_factor must be a number in [0, 1]"),
    ("kwinners:duty_cycle_period=0", "duty_cycle_period must be an integer >= 1"),
    ("kwinners:k_inference_factor=0", "k_inference_factor must be a number > 0"),
    ("kwinners:weight_sparsity=0", "weight_sparsity must be a number in (0, 1]"),
    ("kwinners:k=4", "allowed keys: percent_on ("),
]


@pytest.mark.robustness
@pytest.mark.parametrize("spec,message", BAD_SPECS + BAD_MECHANISM_SPECS,
                         ids=[s for s, _ in BAD_SPECS + BAD_MECHANISM_SPECS])
def test_bad_variant_specs_name_the_spec_and_what_is_allowed(spec, message):
    with pytest.raises(ValueError) as e:
        c.parse_variant(spec)
    assert repr(spec) in str(e.value) and message in str(e.value)


def test_balanced_subsample_exact_counts_and_no_repeats():
    labels = np.random.default_rng(7).integers(0, 10, 3000)
    rows = c.balanced_subsample(labels, [1, 3, 8], 50, np.random.default_rng(0))
    assert len(rows) == len(set(rows)) == 150
    assert sorted(np.unique(labels[rows])) == [1, 3, 8]
    assert all(np.sum(labels[rows] == k) == 50 for k in (1, 3, 8))


def task_config(data_dir, **kw):
    return {"dataset": "mnist", "data_dir": str(data_dir), "tasks": [[0, 2, 4], [1, 3], [5, 6]],
            "permuted": None, "scenario": "task", "n_train_per_class": 30, "n_train_first": None, "val_per_class": 0, "dtype": "float32", **kw}


def test_tasks_are_balanced_disjoint_and_use_every_test_image(synthetic):
    tasks = c.make_tasks(0, task_config(synthetic))
    assert [t.label for t in tasks] == ["digits 0,2,4", "digits 1,3", "digits 5,6"]
    assert [len(t.x_train) for t in tasks] == [90, 60, 60]
    assert [np.bincount(t.y_train, minlength=10).tolist() for t in tasks][:2] == [
        [30, 0, 30, 0, 30, 0, 0, 0, 0, 0], [0, 30, 0, 30, 0, 0, 0, 0, 0, 0]]
    assert [np.flatnonzero(t.head).tolist() for t in tasks] == [[0, 2, 4], [1, 3], [5, 6]]
    assert [len(t.x_test) for t in tasks] == [36, 24, 24]                 # all 12 test images per class
    assert [set(np.unique(t.y_test)) for t in tasks] == [{0, 2, 4}, {1, 3}, {5, 6}]
    assert tasks[0].x_train.dtype == np.float32 and 0 <= tasks[0].x_train.min() and tasks[0].x_train.max() <= 1
    again = c._cached_tasks.__wrapped__(0, c.task_key(task_config(synthetic)))
    assert all(np.array_equal(a.x_train, b.x_train) for a, b in zip(tasks, again))   # reproducible from the seed


def test_permuted_tasks_are_seeded_pixel_permutations_with_task_1_plain(synthetic):
    config = task_config(synthetic, tasks=[list(range(10))] * 3, permuted=3, scenario="domain")
    tasks = c.make_tasks(0, config)
    plain = c.test_split("mnist", str(synthetic), tuple(range(10)))[0]
    assert [t.label for t in tasks] == ["permutation 1 (identity)", "permutation 2", "permutation 3"]
    np.testing.assert_array_equal(tasks[0].x_test, plain)
    perms = []
    for t in tasks[1:]:
        cols = [np.flatnonzero((plain == t.x_test[:, [j]]).all(axis=0)) for j in range(784)]
        # every column of the permuted set is some column of the plain set; where columns are unique
        # the permutation is recovered, and it is a bijection on them
        unique = [col[0] for col in cols if len(col) == 1]
        assert len(unique) == len(set(unique)) > 300
        perms.append(unique)
    assert perms[0] != perms[1]
    assert all(t.head.all() for t in tasks)
    other_seed = c.make_tasks(1, config)
    assert not np.array_equal(other_seed[1].x_test, tasks[1].x_test)


def test_joint_phase_is_the_union_of_every_task_with_its_own_heads(synthetic):
    tasks = c.make_tasks(0, task_config(synthetic))
    (phase,) = c.training_phases(tasks, joint=True)
    assert len(phase.y) == sum(len(t.y_train) for t in tasks) and phase.tasks == (0, 1, 2)
    assert sorted(np.unique(phase.y)) == [0, 1, 2, 3, 4, 5, 6]
    for row_head, label in zip(phase.heads, phase.y):
        owner = next(t for t in tasks if label in t.classes)
        np.testing.assert_array_equal(row_head, owner.head)
    assert len(c.training_phases(tasks, joint=False)) == 3


def test_continual_metrics_by_hand():
    R = np.array([[0.90, 0.10], [0.70, 0.95]])
    m = c.continual_metrics(R)
    assert m["acc"] == pytest.approx(0.825) and m["forgetting"] == pytest.approx(0.20)
    assert m["bwt"] == pytest.approx(-0.20) and m["learning_acc"] == pytest.approx(0.925)
    # three tasks where task 1's best accuracy comes after its own training: max-based forgetting
    # (0.95 - 0.60) differs from first-based (0.80 - 0.60)
    R = np.array([[0.80, 0.10, 0.10], [0.95, 0.90, 0.20], [0.60, 0.85, 0.99]])
    m = c.continual_metrics(R)
    assert m["acc"] == pytest.approx((0.60 + 0.85 + 0.99) / 3)
    assert m["forgetting"] == pytest.approx(((0.95 - 0.60) + (0.90 - 0.85)) / 2)
    assert m["bwt"] == pytest.approx(((0.60 - 0.80) + (0.85 - 0.90)) / 2)
    assert m["learning_acc"] == pytest.approx((0.80 + 0.90 + 0.99) / 3)
    joint = c.continual_metrics(np.array([[0.9, 0.8, 0.7]]))
    assert joint == {"acc": pytest.approx(0.8), "forgetting": None, "bwt": None, "learning_acc": None}


def test_task_selectivity_by_hand():
    # layer 1: unit 0 fires for task 1 only (index 1), unit 1 equally (0), unit 2 0.6 vs 0.2 (index 0.5, not
    # above), unit 3 silent; layer 2: 0.9 vs 0.1 (0.8) and 0.1 vs 0.3 (0.5)
    freq = [[np.array([0.4, 0.3, 0.6, 0.0]), np.array([0.9, 0.1])],
            [np.array([0.0, 0.3, 0.2, 0.0]), np.array([0.1, 0.3])]]
    assert c.task_selectivity(freq) == ([0.25, 0.5], [1, 0])
    three = [[np.array([0.6])], [np.array([0.1])], [np.array([0.1])]]       # (0.6 - 0.1) / 0.7 > 0.5
    assert c.task_selectivity(three) == ([1.0], [0])


def test_learned_nothing_is_chance_accuracy_or_a_silent_layer():
    tasks = [c.Task("a", (0, 1), c.head_mask([0, 1], "task"), *[None] * 4),
             c.Task("b", (2, 3, 4, 5), c.head_mask([2, 3, 4, 5], "task"), *[None] * 4)]
    phase = c.Phase(None, None, None, (1,))
    alive = [[np.array([0.5, 0.0])], [np.array([0.2, 0.1])]]
    assert c.learned_nothing(phase, tasks, [0.1, 0.31], alive, "test") is None
    assert "validation accuracy 0.2900 on the tasks just trained is within 0.05 of chance (0.2500)" == \
        c.learned_nothing(phase, tasks, [0.9, 0.29], None, "validation")
    assert c.learned_nothing(phase, tasks, [0.9, 0.9], None, "validation") is None        # no firing to read
    silent = [[np.array([0.5, 0.0])], [np.array([0.0, 0.0])]]
    assert "no unit of hidden layer 1 fires on any test image" in c.learned_nothing(phase, tasks, [0.9, 0.9], silent,
                                                                                     "test")


def test_a_diverged_models_rows_of_R_are_chance_on_every_task_met_from_its_divergence_on():
    tasks = [c.Task(str(j), cls, c.head_mask(list(cls), "task"), *[None] * 4)
             for j, cls in enumerate([(0, 1), (2, 3), (4, 5, 6, 7)])]
    phases = [c.Phase(None, None, None, (j,)) for j in range(3)]
    R = np.full((3, 3), np.nan)
    R[0, 0] = 0.9                                            # task 1 learned; diverged while training task 2
    c.fill_at_chance(R, phases[1:], tasks)
    chance = [0.5, 0.5, 0.25]                               # one over the outputs each task allows
    np.testing.assert_array_equal(R[1, :2], chance[:2])
    np.testing.assert_array_equal(R[2], chance)
    assert np.isnan(R[0, 1:]).all() and np.isnan(R[1, 2]) and R[0, 0] == 0.9
    m = c.continual_metrics(R)
    assert m["acc"] == pytest.approx(np.mean(chance)) and m["forgetting"] == pytest.approx((0.9 - 0.5 + 0) / 2)
    assert m["learning_acc"] == pytest.approx((0.9 + 0.5 + 0.25) / 3)


def test_flop_count_of_default_run():
    config = {"hidden": 400, "depth": 2, "epochs": 5, "models": ["relu", "lwta", "topk"], "n_seeds": 3,
              "joint": False, "scenario": "task"}
    tasks = [{"n_train": 2500, "n_test": 5139}, {"n_train": 2500, "n_test": 4861}]
    f = c.count_flops(config, tasks)
    per_sample_fwd = 2 * (784 * 400 + 400 * 400 + 400 * 10)
    per_sample_bwd = 2 * (784 * 400 + 2 * 400 * 400 + 2 * 400 * 10)
    assert f["train"] == 3 * 3 * 5000 * 5 * (per_sample_fwd + per_sample_bwd)
    # the headline tests both tasks at 11 points; the two other seeds task 1 after phase 1, both after phase 2
    assert f["eval"] == 3 * (11 * 10000 + 2 * (5139 + 10000)) * per_sample_fwd
    assert c.count_flops({**config, "no_test": True}, tasks)["eval"] == 3 * 11 * 10000 * per_sample_fwd
    # headline submask analysis: memory (5000 images), flip sample (500 images at each of 2 phase starts and
    # 10 epochs), kNN and softmax on 1000 test images per task, and 2 x 1000 x 401 x 2500 multiply-adds per
    # task for the distances
    per_variant = per_sample_fwd * (5000 + 500 * 12 + 2 * 2000) + 2 * (2 * 1000 * 401 * 2500)
    assert f["analysis"] == 3 * per_variant and f["total"] == f["train"] + f["eval"] + f["analysis"]


@pytest.mark.robustness
def test_weights_broken_by_an_epochs_last_step_count_as_diverged():
    model = tiny_model("relu", np.float32)
    heads = np.repeat(c.head_mask([0, 1], "task")[None], 8, axis=0)
    c.reset_optimizer(model, heads[0], CFG)
    config = dict(CFG, batch_size=4)
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(8, 6)).astype(np.float32), rng.integers(0, 2, 8)
    assert c.train_epoch(model, x, y, heads, config, {"task": 1, "epoch": 1}) is not None
    assert model.failed is None
    model.params[2][0, 0] = np.inf                   # as if the last update had overflowed
    model.velocity = [np.zeros_like(p) for p in model.params]
    assert c.train_epoch(model, x[:0], y[:0], heads[:0], config, {"task": 1, "epoch": 2}) is None
    assert model.failed == {"reason": "diverged", "task": 1, "epoch": 2, "detail": "the weights became non-finite"}


def test_max_norm_rescales_only_the_columns_that_are_too_long():
    W = np.array([[3.0, 0.0, 0.6, 0.0], [4.0, 1.0, 0.8, 0.0]], dtype=np.float32)   # column norms 5, 1, 1, 0
    short = W[:, 1:].copy()
    c.clip_column_norms(W, 2.0)
    np.testing.assert_allclose(W[:, 0], [1.2, 1.6], rtol=1e-6)                     # 5 -> 2, direction kept
    np.testing.assert_array_equal(W[:, 1:], short)                                 # bit for bit
    assert W.dtype == np.float32


def test_max_norm_holds_every_hidden_unit_after_each_update_but_not_the_output_layer():
    config = dict(CFG, batch_size=4, lr=5.0, max_norm=0.5)
    model = tiny_model("maxout", np.float32, config=config)
    heads = np.repeat(c.head_mask([0, 1], "task")[None], 8, axis=0)
    c.reset_optimizer(model, heads[0], config)
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(8, 6)).astype(np.float32), rng.integers(0, 2, 8)
    model.params[-2] *= 10                                  # a long output layer stays long
    c.train_epoch(model, x, y, heads, config, {"task": 1, "epoch": 1})
    for W in model.params[0:-2:2]:
        norms = np.linalg.norm(W, axis=0)
        assert norms.max() <= 0.5 * (1 + 1e-6) and norms.max() >= 0.5 * (1 - 1e-6)
    assert np.linalg.norm(model.params[-2], axis=0).max() > 1.0


def test_curve_points_every_epoch_up_to_the_limit_then_spaced_with_every_phase_end():
    assert c.curve_points(2, 5) == list(range(11))                     # the headline: every epoch
    assert c.curve_points(10, 10) == list(range(101))                  # 100 epochs: still every one
    long = c.curve_points(5, 500)                                      # the SDM recipe: 2,500 epochs
    assert long[:3] == [0, 25, 50] and long[-1] == 2500 and 95 <= len(long) <= 110
    assert all(p in long for p in range(500, 2501, 500))              # every phase end
    assert c.curve_points(3, 7)[-1] == 21 and set(range(0, 22, 7)) <= set(c.curve_points(3, 7))


def test_a_long_headline_job_tests_at_its_curve_points_only(synthetic, tmp_path):
    from conftest import tiny_args
    config = c.parse_config(tiny_args(tmp_path, synthetic, "--epochs", "51", "--hidden", "8"))[0]
    out = c.run_course(0, "relu", config, headline=True)
    measured = [p for p, row in enumerate(out["curves"]) if np.isfinite(row).all()]
    assert measured == c.curve_points(2, 51) and len(measured) < 103            # 102 epochs: every 2nd
    assert np.isnan(out["curves"][1]).all() and np.isfinite(out["curves"][51]).all()   # phase end 51 (odd)
    R = out["summary"]["R"]
    assert R[0][1] is None and R[1] == out["curves"][102].tolist()
