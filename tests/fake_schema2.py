"""Synthetic schema-2 outputs of compete_to_compute.py (viz/snapshots.npz and results.json), for the
figure tests: plausible random numbers laid out exactly as docs/schema.md describes, made in
milliseconds and without training anything.

    paths = write_fake_run(tmp_path, variants=("relu", "lwta", "topk"), T=2, E=2, n_seeds=3)
    paths["snapshots"], paths["results"]

A variant named in `failed` fails ("diverged" by default) on the headline seed and every other seed
after it (seeds 0, 2, 4, ...): its curve is NaN from the failing point on, R rows after the failure are
NaN (null in JSON), its summary has no metrics, its freq is all NaN and its trained weights hold inf/nan.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

SCHEMA = 2
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101,
        19: 2.093, 20: 2.086, 25: 2.060, 30: 2.042}
METRICS = ("acc", "forgetting", "bwt", "learning_acc")


# ----------------------------------------------------------------------------- tasks
def task_label(classes, permutation):
    if permutation is not None:
        return f"permutation {permutation}" + (" (identity)" if permutation == 1 else "")
    c = sorted(classes)
    run = len(c) > 2 and c == list(range(c[0], c[-1] + 1))
    return f"digit{'s' if len(c) > 1 else ''} " + (f"{c[0]}-{c[-1]}" if run else ",".join(map(str, c)))


def make_tasks(T: int, permuted: bool):
    """(classes per task, labels, permutation per task): split MNIST in T groups, or T permutations."""
    if permuted:
        classes = [list(range(10)) for _ in range(T)]
        perms = list(range(1, T + 1))
    else:
        classes = [[int(d) for d in g] for g in np.array_split(np.arange(10), T)]
        perms = [None] * T
    return classes, [task_label(c, p) for c, p in zip(classes, perms)], perms


# ----------------------------------------------------------------------------- one course
def fake_course(rng, T, E, joint, forget, chance, fail_at=None):
    """Test accuracy (P, T) of one variant of one seed: each task rises while it trains, then decays
    towards a floor `forget` below its peak while later tasks train. NaN from `fail_at` on."""
    n_phases = 1 if joint else T
    P = n_phases * E + 1
    curves = np.empty((P, T))
    peak = rng.uniform(0.955, 0.985, T)
    curves[0] = chance + rng.normal(0, 0.02, T)
    end = np.zeros(T)
    for p in range(1, P):
        k, e = divmod(p - 1, E)
        for j in range(T):
            if joint or j == k:
                val = peak[j] - (peak[j] - chance[j]) * math.exp(-2.2 * (e + 1)) + rng.normal(0, 0.004)
                end[j] = val
            elif j < k:
                floor = peak[j] - forget * rng.uniform(0.7, 1.3)
                since = p - (j + 1) * E
                val = floor + (end[j] - floor) * math.exp(-0.8 * since) + rng.normal(0, 0.006)
            else:
                val = chance[j] + rng.normal(0, 0.03)
            curves[p, j] = val
    curves = np.clip(curves, 0.0, 1.0)
    if fail_at is not None:
        curves[fail_at:] = np.nan
    return curves


def continual_metrics(R: np.ndarray) -> dict:
    """As compete_to_compute.py: ACC, and for a sequential run of T > 1 tasks BWT, forgetting (the best
    accuracy a task had before the end minus its final accuracy; positive = lost) and learning accuracy."""
    T = R.shape[1]
    out = {"acc": float(np.mean(R[-1])), "forgetting": None, "bwt": None, "learning_acc": None}
    if R.shape[0] == T and T > 1:
        out["bwt"] = float(np.mean([R[T - 1, j] - R[j, j] for j in range(T - 1)]))
        out["forgetting"] = float(np.mean([R[j:T - 1, j].max() - R[T - 1, j] for j in range(T - 1)]))
        out["learning_acc"] = float(np.mean(np.diag(R)))
    return out


def summarize(R: np.ndarray, freq: np.ndarray | None, failed: dict | None) -> dict:
    """As compete_to_compute.py: a failed run has its metrics too (a diverged one, chance in R from its
    divergence on, and no firing to read)."""
    rows = [[None if math.isnan(a) else float(a) for a in row] for row in R.tolist()]
    active = None if freq is None else [[float(f.mean()) for f in per_layer] for per_layer in freq]
    return {"failed": failed, "R": rows, **continual_metrics(R), "active": active}


def fake_freq(rng, name: str, T: int, depth: int, hidden: int) -> np.ndarray:
    """(T, L, hidden) firing fractions: relu ~0.4 and broad, lwta ~1/2, topk sparse with some silent
    units and more task-selective ones."""
    out = np.empty((T, depth, hidden), np.float32)
    kind = name.split(":")[0]
    for layer in range(depth):
        if kind == "topk":
            base = rng.beta(0.6, 5.0, hidden)
            tilt = rng.dirichlet(np.full(T, 0.6), hidden).T * T
            f = base[None] * tilt
            f[:, rng.choice(hidden, max(1, hidden // 12), replace=False)] = 0.0
        elif kind == "lwta":
            base = rng.beta(4, 4, hidden)
            f = base[None] + rng.normal(0, 0.06, (T, hidden))
        else:
            base = rng.beta(2, 3, hidden)
            f = base[None] * rng.uniform(0.6, 1.4, (T, hidden))
        out[:, layer] = np.clip(f, 0.0, 1.0)
    return out


def fake_weights(rng, hidden: int, scale: float, diverged: bool):
    """He-normal initial weights and trained ones = init + smooth stroke-like changes."""
    W0 = rng.normal(0, math.sqrt(2 / 784), (784, hidden))
    yy, xx = np.mgrid[0:28, 0:28] / 27.0
    change = np.empty_like(W0)
    for u in range(hidden):
        cx, cy, a = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0, np.pi)
        d = (xx - cx) * np.cos(a) + (yy - cy) * np.sin(a)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.05) * np.sin(d * rng.uniform(8, 16))
        change[:, u] = blob.ravel() * rng.uniform(0.2, 1.0)
    W = W0 + scale * change / np.abs(change).max()
    if diverged:
        W[rng.choice(784, 40, replace=False)[:, None], rng.choice(hidden, max(1, hidden // 4), replace=False)] = np.inf
        W[:5, :2] = np.nan
    with np.errstate(over="ignore", invalid="ignore"):
        return W0.astype(np.float16), W.astype(np.float16)


# ----------------------------------------------------------------------------- statistics
def t975(df: int) -> float:
    keys = [k for k in T975 if k <= df]
    return T975[max(keys)] if df <= 30 else 1.96


def describe(values, bounds=None):
    n = len(values)
    mean = float(np.mean(values)) if n else None
    if n < 2:
        return {"n": n, "mean": mean, "std": None, "ci95": None, "ci95_clipped": False}
    std = float(np.std(values, ddof=1))
    half = t975(n - 1) * std / math.sqrt(n)
    lo, hi = mean - half, mean + half
    clipped = False
    if bounds is not None and (lo < bounds[0] or hi > bounds[1]):
        lo, hi, clipped = max(lo, bounds[0]), min(hi, bounds[1]), True
    return {"n": n, "mean": mean, "std": std, "ci95": [lo, hi], "ci95_clipped": clipped}


def wilcoxon_exact(d) -> float | None:
    d = [x for x in d if x != 0]
    n = len(d)
    if n == 0:
        return None
    ranks = np.argsort(np.argsort(np.abs(d))) + 1
    w = sum(r for r, x in zip(ranks, d) if x > 0)
    total = n * (n + 1) // 2
    counts = np.zeros(total + 1)
    counts[0] = 1
    for r in range(1, n + 1):
        counts[r:] = counts[r:] + counts[:-r].copy()
    cdf = counts.cumsum() / counts.sum()
    lo = cdf[min(w, total - w)]
    return float(min(1.0, 2 * lo))


def sign_test(better: int, worse: int) -> float | None:
    n = better + worse
    if n == 0:
        return None
    k = min(better, worse)
    return float(min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n))


def paired_comparison(a, b, higher: bool) -> dict:
    d = [x - y for x, y in zip(a, b)]
    better = sum(1 for x in d if (x > 0 if higher else x < 0))
    worse = sum(1 for x in d if (x < 0 if higher else x > 0))
    ties = len(d) - better - worse
    diff = describe(d)
    sd = diff["std"]
    return {"n_pairs": len(d), "diff": diff, "better": better, "ties": ties, "worse": worse,
            "wilcoxon_p": wilcoxon_exact(d), "wilcoxon_p_holm": None, "sign_test_p": sign_test(better, worse),
            "detectable_diff": (2.80 * sd / math.sqrt(len(d))) if sd else None,
            "can_reach_005": len(d) >= 6,
            "verdict": f"{better} better, {worse} worse of {len(d)} seeds (synthetic)"}


def add_holm(comparisons: dict) -> None:
    ps = sorted((c["wilcoxon_p"], v) for v, c in comparisons.items() if c["wilcoxon_p"] is not None)
    m, running = len(ps), 0.0
    for i, (p, v) in enumerate(ps):
        running = max(running, min(1.0, (m - i) * p))
        comparisons[v]["wilcoxon_p_holm"] = running


def aggregate(per_seed: list, variants: list) -> dict:
    bounds = {"acc": (0, 1), "learning_acc": (0, 1), "forgetting": (-1, 1), "bwt": (-1, 1)}
    out = {"variants": {}, "paired": {"baseline": variants[0], "metrics": {}}}
    for v in variants:
        runs = [r["summary"][v] for r in per_seed]
        out["variants"][v] = {"n_seeds": len(runs), "n_failed": sum(bool(s["failed"]) for s in runs),
                              **{m: describe([s[m] for s in runs if s[m] is not None], bounds[m]) for m in METRICS}}
    base = variants[0]
    for metric, higher in (("acc", True), ("forgetting", False)):
        comps = {}
        for v in variants[1:]:
            pairs = [(r["summary"][v][metric], r["summary"][base][metric]) for r in per_seed
                     if r["summary"][v][metric] is not None]
            comps[v] = paired_comparison([a for a, _ in pairs], [b for _, b in pairs], higher)
        add_holm(comps)
        out["paired"]["metrics"][metric] = comps
    return out


# ----------------------------------------------------------------------------- the run
def write_fake_run(folder, variants=("relu", "lwta", "topk"), T=2, E=2, n_seeds=3, hidden=32, depth=2,
                   joint=False, failed=None, permuted=None, seed=0, fail_reason="diverged",
                   extra_config=None) -> dict:
    """Write folder/snapshots.npz and folder/results.json of a fake run; return their paths, the config
    and the per-seed summaries. `failed`: a variant that fails on seeds 0, 2, 4, ... (None: none)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    variants = list(variants)
    if permuted is None:
        permuted = T > 10
    classes, labels, perms = make_tasks(T, bool(permuted))
    n_phases = 1 if joint else T
    P = n_phases * E + 1
    config = {"seed": seed, "epochs": E, "models": variants, "scenario": "domain" if permuted else "task",
              "tasks": classes, "permuted": T if permuted else None, "joint": joint, "hidden": hidden,
              "depth": depth, "dataset": "mnist", "n_seeds": n_seeds, "lr": 0.05, "momentum": 0.9,
              "weight_decay": 1e-4, "batch_size": 64, "n_train_per_class": 500, "data_dir": None,
              **(extra_config or {})}
    chance = np.array([1 / len(c) for c in classes])
    per_seed, headline = [], {}
    for s in range(seed, seed + n_seeds):
        summary, timings = {}, {}
        for i, v in enumerate(variants):
            rng = np.random.default_rng([s, i, 7])
            fails = v == failed and (s - seed) % 2 == 0
            fail_at = None
            failure = None
            if fails:
                fail_at = min(P - 1, E + 1) if P > 2 else 1
                task = None if joint else (fail_at - 1) // E + 1
                failure = {"reason": fail_reason, "task": task, "epoch": int(fail_at),
                           "detail": "non-finite loss" if fail_reason == "diverged" else "accuracy at chance"}
            forget = 0.02 + 0.03 * i * rng.uniform(0.5, 1.5)
            diverged = fails and fail_reason == "diverged"
            curves = fake_course(rng, T, E, joint, forget, chance, fail_at if diverged else None)
            ends = E * np.arange(1, n_phases + 1)
            R = curves[ends]
            met = np.ones_like(R, bool) if joint else np.tril(np.ones_like(R, bool))
            R[met & np.isnan(R)] = np.broadcast_to(chance, R.shape)[met & np.isnan(R)]   # diverged: chance
            freq = np.full((T, depth, hidden), np.nan, np.float32) if diverged else fake_freq(rng, v, T, depth, hidden)
            summary[v] = summarize(R, None if diverged else freq, failure)
            timings[v] = {"train_s": float(rng.uniform(0.5, 2)), "eval_s": float(rng.uniform(0.1, 0.3))}
            if s == seed:
                W0, W = fake_weights(np.random.default_rng([seed, 99]), hidden, 0.04 + 0.02 * (i % 3), fails)
                headline[v] = {"curves": curves, "R": R, "freq": freq, "W1_init": W0, "W1": W}
        per_seed.append({"seed": s, "summary": summary, "timings": timings})

    head_summary = per_seed[0]["summary"]
    arrays = {"schema_version": np.array(SCHEMA), "config_json": np.array(json.dumps(config)),
              "variants": np.array(variants), "task_labels": np.array(labels), "epoch": np.arange(P),
              "phase_ends": E * np.arange(1, n_phases + 1), "summary_json": np.array(json.dumps(head_summary))}
    for v in variants:
        h = headline[v]
        arrays[f"curve_{v}"] = h["curves"].astype(np.float64)
        arrays[f"R_{v}"] = h["R"].astype(np.float64)
        arrays[f"W1_init_{v}"] = h["W1_init"]
        arrays[f"W1_{v}"] = h["W1"]
        arrays[f"freq_{v}"] = h["freq"].astype(np.float32)
    snap_path = folder / "snapshots.npz"
    np.savez_compressed(snap_path, **arrays)

    tasks = [{"label": lab, "classes": c, "permutation": p, "n_train": 500 * len(c), "n_test": 1000 * len(c)}
             for lab, c, p in zip(labels, classes, perms)]
    doc = {"schema_version": SCHEMA, "command": ["python", "compete_to_compute.py", "--seed", str(seed)],
           "config": config, "environment": {"python": "3.11", "numpy": np.__version__},
           "flops": {"train": 1e9, "eval": 1e8, "total": 1.1e9}, "timings": {"total_s": 1.0},
           "tasks": tasks,
           "headline": {"seed": seed,
                        "curves": {v: [[None if math.isnan(a) else float(a) for a in row]
                                       for row in headline[v]["curves"].tolist()] for v in variants},
                        "summary": head_summary},
           "per_seed": per_seed,
           "aggregate": aggregate(per_seed, variants) if n_seeds > 1 else None}
    results_path = folder / "results.json"
    results_path.write_text(json.dumps(doc, indent=1, allow_nan=False))
    return {"snapshots": snap_path, "results": results_path, "config": config, "per_seed": per_seed,
            "folder": folder}


