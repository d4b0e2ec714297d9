"""Issue 16: each source's recipe, and what the recipes need: uniform and torch initialisations, the
squared-error loss on a ReLU output layer, Adam, gradient clipping, the first-N subsample, SDM's schedule
key, kNN's k on validation data and distance-weighted votes, and checkpoints that resume bit for bit."""
import math
import os

import numpy as np
import pytest

from conftest import MNIST_DIR, c, needs_mnist, tiny_args, whole_and_resumed


def config_of(*flags):
    return c.parse_config(["--data-dir", "unused", *flags])[0]


# ---------------------------------------------------------------------------------------------- recipes
RESOLVED = {
    "compete-to-compute": {"hidden": 400, "depth": 2, "lr": 0.05, "momentum": 0.9, "optimizer": "sgd",
                           "loss": "xent", "init": "he", "epochs": 5, "batch_size": 64, "n_train_per_class": 500,
                           "n_train_first": None, "models": ["relu", "lwta", "topk"]},
    "src-mnist": {"tasks": [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]], "scenario": "class", "hidden": 1200,
                  "depth": 2, "init": "uniform:0.01", "loss": "mse", "optimizer": "sgd", "lr": 0.1, "momentum": 0.5,
                  "momentum_carry": True, "weight_decay": 0.0, "epochs": 2, "batch_size": 100,
                  "n_train_first": 5000, "n_train_per_class": None,
                  "models": ["relu:bias=0:dropout=0.25", "relu:sleep=1:dropout=0.25"]},
    "sdm-split-mnist": {"scenario": "class", "hidden": 1000, "depth": 1, "init": "torch", "optimizer": "sgd",
                        "lr": 0.05, "momentum": 0.0, "weight_decay": 0.0, "batch_size": 128, "clip_grad_norm": 1.0,
                        "epochs": 500, "n_train_first": 60000,
                        "models": ["relu", "topk:k=10", "sdm:k=10:schedule=gaba:gaba=5000000",
                                   "sdm:k=1:schedule=gaba:gaba=5000000"]},
    "kwta-permuted": {"permuted": 10, "scenario": "domain", "hidden": 2048, "depth": 2, "init": "modified",
                      "normalize": True, "optimizer": "adam", "lr": 0.0001, "adam_betas": [0.9, 0.999],
                      "weight_decay": 0.0, "batch_size": 256, "epochs": 5, "n_train_first": 60000,
                      "models": ["relu:lr=3e-06", "kwinners:percent_on=0.05:boost_strength=0:k_inference_factor=1:"
                                 "weight_sparsity=0.5"]},
}


def test_every_recipe_is_documented_and_resolves_to_its_flags():
    assert set(RESOLVED) == set(c.RECIPES)
    for name, expected in RESOLVED.items():
        config = config_of("--recipe", name)
        assert config["recipe"] == name
        assert {k: config[k] for k in expected} == expected, name
        recipe = c.RECIPES[name]
        assert recipe.source and recipe.reference


def test_flags_given_beside_a_recipe_override_it_and_drop_its_alternatives():
    config = config_of("--recipe", "src-mnist", "--epochs", "1", "--lr", "0.02", "--n-train-per-class", "100")
    assert (config["epochs"], config["lr"], config["n_train_per_class"], config["n_train_first"]) == (1, 0.02, 100, None)
    assert config["hidden"] == 1200 and config["loss"] == "mse"              # the rest of the recipe stays
    config = config_of("--recipe", "kwta-permuted", "--tasks", "01,23", "--scenario", "task")
    assert config["permuted"] is None and config["tasks"] == [[0, 1], [2, 3]]
    explicit = config_of(*[f for f in c.RECIPES["src-mnist"].flags])
    assert c.experiment_settings(explicit) == c.experiment_settings(config_of("--recipe", "src-mnist"))



