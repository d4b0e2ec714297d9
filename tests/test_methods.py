"""Issue 18: the field's methods against forgetting (EWC, SI, L2, replay) as spec keys on any activation:
penalty gradients, the Fisher, SI's importance on a hand-computed path, the replay buffer and its mixing,
and the keys' validation."""
import json

import numpy as np
import pytest

from conftest import MNIST_DIR, c, needs_mnist, tiny_args, whole_and_resumed
from test_model import tiny_model

CFG = {"hidden": 8, "depth": 2, "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0}


def data(n=7, n_in=6, seed=3, scenario="class"):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_in))
    y = rng.integers(0, 10, n)
    heads = np.ones((n, 10), dtype=bool) if scenario == "class" else np.eye(10, dtype=bool)[y] | np.eye(10, dtype=bool)[(y + 1) % 10]
    return x, y, heads


def method_with_terms(model, spec_key, rng):
    """The model's one method, given two random penalty terms (importances and anchors)."""
    method = model.methods[0]
    method.terms = [([rng.uniform(0, 2, p.shape) for p in model.params],
                     [p + rng.normal(0, 0.3, p.shape) for p in model.params]) for _ in range(2)]
    if spec_key == "l2":
        method.terms = [(None, anchor) for _, anchor in method.terms[:1]]
    return method


@pytest.mark.parametrize("spec", ["relu:ewc=3", "lwta:si=2", "topk:l2=0.7", "relu:ewc=2:ewc_fisher=sdm"])
def test_each_penalty_gradient_matches_finite_differences_of_its_value(spec):
    model = tiny_model(spec, config=CFG)
    rng = np.random.default_rng(5)
    method = method_with_terms(model, spec.split(":")[1].split("=")[0], rng)
    model.scratch = [np.empty_like(p) for p in model.params]
    grads = [np.zeros_like(p) for p in model.params]
    method.add_gradient(model, grads, scale=0.5)                     # SGD passes its learning rate as scale
    eps = 1e-6
    for p, g in zip(model.params, grads):
        for i in list(np.ndindex(p.shape))[:40]:
            old = p[i]
            p[i] = old + eps
            up = method.value(model.params)
            p[i] = old - eps
            down = method.value(model.params)
            p[i] = old
            assert g[i] == pytest.approx(0.5 * (up - down) / (2 * eps), rel=1e-6, abs=1e-9)


def test_si_penalty_is_c_times_omega_times_squared_distance_without_a_half():
    model = tiny_model("relu:si=3", config=CFG)
    si = model.methods[0]
    omega = [np.full(p.shape, 2.0) for p in model.params]
    si.terms = [(omega, [p - 1.0 for p in model.params])]             # every weight 1 away from its anchor
    n = sum(p.size for p in model.params)
    assert si.value(model.params) == pytest.approx(3 * 2.0 * n)


@pytest.mark.parametrize("spec,scenario", [("relu", "class"), ("lwta", "task"), ("maxout:k=2", "class")])
def test_fisher_equals_the_brute_force_expectation_over_classes_of_per_image_squared_gradients(spec, scenario):
    model = tiny_model(spec, config=CFG)
    x, y, heads = data(scenario=scenario)
    fisher = c.diagonal_fisher(model, x, heads, chunk=3)             # chunks that split the images unevenly
    brute = [np.zeros_like(p) for p in model.params]
    for n in range(len(x)):
        logits, cache = model.forward(x[n:n + 1])
        prob = c.softmax_in_head(logits, heads[n:n + 1])[0]
        for k in np.flatnonzero(heads[n]):
            _, d = c.masked_cross_entropy(logits, np.array([k]), heads[n:n + 1])   # gradient of -log p(k | x)
            for b, g in zip(brute, model.backward(d, cache)):
                b += prob[k] * g * g
    for f, b in zip(fisher, brute):
        np.testing.assert_allclose(f, b / len(x), rtol=1e-10, atol=1e-14)


