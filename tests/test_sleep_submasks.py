"""Sleep replay consolidation (one spiking step by hand, scales, no-op, bias-free training, end to end) and the
submask analysis (kNN against brute force, flip fractions by hand, the headline job's output)."""
import json
import math

import numpy as np
import pytest
from conftest import c, tiny_args


def f(w):
    """The original's weight dependence of the plasticity rule, in float64."""
    return 2 / (1 + math.exp(min(w / 0.001, 700)))


def test_one_sleep_step_of_a_3_unit_network_by_hand():
    p = dict(c.SLEEP, decay=0.5, inc=0.1, dec=0.01)
    W1 = np.array([[0.001, 0.002, -0.004],      # rows: the 3 inputs; columns: the 3 hidden units
                   [-0.002, 0.5, 0.0],
                   [0.0, -0.001, 0.003]], dtype=np.float32)
    W2 = np.array([[0.004, -0.003], [0.3, 0.2], [0.1, 0.1]], dtype=np.float32)
    v1, v2 = np.array([1.2, 0.9, 0.2], np.float32), np.array([0.0, 0.5], np.float32)
    before1, before2 = W1.copy(), W2.copy()
    spikes = c.sleep_step([W1, W2], [v1, v2], np.array([True, False, True]), [np.float32(500), np.float32(100)],
                          [np.float32(1.0), np.float32(0.3)], p)
    # hidden: 0.5 * [1.2, 0.9, 0.2] + 500 * (row 0 + row 2) = [0.6, 0.45, 0.1] + [0.5, 0.5, -0.5]: unit 0 fires
    assert [s.tolist() for s in spikes[1:]] == [[True, False, False], [True, False]]
    np.testing.assert_allclose(v1, [0.0, 0.95, -0.4], rtol=1e-6)             # unit 0 reset to 0
    expected1 = before1.astype(np.float64)
    expected1[0, 0] += 0.1 * f(0.001)          # input fired with it: increment
    expected1[1, 0] -= 0.01 * f(-0.002)        # input silent: decrement (a negative weight moves most)
    expected1[2, 0] += 0.1 * f(0.0)            # f(0) = 1
    np.testing.assert_allclose(W1, expected1, rtol=1e-6, atol=1e-9)
    assert np.array_equal(W1[:, 1:], before1[:, 1:])                       # units that did not fire: untouched
    # output: 0.5 * [0, 0.5] + 100 * W2 row 0 = [0.4, -0.05]; unit 0 reaches 0.3 and fires in the same step
    np.testing.assert_allclose(v2, [0.0, -0.05], rtol=1e-6)
    assert W2[0, 0] == pytest.approx(0.004 + 0.1 * f(0.004), rel=1e-6)
    assert W2[1, 0] == before2[1, 0] and W2[2, 0] == before2[2, 0]        # strong weights: factor 0 (no change)
    assert np.array_equal(W2[:, 1], before2[:, 1])


def test_stdp_factor_is_the_originals_steep_decreasing_sigmoid():
    w = np.array([-1.0, -0.002, 0.0, 0.001, 0.004, 0.3], dtype=np.float32)
    np.testing.assert_allclose(c.stdp_factor(w), [f(x) for x in w.astype(np.float64)], rtol=1e-6, atol=1e-30)
    assert c.stdp_factor(w)[-1] == 0 and c.stdp_factor(w).dtype == np.float32


def bias_free_model(weights, n_in):
    weights = [np.array(w, dtype=np.float32) for w in weights]
    model = c.Model(c.parse_variant("relu:bias=0"), {"hidden": weights[0].shape[1], "depth": len(weights) - 1},
                    c.seed_streams(0), n_in=n_in)
    model.params[0::2] = weights
    return model


def test_layer_scales_by_hand():
    W3 = np.zeros((2, 10))
    W3[0, 0], W3[1, 1], W3[1, 2] = 4, 0.5, -1
    model = bias_free_model([[[1, -1], [0.5, 2]], [[0.5, 0], [-1, 3]], W3], n_in=2)
    x = np.eye(2, dtype=np.float32)
    # layer 1: relu([1, -1]) and relu([0.5, 2]): peak activation 2 = peak weight 2 -> s1 = 2
    # layer 2: [1, 0] W2 = [0.5, 0], [0.5, 2] W2 = [-1.75, 6]: peak 6 > weight 3 -> s2 = 6
    # output: [0.5, 0] W3 -> logit 2, [0, 6] W3 -> logits 3 and -6: peak 3 < weight 4 -> s3 = 4
    # chained as the original: f1 = 2, f2 = 6 / 2, f3 = 4 / f2
    factors = c.sleep_scales(model, [x[:1], x[1:]])          # the images may come in several arrays
    np.testing.assert_allclose(factors, [2, 3, 4 / 3], rtol=1e-6)