def test_a_recipes_settings_keep_one_order_whatever_the_hash_seed():
    """A config (and so a results file) lists the recipe's settings in the flags' order, not in the order of
    a set of names, which Python's string hashing shuffles from one process to the next: the same command
    must write the same bytes."""
    import subprocess
    import sys
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import compete_to_compute as c; "
            "print([list(c.parse_config(['--data-dir', 'unused', '--recipe', r, '--epochs', '1'])[0]) "
            "for r in sorted(c.RECIPES)])")
    orders = {subprocess.run([sys.executable, "-c", code, str(c.HERE)], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(orders) == 1, orders

@pytest.mark.robustness
@pytest.mark.parametrize("flags,message", [
    (["--recipe", "nope"], "argument --recipe: invalid choice"),
    (["--init", "uniform:-1"], "argument --init: must be he, lecun, torch, modified or uniform:S"),
    (["--init", "gauss"], "argument --init: must be he, lecun, torch, modified or uniform:S"),
    (["--adam-betas", "0.9"], "argument --adam-betas: must be two numbers"),
    (["--adam-betas", "0.9,1.0"], "argument --adam-betas: must be two numbers"),
    (["--clip-grad-norm", "0"], "argument --clip-grad-norm: must be a positive number"),
    (["--loss", "hinge"], "argument --loss: invalid choice"),
    (["--n-train-first", "100", "--n-train-per-class", "10"], "argument --n-train-first: not allowed with"),
    (["--n-train-first", "100", "--val-per-class", "10"], "argument --val-per-class: not available with"),
    (["--models", "sdm:schedule=sometimes"], "schedule must be gaba, anneal or both"),
])
def test_bad_recipe_flags_exit_2_naming_the_flag(flags, message, capsys):
    with pytest.raises(SystemExit) as e:
        config_of(*flags)
    assert e.value.code == 2 and message in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- initialisation
def test_uniform_initialisation_range_and_seeding():
    shapes = [(784, 300), (300, 10)]
    a = c.init_params(shapes, np.random.default_rng(5), uniform=0.01)
    b = c.init_params(shapes, np.random.default_rng(5), uniform=0.01)
    other = c.init_params(shapes, np.random.default_rng(6), uniform=0.01)
    for W, B in zip(a[0::2], b[0::2]):
        assert W.dtype == np.float32 and np.abs(W).max() <= 0.01 and np.abs(W).max() > 0.0099
        assert abs(W.mean()) < 5e-4 and abs(W.std() - 0.01 / math.sqrt(3)) < 2e-4      # uniform's moments
        np.testing.assert_array_equal(W, B)
    assert not np.array_equal(a[0], other[0]) and all(not bias.any() for bias in a[1::2])
    torch = c.init_params(shapes, np.random.default_rng(5), torch=True)
    for (fan_in, _), W, bias in zip(shapes, torch[0::2], torch[1::2]):
        bound = 1 / math.sqrt(fan_in)
        assert np.abs(W).max() <= bound and np.abs(W).max() > 0.98 * bound and 0 < np.abs(bias).max() <= bound
    model = c.Model(c.parse_variant("relu:bias=0"), {"hidden": 30, "depth": 2, "init": "uniform:0.01"},
                    c.seed_streams(0), n_in=20)
    assert np.abs(model.params[0]).max() <= 0.01 and not any(b.any() for b in model.params[1::2])


# ---------------------------------------------------------------------------------------------- loss
def test_relu_squared_error_by_hand_and_its_gradient():
    out = np.array([[2.0, -1.0, 0.5], [0.2, 0.3, -0.4]])
    y = np.array([0, 2])
    heads = np.array([[True, True, True], [True, False, True]])
    loss, grad = c.relu_squared_error(out.copy(), y, heads)
    # image 1: relu = (2, 0, 0.5), target (1, 0, 0): errors (1, 0, 0.5); image 2: relu (0.2, 0.3, 0) target
    # (0, 0, 1), allowed outputs 0 and 2: errors (0.2, -, -1); loss = 1/2 (1 + 0.25 + 0.04 + 1) / 2
    assert loss == pytest.approx(0.5 * (1 + 0.25 + 0.04 + 1) / 2)
    # d/d out: error where the unit is on (out > 0) and allowed, over the batch size; -1 at out = -0.4 is off
    np.testing.assert_allclose(grad, [[0.5, 0.0, 0.25], [0.1, 0.0, 0.0]])


def test_squared_error_network_gradients_match_finite_differences():
    config = {"hidden": 7, "depth": 2, "loss": "mse", "init": "uniform:0.5"}
    model = c.Model(c.parse_variant("relu"), config, c.seed_streams(1), n_in=5)
    model.params = [p.astype(np.float64) for p in model.params]
    model.params[1::2] = [b + 0.1 for b in model.params[1::2]]              # keep the output units mostly on
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(6, 5)), rng.integers(0, 10, 6)
    heads = np.ones((6, 10), bool)

    def loss_of():
        return c.relu_squared_error(model.forward(x)[0], y, heads)[0]

    logits, cache = model.forward(x)
    grads = model.backward(c.relu_squared_error(logits, y, heads)[1], cache)
    for p, g in zip(model.params, grads):
        for idx in list(np.ndindex(p.shape))[:12]:
            old = p[idx]
            p[idx] = old + 1e-6
            up = loss_of()
            p[idx] = old - 1e-6
            down = loss_of()
            p[idx] = old
            assert g[idx] == pytest.approx((up - down) / 2e-6, abs=1e-7)


def test_mse_predicts_with_the_relu_outputs():
    assert c.LOSSES["mse"].output(np.array([[-1.0, -0.5]])).tolist() == [[0.0, 0.0]]     # a tie: class 0 wins
    assert c.LOSSES["xent"].output(np.array([[-1.0, -0.5]])).tolist() == [[-1.0, -0.5]]


# ---------------------------------------------------------------------------------------------- optimisers
def test_adam_update_against_a_hand_computation():
    config = {"hidden": 3, "depth": 1, "optimizer": "adam", "lr": 0.01, "adam_betas": [0.8, 0.9], "adam_eps": 1e-3,
              "weight_decay": 0.0, "momentum": 0.0}
    model = c.Model(c.parse_variant("relu"), config, c.seed_streams(0), n_in=2)
    model.params = [p.astype(np.float64) for p in model.params]
    c.reset_optimizer(model, np.ones(10, bool), config)
    start = [p.copy() for p in model.params]
    g1 = [np.full(p.shape, 0.5) for p in model.params]
    g2 = [np.full(p.shape, -1.0) for p in model.params]
    c.adam_step(model, [g.copy() for g in g1], config)
    c.adam_step(model, [g.copy() for g in g2], config)
    m1, v1 = 0.2 * 0.5, 0.1 * 0.25
    m2, v2 = 0.8 * m1 + 0.2 * -1.0, 0.9 * v1 + 0.1 * 1.0
    step1 = 0.01 * (m1 / 0.2) / (math.sqrt(v1 / 0.1) + 1e-3)
    step2 = 0.01 * (m2 / (1 - 0.8 ** 2)) / (math.sqrt(v2 / (1 - 0.9 ** 2)) + 1e-3)
    for p, p0 in zip(model.params, start):
        np.testing.assert_allclose(p, p0 - step1 - step2, rtol=0, atol=1e-12)
    assert model.steps == 2
    c.reset_optimizer(model, np.ones(10, bool), config, carry=True)
    assert model.steps == 2                                                  # carried across a task switch
    c.reset_optimizer(model, np.ones(10, bool), config)
    assert model.steps == 0 and not any(m.any() for m in model.velocity + model.second)


def test_gradient_clipping_scales_to_the_joint_norm_like_torch():
    grads = [np.array([[3.0, 0.0]]), np.array([4.0])]                      # joint norm 5
    c.clip_gradient_norm(grads, 1.0, scale=1.0)
    np.testing.assert_allclose(grads[0], [[3 / (5 + 1e-6), 0]])
    np.testing.assert_allclose(grads[1], [4 / (5 + 1e-6)])
    lr_scaled = [np.array([[0.3, 0.0]]), np.array([0.4])]                   # SGD's gradients, times lr 0.1
    c.clip_gradient_norm(lr_scaled, 1.0, scale=0.1)
    np.testing.assert_allclose(lr_scaled[1], [0.4 / (5 + 1e-6)])            # clipped on the true norm, 5
    short = [np.array([0.3]), np.array([0.4])]
    c.clip_gradient_norm(short, 1.0, scale=1.0)
    np.testing.assert_array_equal(short[1], [0.4])                          # within the limit: untouched


# ---------------------------------------------------------------------------------------------- data, SDM
def test_first_n_subsample_takes_the_files_first_images_of_the_tasks_classes(synthetic):
    config = c.parse_config(["--data-dir", str(synthetic), "--n-train-first", "25"])[0]
    tasks = c.make_tasks(0, config)
    labels = np.asarray(c.load_dataset("mnist", str(synthetic))["train_labels"])
    for t in tasks:
        rows = np.flatnonzero(np.isin(labels, t.classes))[:25]
        np.testing.assert_array_equal(t.y_train, labels[rows])
    assert [len(t.y_train) for t in c.make_tasks(3, config)] == [25, 25]   # the same for every seed
    everything = c.parse_config(["--data-dir", str(synthetic), "--n-train-first", "100000"])[0]
    assert [len(t.y_train) for t in c.make_tasks(0, everything)] == [200, 200]      # all 5 x 40 images


def test_gaba_only_schedule_follows_the_papers_formula_at_a_fixed_k():
    layer = c.SDM(6, k=2, schedule="gaba", anneal=3, gaba=100)
    assert [layer.k_at(e) for e in range(5)] == [2] * 5                      # no annealing
    layer.counts[:] = [0, 10, 50, 75, 100, 1000]
    np.testing.assert_allclose(layer.gaba_factor(np.float64),
                               [max(-1, min(1, -1 + 2 * n / 100)) for n in layer.counts])
    anneal = c.SDM(6, k=2, schedule="anneal", anneal=2, gaba=100)
    anneal.counts[:] = 1000
    assert [anneal.k_at(e) for e in range(3)] == [6, 4, 2] and (anneal.gaba_factor(np.float64) == 1).all()
    z = np.array([[3.0, 2.0, 1.0, 0.5, -1.0, 0.0]])
    layer.counts[:] = 0                                                      # every unit excited: factor -1
    out, _ = layer.activate(z.copy(), False)
    np.testing.assert_allclose(out, [[4.0, 3.0, 2.0, 1.5, 1.0, 1.0]])        # relu(z) + the 3rd largest


# ---------------------------------------------------------------------------------------------- kNN
def test_knn_k_is_chosen_on_validation_data():
    # memory: class 0 at bits 000000 (x1) and class 1 at 111100 (x3) and one stray class-0 point at 111110
    memory = np.array([[0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0],
                       [1, 1, 1, 1, 1, 0]], bool)
    labels = np.array([0, 1, 1, 1, 0])
    task = c.Task("t", (0, 1), np.ones(10, bool), None, None, None, None,
                  x_val=None, y_val=np.array([1, 1]))
    # validation queries sit next to the stray point: k = 1 says class 0 (wrong), k >= 3 says class 1
    queries = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]], bool)
    assert c.choose_knn_k([task], memory, labels, [queries], weighted=False) == 3
    task_0 = c.Task("t", (0, 1), np.ones(10, bool), None, None, None, None, x_val=None, y_val=np.array([0, 0]))
    assert c.choose_knn_k([task_0], memory, labels, [queries], weighted=False) == 1      # ties: the smaller