def test_ewc_sums_its_past_tasks_into_one_term_and_online_ewc_anchors_at_the_latest():
    x, y, heads = data(n=12)
    phase = c.Phase(x, y, heads, (0,))
    for online in (0, 1):
        model = tiny_model(f"relu:ewc=1:ewc_online={online}" if online else "relu:ewc=1", config=CFG)
        ewc = model.methods[0]
        fishers, anchors = [], []
        for t in range(3):
            for p in model.params:
                p += 0.05 * (t + 1)
            fishers.append(c.diagonal_fisher(model, x, heads))
            anchors.append(c.snapshot(model.params))
            ewc.end_phase(model, phase)
            assert len(ewc.terms) == 1                                   # one term: constant cost per update
            if t == 0:                                                   # one past task: its own anchor, exactly
                np.testing.assert_array_equal(ewc.terms[0][1][0], model.params[0])
        np.testing.assert_allclose(ewc.terms[0][0][2], sum(f[2] for f in fishers), rtol=1e-12)
        if online:
            np.testing.assert_array_equal(ewc.terms[0][1][0], model.params[0])      # anchored at the latest
            continue
        # offline: the summed quadratic's gradient is sum_t F_t (theta - theta_t), checked at another point
        model.scratch = [np.empty_like(p) for p in model.params]
        probe = [p + 0.3 for p in model.params]
        model.params = probe
        grads = [np.zeros_like(p) for p in probe]
        ewc.add_gradient(model, grads, scale=1.0)
        for i, g in enumerate(grads):
            want = sum(f[i] * (probe[i] - a[i]) for f, a in zip(fishers, anchors))
            np.testing.assert_allclose(g, want, rtol=1e-9, atol=1e-12)


def test_sdm_importance_equals_a_loop_over_its_minibatches_and_classes():
    """The SDM source's EWC importance (its EWC_Memory): per minibatch, the squared gradient of the summed
    cross-entropy of softmax(beta z) against the model's own arg-max; summed, over 2,560."""
    model = tiny_model("relu:ewc=1:ewc_fisher=sdm", config=CFG)
    x, y, heads = data(n=11, scenario="task")
    phase = c.Phase(x, y, heads, (0,))
    got = c.sdm_importance(model, phase, np.random.default_rng(4), batches=3, size=3, beta=0.5, divisor=7.0)
    rows = np.random.default_rng(4).permutation(len(y))[:9]
    want = [np.zeros_like(p) for p in model.params]
    for b in range(3):
        batch = [np.zeros_like(p) for p in model.params]
        for n in rows[3 * b:3 * b + 3]:                              # the minibatch's summed gradient, image by image
            logits, cache = model.forward(x[n:n + 1])
            allowed = np.flatnonzero(heads[n])
            own = allowed[logits[0, allowed].argmax()]
            _, d = c.masked_cross_entropy(0.5 * logits, np.array([own]), heads[n:n + 1])  # mean over 1 = sum
            for acc, g in zip(batch, model.backward(0.5 * d, cache)):
                acc += g
        for w, g in zip(want, batch):
            w += g * g
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b / 7.0, rtol=1e-9, atol=1e-15)


def test_sdm_ewc_penalty_is_lambda_times_importance_times_squared_distance_without_a_half():
    model = tiny_model("relu:ewc=3:ewc_fisher=sdm", config=CFG)
    ewc = model.methods[0]
    ewc.terms = [([np.full(p.shape, 2.0) for p in model.params], [p - 1.0 for p in model.params])]
    n = sum(p.size for p in model.params)
    assert ewc.value(model.params) == pytest.approx(3 * 2.0 * n)


def test_si_importance_on_a_hand_computed_path():
    """Two updates of known gradients and steps, then omega = -sum(g * step) / (total change^2 + xi)."""
    model = tiny_model("relu:si=1:si_xi=0.5", config=CFG)
    si = model.methods[0]
    model.params = [np.zeros((1, 2)), np.zeros(2)] + [np.zeros((1, 1))] * 0
    si.start_phase(model)
    steps = [(np.array([[1.0, -2.0]]), np.array([[-0.1, 0.3]])), (np.array([[0.5, 1.0]]), np.array([[-0.2, -0.1]]))]
    for g, step in steps:
        grads = [g * 0.1, np.zeros(2)]                                 # SGD hands over lr-scaled gradients
        si.before_update(model, grads, scale=0.1)
        model.params[0] += step
        si.after_update(model)
    path = -(1.0 * -0.1 + 0.5 * -0.2), -(-2.0 * 0.3 + 1.0 * -0.1)      # = 0.2, 0.7
    total = np.array([-0.3, 0.2])
    si.end_phase(model, None)
    np.testing.assert_allclose(si.terms[0][0][0][0], np.array(path) / (total ** 2 + 0.5))
    np.testing.assert_array_equal(si.terms[0][1][0], model.params[0])
    si.start_phase(model)                                              # a second task adds to omega
    si.end_phase(model, None)
    np.testing.assert_allclose(si.terms[0][0][0][0], np.array(path) / (total ** 2 + 0.5))