def test_sleep_inputs_are_patches_of_the_mean_image_at_the_originals_rate():
    bright = c.sleep_inputs(np.full(784, 3.0, np.float32), 4000, np.random.default_rng(0))   # p = 1: all fire
    assert bright.shape == (4000, 784) and bright.dtype == bool and np.all(bright.sum(axis=1) == 121)
    images = bright.reshape(-1, 28, 28)
    rows, cols = images.any(axis=2), images.any(axis=1)
    assert np.all(rows.sum(axis=1) == 11) and np.all(cols.sum(axis=1) == 11)      # one 11 x 11 square
    assert set(rows.argmax(axis=1)) == set(cols.argmax(axis=1)) == set(range(18))  # every corner that fits
    spikes = c.sleep_inputs(np.full(784, 0.5, np.float32), 4000, np.random.default_rng(0))
    p = 2 * c.SLEEP["dt"] * c.SLEEP["max_rate"] * 0.5                                # 0.2395 per pixel and step
    assert spikes.sum(axis=1).mean() == pytest.approx(121 * p, rel=0.02)
    assert not c.sleep_inputs(np.zeros(784, np.float32), 500, np.random.default_rng(1)).any()


def sleepy_model(seed=0):
    config = {"hidden": 16, "depth": 2}
    model = c.Model(c.parse_variant("relu:sleep=1"), config, c.seed_streams(seed))
    return model, np.random.default_rng(seed).random((50, 784), dtype=np.float32)


def test_sleep_changes_no_weight_when_no_unit_spikes():
    model, x = sleepy_model()
    before = [w.copy() for w in model.params]
    out = c.sleep_phase(model, [np.zeros_like(x)], 300, np.random.default_rng(0))    # a black mean image
    assert out["rate"] == [0.0, 0.0, 0.0] and out["iterations"] == 300
    out = c.sleep_phase(model, [x], 300, np.random.default_rng(0), dict(c.SLEEP, beta=(1e9, 1e9, 1e9)))
    assert out["rate"] == [0.0, 0.0, 0.0]                    # inputs spike, but no unit reaches its threshold
    assert all(np.array_equal(a, b) for a, b in zip(model.params, before))
    out = c.sleep_phase(model, [x], 300, np.random.default_rng(0))
    assert out["rate"][0] > 0 and not np.array_equal(model.params[0], before[0])    # the real thing does act


def test_sleep_is_reproducible_from_its_generator():
    a, x = sleepy_model()
    b, _ = sleepy_model()
    c.sleep_phase(a, [x], 200, np.random.default_rng(5))
    c.sleep_phase(b, [x[:20], x[20:]], 200, np.random.default_rng(5))
    assert all(np.array_equal(p, q) for p, q in zip(a.params, b.params))


def test_sleep_iterations_grow_by_a_third_per_task_as_the_original():
    assert [c.sleep_iterations(15000, n) for n in (1, 2, 3, 4, 5)] == [15000, 20000, 25000, 30000, 35000]
    assert [c.sleep_iterations(50, n) for n in (1, 2)] == [50, 67]