def test_distance_weighted_votes_by_hand():
    labels = np.array([[0, 1, 1]])
    assert c.vote(labels).tolist() == [1]                                     # two votes beat one
    assert c.vote(labels, np.array([[0, 3, 3]])).tolist() == [0]              # 1 against 1/4 + 1/4
    assert c.vote(labels, np.array([[1, 1, 1]])).tolist() == [1]              # equal distances: majority
    assert c.vote(np.array([[2, 1]]), np.array([[1, 1]])).tolist() == [2]     # a tie: the nearest first


# ---------------------------------------------------------------------------------------------- checkpoints
@needs_mnist
def test_a_checkpointed_job_interrupted_after_task_1_resumes_bit_for_bit(tmp_path, monkeypatch):
    flags = ["--data-dir", MNIST_DIR, "--hidden", "32", "--epochs", "2", "--n-train-per-class", "60",
             "--optimizer", "adam", "--lr", "0.003", "--models", "kwinners:percent_on=0.2"]
    config = c.parse_config(flags)[0]
    spec = config["models"][0]
    ckpt = tmp_path / "job.ckpt"
    whole, resumed = whole_and_resumed(config, spec, 2, ckpt, monkeypatch, headline=True)
    assert resumed["summary"] == whole["summary"]
    np.testing.assert_array_equal(resumed["curves"], whole["curves"])
    np.testing.assert_array_equal(resumed["units"]["W1"], whole["units"]["W1"])
    assert resumed["submasks"] == whole["submasks"]
    other = c.parse_config(flags + ["--lr", "0.002"])[0]                     # another setting ignores it
    assert c.load_checkpoint(ckpt, {"seed": 0, "variant": spec, "headline": True,
                                    "settings": c.settings_digest(c.experiment_settings(other))}, pytest.fail) is None
    ckpt.write_bytes(b"truncated")
    assert c.load_checkpoint(ckpt, {}, pytest.fail) is None                  # unreadable: start over