def test_l2_anchors_at_the_previous_task_only():
    model = tiny_model("relu:l2=2", config=CFG)
    l2 = model.methods[0]
    for t in range(2):
        for p in model.params:
            p += 1.0
        l2.end_phase(model, None)
    assert len(l2.terms) == 1 and l2.terms[0][0] is None
    np.testing.assert_array_equal(l2.terms[0][1][1], model.params[1])


def test_replay_buffer_is_class_balanced_seeded_and_holds_only_past_training_images():
    def filled(seed):
        model = c.Model(c.parse_variant("relu:replay=3"), {**CFG, "hidden": 8}, c.seed_streams(seed), n_in=5)
        replay = model.methods[0]
        for t, classes in enumerate(((0, 1), (2, 3))):
            y = np.repeat(classes, 10)
            x = np.arange(len(y) * 5, dtype=float).reshape(-1, 5) + 1000 * t
            replay.end_phase(model, c.Phase(x, y, np.ones((len(y), 10), bool), (t,)))
        return replay, x
    replay, last_x = filled(0)
    assert np.bincount(replay.y).tolist() == [3, 3, 3, 3]
    firsts = {tuple(r) for r in np.arange(100, dtype=float).reshape(-1, 5)}
    seconds = {tuple(r) for r in last_x}
    assert all(tuple(r) in (firsts | seconds) for r in replay.x)
    again, _ = filled(0)
    np.testing.assert_array_equal(replay.x, again.x)                  # the seed decides the buffer
    other, _ = filled(1)
    assert not np.array_equal(replay.x, other.x)


def test_replay_mixes_one_buffer_image_per_new_image_weighted_one_over_t():
    model = c.Model(c.parse_variant("relu:replay=4"), CFG, c.seed_streams(0), n_in=5)
    replay = model.methods[0]
    x, y, h = np.zeros((6, 5)), np.zeros(6, int), np.ones((6, 10), bool)
    assert replay.minibatch(x, y, h, None)[3] is None                  # nothing to replay in the first task
    for t in range(2):                                                 # two past tasks of two classes
        yy = np.repeat([2 * t, 2 * t + 1], 5)
        replay.end_phase(model, c.Phase(np.ones((10, 5)) * (t + 1), yy, np.ones((10, 10), bool), (t,)))
    xb, yb, hb, w = replay.minibatch(x, y, h, None)
    assert len(yb) == 12 and (xb[6:] > 0).all() and len(set(map(tuple, xb[6:]))) <= 2
    t = 3                                                              # the current task is the third
    np.testing.assert_allclose(w[:6], 12 / (t * 6))
    np.testing.assert_allclose(w[6:], 12 * (1 - 1 / t) / 6)
    assert w.sum() / 12 == pytest.approx(1.0)                          # the loss stays a weighted mean
    xb, yb, _, w = replay.minibatch(np.zeros((20, 5)), np.zeros(20, int), np.ones((20, 10), bool), None)
    assert len(yb) == 20 + 16                                          # a buffer smaller than B: all of it


@pytest.mark.parametrize("activation", list(c.ACTIVATIONS))
def test_every_method_key_combines_with_every_activation(activation):
    spec = f"{activation}:ewc=10:ewc_online=1:si=1:si_xi=0.2:l2=0.5:replay=20"
    v = c.parse_variant(spec)
    assert set(v.methods) == {"ewc", "si", "l2", "replay"}
    assert v.settings()["ewc"] == 10 and v.settings()["replay"] == 20
    model = c.Model(v, {**CFG, "hidden": 8}, c.seed_streams(0))
    assert [type(m).__name__ for m in model.methods] == ["EWC", "SI", "L2", "Replay"]
    assert "ewc" not in c.parse_variant(activation).settings()         # off: earlier run folders still match