def write_schema1_snapshot(path) -> Path:
    """A snapshot as the older (schema 1) compete_to_compute.py wrote it: two tasks, three fixed models."""
    config = {"seed": 0, "epochs": 2, "models": ["relu", "lwta", "topk"], "task1_classes": [0, 1, 2, 3, 4]}
    arrays = {"schema_version": np.array(1), "config_json": np.array(json.dumps(config)),
              "models": np.array(config["models"]), "epoch": np.arange(5),
              "summary_json": np.array("{}"), "W1_init": np.zeros((784, 8), np.float16)}
    for name in config["models"]:
        arrays[f"acc_t1_{name}"] = np.linspace(0.2, 0.9, 5)
    np.savez_compressed(path, **arrays)
    return Path(path)


if __name__ == "__main__":            # python tests/fake_schema2.py FOLDER [T V]: a fake run to look at
    import sys
    names = ["relu", "lwta", "topk", "lwta:k=4", "relu:dropout=0.5", "topk:k=10%", "maxout:k=2", "relu:x"]
    T = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    V = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    out = write_fake_run(sys.argv[1], names[:V], T=T, E=int(sys.argv[4]) if len(sys.argv) > 4 else 3,
                         n_seeds=int(sys.argv[5]) if len(sys.argv) > 5 else 10, hidden=400,
                         failed=names[V - 1] if V >= 5 else None)
    print(out["snapshots"], out["results"])