@pytest.mark.parametrize("name", sorted(c.RECIPES))
def test_every_recipe_runs_end_to_end_at_a_tiny_budget(name, synthetic, tmp_path):
    shrink = ["--hidden", "24", "--epochs", "1", "--seed", "0", "--n-seeds", "2", "--workers", "1",
              "--run-dir", str(tmp_path / "run")]
    shrink += ["--permuted", "2"] if name == "kwta-permuted" else []
    shrink += ["--n-train-per-class", "20"] if name == "compete-to-compute" else ["--n-train-first", "60"]
    shrink += ["--models", "relu:bias=0,relu:sleep=1:sleep_iters=30"] if name == "src-mnist" else []
    shrink += ["--models", "relu,sdm:k=2:gaba=50"] if name == "sdm-split-mnist" else []
    shrink += ["--models", "relu,kwinners:percent_on=0.25:boost_strength=0"] if name == "kwta-permuted" else []
    out = ["--out", str(tmp_path / "out" / "results.json"), "--snapshots", str(tmp_path / "out" / "s.npz")]
    code = c.main(["--data-dir", str(synthetic), "--quiet", *out, "--recipe", name, *shrink])
    assert code in (0, 3)                                 # 3: a tiny run may learn nothing; reported, not hidden
    doc = c.json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["config"]["recipe"] == name and doc["config"]["hidden"] == 24
    assert not list((tmp_path / "run").glob("*.ckpt"))   # finished jobs leave no checkpoint behind


def test_a_checkpoint_holds_no_scratch_space():
    model = c.Model(c.parse_variant("relu"), {"hidden": 50, "depth": 2}, c.seed_streams(0), n_in=784)
    c.reset_optimizer(model, np.ones(10, bool), {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0})
    arrays = {}
    doc = c.encode_state(model.state(), arrays, {})
    assert model.scratch and "scratch" not in doc and not any("scratch" in name for name in arrays)
    restored = c.Model(c.parse_variant("relu"), {"hidden": 50, "depth": 2}, c.seed_streams(1), n_in=784)
    restored.load_state(c.decode_state(doc, arrays))
    assert all(np.array_equal(a, b) for a, b in zip(model.params + model.velocity, restored.params + restored.velocity))