@pytest.mark.robustness
@pytest.mark.parametrize("models,extra,message", [
    ("relu:ewc=-1", [], "'relu:ewc=-1': ewc must be a number >= 0, got '-1'"),
    ("lwta:si=nan", [], "si must be a number >= 0, got 'nan'"),
    ("relu:si=1:si_xi=0", [], "si_xi must be a number > 0, got '0'"),
    ("topk:si_xi=0.1", [], "si_xi applies only with si > 0; give that too, or leave si_xi out"),
    ("relu:ewc_online=1", [], "ewc_online applies only with ewc > 0"),
    ("relu:replay=2.5", [], "replay must be an integer >= 0, got '2.5'"),
    ("relu:l2=x", [], "l2 must be a number >= 0, got 'x'"),
    ("relu:replay=600", [], "replay=600 keeps more images per class than a task has (500)"),
    ("relu:replay=10", ["--joint"], "--joint trains one phase"),
    ("relu:ewc=1", ["--loss", "mse"], "--loss mse has none"),
    ("relu:replay=10", ["--n-train-first", "1000"], "use --n-train-per-class"),
])
def test_bad_method_values_and_combinations_are_refused_naming_the_key(capsys, models, extra, message):
    with pytest.raises(SystemExit) as e:
        c.parse_config(["--models", models, *extra])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "argument --models" in err and message in err


@needs_mnist
def test_methods_train_on_real_mnist_repeat_bit_for_bit_and_replay_keeps_the_first_task(tmp_path):
    flags = ["--tasks", "01,23", "--scenario", "class", "--n-train-per-class", "200", "--hidden", "64", "--lr", "0.02",
             "--models", "relu,relu:replay=10,lwta:ewc=10:si=1:l2=0.1",
             "--workers", "1"]
    results = []
    for run in ("a", "b"):
        assert c.main(tiny_args(tmp_path / run, MNIST_DIR, *flags)) == 0
        results.append(json.loads((tmp_path / run / "out" / "results.json").read_text())["per_seed"][0]["summary"])
    runs = results[0]
    assert all(not s["failed"] for s in runs.values())
    assert runs["relu"]["R"][1][0] < 0.05                            # class-incremental: task 1 is gone
    assert runs["relu:replay=10"]["R"][1][0] > 0.5                   # replay keeps much of it
    assert results[0] == results[1]


@needs_mnist
def test_a_job_with_every_method_interrupted_in_task_3_resumes_bit_for_bit(tmp_path, monkeypatch):
    flags = ["--data-dir", MNIST_DIR, "--hidden", "32", "--epochs", "2", "--n-train-per-class", "60",
             "--tasks", "01,23,45", "--scenario", "class", "--lr", "0.05",
             "--models", "relu:ewc=5:si=0.5:l2=0.1:replay=5"]
    config = c.parse_config(flags)[0]
    whole, resumed = whole_and_resumed(config, config["models"][0], 3, tmp_path / "job.ckpt", monkeypatch)
    assert resumed["summary"] == whole["summary"] and not whole["summary"]["failed"]


def test_the_memory_estimate_counts_what_each_method_keeps():
    def weights(models):
        return c.estimate_memory(c.parse_config(["--permuted", "10", "--models", models, "--workers", "1"])[0])["weights"]
    params = 4 * (784 * 400 + 400 * 400 + 400 * 10)
    assert weights("relu:ewc=1") - weights("relu") == 2 * params              # a summed Fisher and its anchor
    assert weights("relu:ewc=1:ewc_online=1") - weights("relu") == 2 * params
    assert weights("relu:si=1") - weights("relu") == 5 * params
    assert weights("relu:replay=10") == weights("relu")                       # images, not weights


@pytest.mark.robustness
def test_a_run_whose_ewc_copies_do_not_fit_in_memory_is_refused_naming_hidden(capsys, monkeypatch):
    monkeypatch.setattr(c, "available_memory", lambda: 24 * 2 ** 30)
    flags = ["--hidden", "30000", "--permuted", "10", "--data-dir", "unused", "--workers", "1"]
    assert c.main([*flags, "--models", "relu:ewc=1:si=1"]) == 2              # two copies for EWC, five for SI
    assert "argument --hidden: the run needs about" in capsys.readouterr().err


@pytest.mark.parametrize("scenario", [["--tasks", "01,23", "--scenario", "task"], ["--tasks", "01,23", "--scenario", "class"],
                                      ["--permuted", "2"]], ids=["task", "class", "domain"])
def test_every_method_runs_in_every_scenario(tmp_path, synthetic, scenario):
    models = "relu:ewc=1:ewc_online=1:si=1:l2=0.1:replay=5,maxout:ewc=1,lwta:replay=5,topk:k=50%:si=1"
    assert c.main(tiny_args(tmp_path, synthetic, *scenario, "--models", models, "--workers", "1")) == 0
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["config"]["variants"]["relu:ewc=1:ewc_online=1:si=1:l2=0.1:replay=5"]["replay"] == 5
    for summary in doc["per_seed"][0]["summary"].values():
        assert not summary["failed"] and summary["acc"] > 0.5