def test_bias_free_variant_keeps_biases_exactly_zero_through_training():
    rng = np.random.default_rng(3)
    config = {"hidden": 8, "depth": 2, "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "batch_size": 4}
    model = c.Model(c.parse_variant("lwta:bias=0"), config, c.seed_streams(0), n_in=6)
    head = c.head_mask(range(10), "class")
    c.reset_optimizer(model, head, config)
    W1 = model.params[0].copy()
    x, y = rng.normal(size=(16, 6)).astype(np.float32), rng.integers(0, 10, 16)
    for _ in range(3):
        c.train_epoch(model, x, y, np.repeat(head[None], 16, axis=0), config, {})
    assert all(np.all(b == 0) for b in model.params[1::2]) and not np.array_equal(W1, model.params[0])
    assert c.parse_variant("relu:sleep=1").bias == 0 and c.parse_variant("relu:sleep=1:bias=0").bias == 0
    assert c.parse_variant("relu").bias == 1 and "bias" not in c.parse_variant("relu").settings()


BAD = [("relu:sleep=1:bias=1", "sleep needs a bias-free network"), ("relu:sleep_iters=5", "sleep_iters applies only with sleep=1"),
       ("relu:sleep=2", "must be 0 or 1"), ("relu:bias=x", "must be 0 or 1"),
       ("relu:sleep=1:sleep_iters=0", "integer >= 1")]


@pytest.mark.robustness
@pytest.mark.parametrize("spec,message", BAD, ids=[s for s, _ in BAD])
def test_bad_sleep_specs_exit_2_naming_the_spec(spec, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        c.main(["--data-dir", str(tmp_path / "absent"), "--models", spec, "--out", str(tmp_path / "r.json")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert repr(spec) in err and message in err


@pytest.mark.robustness
def test_sleep_with_maxout_exits_2_saying_why(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        c.main(["--data-dir", str(tmp_path / "absent"), "--models", "relu,maxout:sleep=1", "--out",
                str(tmp_path / "r.json")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "'maxout:sleep=1'" in err and "passes 200 values on from 400 units" in err


def brute_nearest(queries, memory, k):
    out = []
    for q in queries:
        d = [sum(int(a != b) for a, b in zip(q, m)) for m in memory]
        out.append(sorted(range(len(memory)), key=lambda j: (d[j], j))[:k])
    return np.array(out)


def brute_vote(labels):
    out = []
    for row in labels:
        counts = {lab: list(row).count(lab) for lab in row}
        best = max(counts.values())
        out.append(next(lab for lab in row if counts[lab] == best))     # the nearest of the tied classes
    return np.array(out)


@pytest.mark.parametrize("units,chunk", [(6, 7), (40, 512)])
def test_knn_on_submasks_matches_brute_force(units, chunk):
    rng = np.random.default_rng(units)
    memory = (rng.random((60, units)) < 0.4).astype(np.float32)      # 6 units: many equal distances
    queries = (rng.random((25, units)) < 0.4).astype(np.float32)
    labels = rng.integers(0, 4, 60)
    got = c.nearest(queries, memory, 5, chunk=chunk)
    np.testing.assert_array_equal(got, brute_nearest(queries, memory, 5))
    np.testing.assert_array_equal(c.vote(labels[got]), brute_vote(labels[got]))
    assert c.nearest(queries, memory[:3], 5).shape == (25, 3)          # fewer memories than k: all of them


def test_vote_breaks_ties_by_the_nearer_neighbour():
    neighbours = np.array([[3, 1, 1, 3, 2], [1, 3, 3, 1, 2], [2, 2, 0, 0, 0], [4, 1, 2, 3, 0]])
    assert c.vote(neighbours).tolist() == [3, 1, 0, 4]


def test_flip_fraction_of_a_hand_made_sequence_of_masks():
    seq = [[np.array([[1, 0, 1, 0], [0, 0, 1, 1]], bool), np.array([[1, 1], [0, 0]], bool)],
           [np.array([[1, 1, 1, 0], [0, 0, 1, 1]], bool), np.array([[0, 0], [1, 1]], bool)],
           [np.array([[0, 0, 0, 1], [1, 1, 0, 0]], bool), np.array([[0, 0], [1, 1]], bool)]]
    assert [c.flip_fraction(a, b) for a, b in zip(seq, seq[1:])] == [[1 / 8, 4 / 4], [8 / 8, 0.0]]

    class Recorded:                                  # a model whose submasks follow the sequence above
        layers, failed = [None, None], None

        def __init__(self):
            self.calls = 0

        def forward(self, x):
            masks = seq[self.calls]
            self.calls += 1
            return None, (None, masks, None)

    tasks = [c.Task("t", (0,), None, np.zeros((2, 3), np.float32), np.zeros(2, int), None, None)]
    analysis = c.SubmaskAnalysis(Recorded(), tasks, c.seed_streams(0)[7])
    analysis.start_phase(c.Phase(np.zeros((2, 3), np.float32), np.zeros(2, int), None, (0,)))
    analysis.record()
    analysis.record()
    assert analysis.flips == [[0.125, 1.0], [1.0, 0.0]] and len(analysis.x) == 2


def test_flips_are_followed_on_the_current_phases_training_images(synthetic):
    config = c.parse_config(tiny_args(synthetic.parent, synthetic, "--models", "relu"))[0]
    tasks = c.make_tasks(0, config)
    model = c.Model(c.parse_variant("relu"), config, c.seed_streams(0))
    analysis = c.SubmaskAnalysis(model, tasks, c.seed_streams(0)[7], n=40)
    for phase in c.training_phases(tasks, joint=False):
        analysis.start_phase(phase)
        rows = [np.flatnonzero((phase.x == x).all(axis=1)) for x in analysis.x]
        assert len(analysis.x) == 40 and all(len(r) for r in rows)            # every image is the phase's own
        assert len({int(r[0]) for r in rows}) == 40                            # drawn without replacement


def test_headline_job_reports_submasks_and_knn_close_to_softmax(synthetic):
    args = tiny_args(synthetic.parent, synthetic, "--models", "relu")
    config = c.parse_config(args)[0]
    out = c.run_course(0, "relu", config, headline=True)
    sub = out["submasks"]
    assert sub.keys() == {"knn_k", "knn_weighted", "knn_sample", "knn_acc", "softmax_acc", "flip_sample", "flip_on",
                          "flip_fraction"}
    assert sub["knn_k"] == c.KNN_K and sub["flip_sample"] == 150                 # all 5 x 30 images of a task
    assert sub["softmax_acc"] == out["summary"]["R"][-1]            # all 60 test images fit in the sample
    assert len(sub["knn_acc"]) == 2 and min(sub["knn_acc"]) > 0.8               # the toy data is easy
    assert np.array(sub["flip_fraction"]).shape == (4, 2)                       # 2 tasks x 2 epochs, 2 layers
    assert 0 < sub["flip_fraction"][0][0] < 1 and out["timings"]["submasks_s"] > 0
    assert "submasks" not in c.run_course(1, "relu", config, headline=False)


def test_submask_knn_uses_only_the_classes_the_task_head_allows(synthetic):
    config = c.parse_config(tiny_args(synthetic.parent, synthetic, "--models", "relu"))[0]
    tasks = c.make_tasks(0, config)
    model = c.Model(c.parse_variant("relu"), config, c.seed_streams(0))
    memory = np.concatenate([c.submasks(model, t.x_train)[-1] for t in tasks]).astype(np.float32)
    labels = np.concatenate([t.y_train for t in tasks])
    knn, softmax, k = c.submask_knn(model, tasks, np.random.default_rng(3), n=40)  # 40 of each task's 60 images
    assert k == c.KNN_K                                                          # no validation images
    rng = np.random.default_rng(3)
    for t, acc, soft in zip(tasks, knn, softmax):
        rows = np.sort(rng.choice(len(t.y_test), 40, replace=False))              # the same sample
        queries = c.submasks(model, t.x_test[rows])[-1].astype(np.float32)
        allowed = np.flatnonzero(t.head[labels])
        predicted = brute_vote(labels[allowed][brute_nearest(queries, memory[allowed], 5)])
        assert acc == np.mean(predicted == t.y_test[rows])
        assert set(predicted) <= set(t.classes)
        logits = model.forward(t.x_test[rows])[0]
        assert soft == np.mean(np.where(t.head, logits, -np.inf).argmax(axis=1) == t.y_test[rows])


def test_sleep_variant_end_to_end(synthetic, tmp_path):
    specs = "relu:bias=0,relu:sleep=1:sleep_iters=50"
    assert c.main(tiny_args(tmp_path, synthetic, "--models", specs)) == 0
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["config"]["variants"]["relu:sleep=1:sleep_iters=50"] == {
        "activation": "relu", "dropout_in": 0.0, "dropout": 0.0, "bias": 0, "sleep": 1, "sleep_iters": 50}
    slept = doc["headline"]["summary"]["relu:sleep=1:sleep_iters=50"]
    assert slept["failed"] is None and slept["sleep"]["iterations"] == [50, 67]
    assert len(slept["sleep"]["alpha"]) == 2 and all(len(a) == 3 for a in slept["sleep"]["alpha"])
    assert sum(slept["sleep"]["rate"][0]) > 0                                  # units did fire
    assert doc["per_seed"][0]["timings"]["relu:sleep=1:sleep_iters=50"]["sleep_s"] > 0
    assert "sleep" not in doc["headline"]["summary"]["relu:bias=0"]
    # the same seed without sleep: identical until the first sleep, then the weights differ
    config = c.parse_config(tiny_args(tmp_path, synthetic, "--models", specs))[0]
    plain, sleeper = (c.run_course(0, v, config, headline=True)["units"]["W1"] for v in specs.split(","))
    assert not np.array_equal(plain, sleeper)
