"""How fast is each command, against what this machine can do at all?

    MNIST_DIR=/path/to/mnist python benchmarks/bench.py      # ~10 minutes; --repeats to change

1. Measures float32 GEMM throughput: a large square product (the machine's peak, all cores, and one
   core) and the shapes the training step and evaluation really use (one BLAS thread, as the runs do),
   and where a training step's time goes (forward, loss, backward, update) against its GEMM-only time.
2. Takes each run's analytic FLOP count (compete_to_compute.count_flops, stored in its results.json).
3. Runs every README command as a whole process several times: median wall time, the time split,
   achieved GFLOP/s, wall / (FLOPs / peak), and peak resident memory of the largest process.
4. Writes benchmarks/results.json and prints a table of the performance targets (each with its limit, met or not).
Outputs of the timed runs go to a temporary folder: the committed results are not touched.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GEMM_CODE = r"""
import json, sys, time, numpy as np
def rate(m, k, n, ta=False):
    a = np.random.rand(k, m).astype(np.float32).T if ta else np.random.rand(m, k).astype(np.float32)
    b = np.random.rand(k, n).astype(np.float32)
    c = np.empty((m, n), np.float32)
    reps = max(3, int(1.5e9 / (2 * m * k * n)))
    best = 1e9
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            np.matmul(a, b, out=c)
        best = min(best, (time.perf_counter() - t) / reps)
    return 2 * m * k * n / best / 1e9
shapes = json.loads(sys.argv[1])
print(json.dumps({name: rate(*shape) for name, shape in shapes.items()}))
"""
SQUARE = {"square 2048^3": [2048, 2048, 2048]}
STEP_SHAPES = {
    "train fwd 64x784 @ 784x400": [64, 784, 400],
    "train fwd 64x400 @ 400x400": [64, 400, 400],
    "train dW1 (784x64)^T-stored @ 64x400": [784, 64, 400, True],
    "eval 1024x784 @ 784x400": [1024, 784, 400],
    "fused fwd 64x784 @ 784x1200 (3 models)": [64, 784, 1200],
    "fused eval 1024x784 @ 784x1200 (3 models)": [1024, 784, 1200],
}


def gemm_rates(shapes: dict, threads: int) -> dict:
    """GEMM GFLOP/s in a fresh interpreter whose BLAS has exactly `threads` threads."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", GEMM_CODE, json.dumps(shapes)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


STEP_CODE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import compete_to_compute as c                    # pins one BLAS thread, as the runs do
np = c.np
config, _ = c.parse_config(json.loads(sys.argv[2]))
task = c.make_tasks(1, config)[0]
order_rng = np.random.default_rng(c.seed_streams(1)[2])
size = config["batch_size"]
out = {}


def gemm_only(params, n):
    # the same products as one training step, on operands of the same shapes: forward h @ W per layer,
    # backward inputs^T @ g per layer and g @ W^T per layer but the first
    ops = []
    for W in params[0::2]:
        a, b = W.shape
        h, g = np.random.rand(n, a).astype(np.float32), np.random.rand(n, b).astype(np.float32)
        ops += [(h, W), (h.T, g)]
    for W in params[2::2]:
        ops.append((np.random.rand(n, W.shape[1]).astype(np.float32), W.T))
    for x, y in ops:
        x @ y
    best = 1e9
    for _ in range(20):
        t = time.perf_counter()
        for _ in range(10):
            for x, y in ops:
                x @ y
        best = min(best, (time.perf_counter() - t) / 10)
    return best


for name in config["models"]:
    m = c.Model(c.parse_variant(name), config, c.seed_streams(1))
    c.reset_optimizer(m, task.head, config)
    x, y, heads = task.x_train, task.y_train, np.repeat(task.head[None], len(task.y_train), axis=0)
    t, n = dict(forward=0.0, loss=0.0, backward=0.0, update=0.0), 0
    for epoch in range(3):
        perm = order_rng.permutation(len(x))
        xs, ys, hs = x[perm], y[perm], heads[perm]
        for s in range(0, len(xs) - size + 1, size):             # full minibatches only
            t0 = time.perf_counter(); logits, cache = m.forward(xs[s:s + size], training=True)
            t1 = time.perf_counter(); loss, d = c.masked_cross_entropy(logits, ys[s:s + size], hs[s:s + size]); d *= config["lr"]
            t2 = time.perf_counter(); grads = m.backward(d, cache)
            t3 = time.perf_counter(); c.sgd_step(m, grads, config); m.constrain()
            t4 = time.perf_counter()
            if epoch:                                 # the first epoch warms caches and allocator
                for k, a, b in (("forward", t0, t1), ("loss", t1, t2), ("backward", t2, t3), ("update", t3, t4)):
                    t[k] += b - a
                n += 1
    us = {k: v / n * 1e6 for k, v in t.items()}
    us["total"] = sum(us.values())
    us["gemm_only"] = gemm_only(m.params, size) * 1e6
    us["over_gemm"] = us["total"] / us["gemm_only"]
    out[name] = us
print(json.dumps(out))
"""
SLEEP_CODE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import compete_to_compute as c
out = {}
for hidden in ("400", "1200"):
    config, _ = c.parse_config(["--hidden", hidden, "--models", "relu:sleep=1", "--tasks", "01,23,45,67,89",
                                "--scenario", "class"])
    tasks = c.make_tasks(0, config)
    model = c.Model(c.parse_variant("relu:sleep=1"), config, c.seed_streams(0))
    c.reset_optimizer(model, tasks[0].head, config)
    heads = c.np.repeat(tasks[0].head[None], len(tasks[0].y_train), axis=0)
    c.train_epoch(model, tasks[0].x_train, tasks[0].y_train, heads, config, {})     # a trained task-1 network
    r = c.sleep_phase(model, [tasks[0].x_train], 3000, c.np.random.default_rng(0))
    steps = [c.sleep_iterations(c.VARIANT_KEYS["sleep_iters"][1], n) for n in range(1, 6)]
    out[f"784-{hidden}-{hidden}-10"] = {"us_per_step": r["seconds"] / 3000 * 1e6, "steps_per_task": steps,
                                        "seconds_per_5_tasks": r["seconds"] / 3000 * sum(steps)}
print(json.dumps(out))
"""


SEARCH_CODE = r"""
import json, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1] + "/studies")
import tuning                                     # workers re-import this file: the work is under __main__
c = tuning.c
if __name__ == "__main__":
    variants, seeds = ["relu", "lwta", "topk"], [1000, 1001, 1002]
    configs = [{"lr": 0.05, "momentum": 0.9, "epochs": 5}, {"lr": 0.02, "momentum": 0.9, "epochs": 5}]
    with tempfile.TemporaryDirectory() as tmp:
        jobs, flops = [], 0
        for i, cfg in enumerate(configs):
            config = tuning.job_config([], variants, cfg, 100)
            store = c.RunDir(Path(tmp) / f"c{i}", config)
            jobs += tuning.pending(store, config, seeds, variants)
            flops += sum(c.count_flops(config, store.tasks)["per_variant_other_seed"].values()) * len(seeds)
        tuning.run_pool(jobs, "bench")
    print(json.dumps({"jobs": len(jobs), "gflop": flops / 1e9}))
"""


def search_throughput(repeats: int, work: Path) -> dict:
    """A search (2 configurations x 3 tuning seeds x 3 variants, default scale, 100 validation images per
    class, one process pool) against one --n-seeds run with the same number of jobs (6 seeds x 3 variants):
    jobs and GFLOP per second of whole commands, startup included. The --n-seeds run's headline seed also
    evaluates after every epoch and runs the submask analysis; the search evaluates validation images."""
    script = work / "search_bench.py"
    script.write_text(SEARCH_CODE)
    walls, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = json.loads(subprocess.run([sys.executable, str(script), str(ROOT)], check=True, capture_output=True,
                                        text=True, cwd=work).stdout.strip().splitlines()[-1])
        walls.append(time.perf_counter() - t0)
    seeds = bench_run("search_ref", ["--seed", "0", "--n-seeds", "6"], repeats, work, 1.0)
    wall = statistics.median(walls)
    search = {"jobs": out["jobs"], "wall_s_median": wall, "wall_s_all": walls, "jobs_per_s": out["jobs"] / wall,
              "gflops": out["gflop"] / wall}
    ref = {"command": seeds["command"], "jobs": 18, "wall_s_median": seeds["wall_s_median"],
           "wall_s_all": seeds["wall_s_all"], "jobs_per_s": 18 / seeds["wall_s_median"],
           "gflops": seeds["gflop"] / seeds["wall_s_median"]}
    return {"search": search, "n_seeds_run": ref, "jobs_per_s_ratio": search["jobs_per_s"] / ref["jobs_per_s"],
            "gflops_ratio": search["gflops"] / ref["gflops"]}


def print_search(r: dict) -> None:
    s, n = r["search"], r["n_seeds_run"]
    print(f"search throughput: {s['jobs']} jobs in {s['wall_s_median']:.2f} s ({s['jobs_per_s']:.2f} jobs/s, "
          f"{s['gflops']:.1f} GFLOP/s); {n['command']}: {n['wall_s_median']:.2f} s ({n['jobs_per_s']:.2f} jobs/s, "
          f"{n['gflops']:.1f} GFLOP/s); ratio {r['jobs_per_s_ratio']:.2f} (jobs), {r['gflops_ratio']:.2f} (GFLOP)")


JOB_CODE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import compete_to_compute as c                    # pins one BLAS thread, as the runs do
flags, seed, spec, headline, extra = json.loads(sys.argv[2])
config, _ = c.parse_config(flags)
config.update(extra)
t0 = time.perf_counter()
tasks = c.make_tasks(seed, config)
data_s = time.perf_counter() - t0
flops = c.count_flops({**config, "n_seeds": 1}, c.task_table(config))
t0 = time.perf_counter()
r = c.run_course(seed, spec, config, headline)
wall = time.perf_counter() - t0
t = r["timings"]
split = {"train": t["train_s"], "test": t["eval_s"], "validation": t.get("val_s", 0.0),
         "analysis": t.get("submasks_s", 0.0) + t.get("sleep_s", 0.0)}
split["other"] = wall - sum(split.values())
print(json.dumps({"wall_s": wall, "data_s": data_s, "split_s": split, "train_gflop": flops["train"] / 1e9,
                  "total_gflop": (flops["per_variant_headline"] if headline else flops["per_variant_other_seed"])[spec] / 1e9}))
"""
# The jobs the studies are made of, one at a time on one core: (flags, seed, variant, headline, config extras)
JOB_KINDS = {
    "permuted-10 study job (seed 1)": (["--permuted", "10", "--lr", "0.01"], 1, "relu", False, {}),
    "permuted-10 headline job (seed 0)": (["--permuted", "10", "--lr", "0.01"], 0, "relu", True, {}),
    "permuted-10 search job (50 validation images per class)": (
        ["--permuted", "10", "--lr", "0.01", "--val-per-class", "50"], 1000, "relu", False, {"no_test": True}),
    "permuted-10 offline-EWC job (relu:ewc=1, seed 1)": (["--permuted", "10", "--lr", "0.01"], 1, "relu:ewc=1",
                                                          False, {}),
    "SDM recipe, 2 epochs per task, headline (seed 0)": (["--recipe", "sdm-split-mnist", "--epochs", "2"], 0,
                                                         "sdm:k=10:schedule=gaba:gaba=20000", True, {}),
    "SDM recipe, 2 epochs per task (seed 1)": (["--recipe", "sdm-split-mnist", "--epochs", "2"], 1,
                                               "sdm:k=10:schedule=gaba:gaba=20000", False, {}),
}


def job_split(root: Path, kind: tuple) -> dict:
    """One job of a study, run alone in a fresh interpreter with the code at `root`: its wall time and
    where it went (training, testing, validation images, the submask analysis and sleep, the rest), and
    the FLOP bound of its training alone at one core's measured peak beside the bound of all its work."""
    flags, seed, spec, headline, extra = kind
    flags = [*flags, "--models", spec, "--workers", "1", "--data-dir", os.environ.get("MNIST_DIR", "")]
    out = subprocess.run([sys.executable, "-c", JOB_CODE, str(root), json.dumps([flags, seed, spec, headline,
                                                                               extra])],
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    r["measurement_share"] = (r["split_s"]["test"] + r["split_s"]["validation"] + r["split_s"]["analysis"]) / r["wall_s"]
    return r


def job_kinds(roots: dict, one_core: float, repeats: int) -> dict:
    """Each job kind with each code tree (e.g. this one and an earlier commit's), alternating so that a
    host's drift falls on both alike; the run with the median wall time of each is kept."""
    out = {}
    for name, kind in JOB_KINDS.items():
        runs = {label: [] for label in roots}
        for _ in range(repeats):
            for label, root in roots.items():
                runs[label].append(job_split(root, kind))
        out[name] = {}
        for label, rs in runs.items():
            r = sorted(rs, key=lambda x: x["wall_s"])[len(rs) // 2]
            r["train_bound_s"] = r["train_gflop"] / one_core
            r["wall_over_train_bound"] = r["wall_s"] / r["train_bound_s"]
            out[name][label] = r
    return out


def print_job_kinds(kinds: dict) -> None:
    print("\njobs, one at a time on one core (s): wall = train + test + validation + analysis + other; "
          "measurement share; wall / FLOP bound of its training alone")
    for name, per_root in kinds.items():
        print(f"  {name}")
        for label, r in per_root.items():
            s = r["split_s"]
            print(f"    {label:<10} {r['wall_s']:7.1f} = {s['train']:6.1f} + {s['test']:6.1f} + {s['validation']:5.1f}"
                  f" + {s['analysis']:5.1f} + {s['other']:5.1f};  {r['measurement_share']:.0%};  "
                  f"{r['wall_over_train_bound']:.2f}x")


def ewc_update_cost(root: Path) -> dict:
    """Microseconds per training update of relu:ewc=1 (width 400) with 1 and with 9 past tasks' terms."""
    out = subprocess.run([sys.executable, "-c", EWC_CODE, str(root)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


EWC_CODE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import compete_to_compute as c
np = c.np
config, _ = c.parse_config(["--permuted", "10", "--lr", "0.01", "--models", "relu:ewc=1", "--workers", "1"])
tasks = c.make_tasks(1, config)
phases = c.training_phases(tasks, False)
model = c.Model(c.parse_variant("relu:ewc=1"), config, c.seed_streams(1))
out = {}
for past in range(1, 10):
    c.reset_optimizer(model, tasks[0].head, config)
    for m in model.methods:
        m.start_phase(model)
        m.end_phase(model, c.Phase(phases[past - 1].x[:256], phases[past - 1].y[:256], phases[past - 1].heads[:256], (past - 1,)))
    if past in (1, 9):
        x, y, h = phases[past].x[:64 * 20], phases[past].y[:64 * 20], phases[past].heads[:64 * 20]
        best = 1e9
        for _ in range(8):                        # the fastest of 8 epochs of 20 updates: the host's noise is slow
            t0 = time.perf_counter()
            c.train_epoch(model, x, y, h, config, {"task": past + 1, "epoch": 1})
            best = min(best, (time.perf_counter() - t0) / 20 * 1e6)
        out[f"after {past + 1} tasks"] = best
out["ratio"] = out["after 10 tasks"] / out["after 2 tasks"]
print(json.dumps(out))
"""


def sleep_cost() -> dict:
    """The sleep phase's time per time step on a trained network, and its steps after each of 5 tasks."""
    out = subprocess.run([sys.executable, "-c", SLEEP_CODE, str(ROOT)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


STEP_CONFIGS = {
    "default (784-400-400-10)": [],
    "width 1000, depth 3": ["--hidden", "1000", "--depth", "3", "--models", "relu,lwta,maxout:k=2"],
    "width 1000, depth 3, dropout 0.2/0.5, max-norm 3": [
        "--hidden", "1000", "--depth", "3", "--lr", "0.005", "--max-norm", "3", "--models",
        "relu:dropout_in=0.2:dropout=0.5,lwta:dropout_in=0.2:dropout=0.5,maxout:k=2:dropout_in=0.2:dropout=0.5"],
}


def step_breakdown(flags: list) -> dict:
    """Microseconds per training step (one thread) in forward, loss, backward and update, and the time
    the step's matrix products alone take on operands of the same shapes."""
    out = subprocess.run([sys.executable, "-c", STEP_CODE, str(ROOT), json.dumps(flags)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def timed(cmd: list, cwd: Path) -> tuple:
    """Wall time and peak RSS (MiB, largest single process, workers included) of one whole command."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed with exit {p.returncode}: {p.stderr.read().decode()[-500:]}")
    return wall, usage.ru_maxrss / 1024


def bench_run(label: str, args: list, repeats: int, work: Path, peak: float) -> dict:
    """Repeat a compete_to_compute.py run; report medians and where the time went."""
    walls, rss, docs = [], [], []
    for i in range(repeats):
        out = work / f"{label.replace(' ', '_')}_{i}.json"
        wall, mem = timed([sys.executable, str(ROOT / "compete_to_compute.py"), *args, "--quiet", "--out", str(out),
                           "--snapshots", str(work / f"{label}.npz")], work)
        walls.append(wall)
        rss.append(mem)
        docs.append(json.loads(out.read_text()))
    i = walls.index(statistics.median_low(walls))
    doc, wall = docs[i], walls[i]
    t = doc["timings"]
    job_train, job_eval = sum(t["train_s"].values()), sum(t["eval_s"].values())
    flops = doc["flops"]["total"]
    return {
        "command": "python compete_to_compute.py " + " ".join(args), "repeats": repeats,
        "wall_s_median": wall, "wall_s_all": walls, "peak_rss_mib": max(rss),
        "split_s": {"startup_and_imports": wall - t["total_s"], "data_load": t["data_load_s"],
                    "experiment": t["experiment_s"], "output": t["output_s"]},
        "job_time_s": {"train": job_train, "eval": job_eval},
        "gflop": flops / 1e9, "achieved_gflops": flops / 1e9 / wall,
        "flop_bound_s": flops / 1e9 / peak, "wall_over_bound": wall / (flops / 1e9 / peak),
        "data_load_s_all": [d["timings"]["data_load_s"] for d in docs],
    }


def bench_script(label: str, cmd: list, repeats: int, work: Path) -> dict:
    walls, rss = zip(*(timed(cmd, work) for _ in range(repeats)))
    return {"command": " ".join(Path(c).name if c.endswith(".py") else c for c in cmd[1:]),
            "repeats": repeats, "wall_s_median": statistics.median(walls), "wall_s_all": list(walls),
            "peak_rss_mib": max(rss)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="runs per command (10-seed runs use max(2, repeats-1))")
    ap.add_argument("--only-sleep", action="store_true",
                    help="measure only the sleep phase and update that part of benchmarks/results.json")
    ap.add_argument("--only-search", action="store_true",
                    help="measure only the tuned studies' search throughput and update that part of "
                         "benchmarks/results.json")
    ap.add_argument("--only-jobs", action="store_true",
                    help="measure only where the studies' job kinds spend their time, and EWC's update cost, and "
                         "update that part of benchmarks/results.json")
    ap.add_argument("--against", metavar="DIR", default=None,
                    help="with --only-jobs: also a checkout of another commit (e.g. `git worktree add /tmp/old "
                         "972a692`), measured alternately with this one")
    ap.add_argument("--only-steps", action="store_true",
                    help="measure only the training steps against their products alone, and update that part of "
                         "benchmarks/results.json")
    args = ap.parse_args()
    if args.only_steps:
        path = ROOT / "benchmarks" / "results.json"
        doc = json.loads(path.read_text()) if path.is_file() else {}
        doc["train_step_us"] = {label: step_breakdown(flags) for label, flags in STEP_CONFIGS.items()}
        for label, per_variant in doc["train_step_us"].items():
            for name, t in per_variant.items():
                print(f"{label:<50} {name:<40} {t['total']:7.0f} us, products alone {t['gemm_only']:7.0f} "
                      f"({t['over_gemm']:.2f}x)")
        path.write_text(json.dumps(doc, indent=1) + "\n")
        return 0
    if args.only_jobs:
        path = ROOT / "benchmarks" / "results.json"
        doc = json.loads(path.read_text()) if path.is_file() else {}
        roots = {"now": ROOT, **({"before": Path(args.against).resolve()} if args.against else {})}
        one_core = gemm_rates(SQUARE, 1)["square 2048^3"]
        kinds = job_kinds(roots, one_core, args.repeats)
        print_job_kinds(kinds)
        ewc = {label: ewc_update_cost(root) for label, root in roots.items()}
        for label, e in ewc.items():
            print(f"offline EWC update, width 400 ({label}): {e['after 2 tasks']:.0f} us after 2 tasks, "
                  f"{e['after 10 tasks']:.0f} after 10 ({e['ratio']:.2f}x)")
        commits = {k: subprocess.run(["git", "-C", str(v), "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True).stdout.strip() for k, v in roots.items()}
        doc["job_kinds"] = {"one_core_gflops": one_core, "commits": commits,
                            "jobs": kinds, "ewc_update_us": ewc}
        path.write_text(json.dumps(doc, indent=1) + "\n")
        return 0
    if args.only_sleep or args.only_search:
        path = ROOT / "benchmarks" / "results.json"
        doc = json.loads(path.read_text()) if path.is_file() else {}
        if args.only_sleep:
            doc["sleep_phase"] = sleep_cost()
            print(json.dumps(doc["sleep_phase"], indent=1))
        else:
            with tempfile.TemporaryDirectory(prefix="c2c-bench-") as tmp:
                doc["search_throughput"] = search_throughput(args.repeats, Path(tmp))
            print_search(doc["search_throughput"])
        path.write_text(json.dumps(doc, indent=1) + "\n")
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"bench: {platform.processor() or platform.machine()}, {cores} cores, python {platform.python_version()}")
    gemm_all = gemm_rates(SQUARE, cores)
    gemm_one = gemm_rates({**SQUARE, **STEP_SHAPES}, 1)
    peak = gemm_all["square 2048^3"]
    print(f"GEMM peak (square, {cores} threads): {peak:.1f} GFLOP/s; one thread: {gemm_one['square 2048^3']:.1f}")
    for name, r in gemm_one.items():
        print(f"  1 thread  {name:<44} {r:6.1f} GFLOP/s")
    steps = {label: step_breakdown(flags) for label, flags in STEP_CONFIGS.items()}
    print("training step, one thread (us): forward / loss / backward / update = total; the same products alone")
    for label, per_variant in steps.items():
        print(f"  {label}")
        for name, t in per_variant.items():
            print(f"    {name:<40} {t['forward']:6.0f} / {t['loss']:4.0f} / {t['backward']:6.0f} / {t['update']:5.0f}"
                  f" = {t['total']:6.0f};  GEMM {t['gemm_only']:6.0f}  ({t['over_gemm']:.2f}x)")

    sleep = sleep_cost()
    for shape, r in sleep.items():
        print(f"sleep phase {shape}: {r['us_per_step']:.0f} us per time step; steps after tasks 1-5 "
              f"{r['steps_per_task']}: {r['seconds_per_5_tasks']:.1f} s per 5-task course")

    seeds10 = max(2, args.repeats - 1)
    with tempfile.TemporaryDirectory(prefix="c2c-bench-") as tmp:
        work = Path(tmp)
        timed([sys.executable, str(ROOT / "compete_to_compute.py"), "--quiet", "--epochs", "1", "--hidden", "20",
               "--out", str(work / "warm.json"), "--snapshots", str(work / "warm.npz")], work)
        runs = {
            "headline": bench_run("headline", ["--seed", "0"], args.repeats, work, peak),
            "headline relu,lwta": bench_run("relu_lwta", ["--seed", "0", "--models", "relu,lwta"], args.repeats,
                                            work, peak),
            "10 seeds relu,lwta": bench_run("s10_2", ["--seed", "0", "--n-seeds", "10", "--models", "relu,lwta"],
                                            seeds10, work, peak),
            "10 seeds, 3 models": bench_run("s10_3", ["--seed", "0", "--n-seeds", "10"], seeds10, work, peak),
            "permuted 10 tasks": bench_run("perm10", ["--seed", "0", "--permuted", "10"], 1, work, peak),
            "study scale, 4 seeds": bench_run("study4", ["--seed", "0", "--n-seeds", "4", "--hidden", "1000",
                                                         "--depth", "3", "--n-train-per-class", "1000", "--epochs",
                                                         "10", "--lr", "0.005", "--max-norm", "3", "--models",
                                                         "relu,lwta"], 1, work, peak),
        }
        search = search_throughput(args.repeats, work)
        print_search(search)
        one_core = gemm_one["square 2048^3"]
        for r in runs.values():                  # work done / (cores x wall x one core's peak)
            r["parallel_efficiency"] = r["gflop"] / (cores * r["wall_s_median"] * one_core)
        scripts = {
            # the figures of the 10-seed run just timed (the README's own commands)
            "visualize": bench_script("visualize", [sys.executable, str(ROOT / "visualize_compete_to_compute.py"),
                                                    "--snapshots", str(work / "s10_3.npz"),
                                                    "--results", str(work / "s10_3_0.json"), "--out-dir",
                                                    str(work / "viz")], args.repeats, work),
            "gif": bench_script("gif", [sys.executable, str(ROOT / "make_compete_to_compute_gif.py"), "--snapshots",
                                        str(work / "s10_3.npz"), "--out", str(work / "a.gif")],
                                args.repeats, work),
        }
    cache_load = max(runs["headline"]["data_load_s_all"])
    targets = [
        ("headline wall <= 3.0 s", runs["headline"]["wall_s_median"], 3.0),
        ("headline wall <= 1.5 x FLOP bound", runs["headline"]["wall_over_bound"], 1.5),
        ("headline relu,lwta wall <= 2.6 s", runs["headline relu,lwta"]["wall_s_median"], 2.6),
        ("10 seeds relu,lwta wall <= 11 s", runs["10 seeds relu,lwta"]["wall_s_median"], 11.0),
        ("10 seeds 3 models <= 1.5 x FLOP bound", runs["10 seeds, 3 models"]["wall_over_bound"], 1.5),
        ("cached MNIST load <= 0.15 s (worst run)", cache_load, 0.15),
        ("visualize <= 2 s", scripts["visualize"]["wall_s_median"], 2.0),
        ("GIF <= 2 s", scripts["gif"]["wall_s_median"], 2.0),
        ("headline peak memory <= 400 MiB", runs["headline"]["peak_rss_mib"], 400.0),
    ]
    wide = steps["width 1000, depth 3"] | steps["width 1000, depth 3, dropout 0.2/0.5, max-norm 3"]
    targets += [(f"step at width 1000 <= 1.3 x GEMM: {name}", t["over_gemm"], 1.3) for name, t in wide.items()]
    targets += [(f"parallel efficiency >= 0.85: {name}", -runs[name]["parallel_efficiency"], -0.85)
                for name in ("10 seeds, 3 models", "study scale, 4 seeds")]
    targets.append(("search jobs/s >= 0.8 x an --n-seeds run's", -search["jobs_per_s_ratio"], -0.8))

    print(f"\n{'command':<44}{'wall s':>8}{'GFLOP':>8}{'GFLOP/s':>9}{'bound s':>9}{'x bound':>8}{'par.eff':>8}"
          f"{'RSS MiB':>9}")
    for name, r in runs.items():
        print(f"{name:<44}{r['wall_s_median']:>8.2f}{r['gflop']:>8.0f}{r['achieved_gflops']:>9.1f}"
              f"{r['flop_bound_s']:>9.2f}{r['wall_over_bound']:>8.2f}{r['parallel_efficiency']:>8.2f}"
              f"{r['peak_rss_mib']:>9.0f}")
    for name, r in scripts.items():
        print(f"{name:<44}{r['wall_s_median']:>8.2f}{'':>8}{'':>9}{'':>9}{'':>8}{r['peak_rss_mib']:>9.0f}")
    print("\ntime split of the median run (s): startup+imports / data load / experiment / output;"
          " job time train / eval (summed over concurrent jobs)")
    for name, r in runs.items():
        s, j = r["split_s"], r["job_time_s"]
        print(f"  {name:<24} {s['startup_and_imports']:.2f} / {s['data_load']:.3f} / {s['experiment']:.2f} / "
              f"{s['output']:.2f};  {j['train']:.2f} / {j['eval']:.2f}")
    print("\ntargets:")
    for label, value, limit in targets:
        print(f"  {'met   ' if value <= limit else 'MISSED'} {label:<58} measured {abs(value):.3f}")

    doc = {"machine": {"platform": platform.platform(), "processor": platform.processor(), "cores": cores,
                       "python": platform.python_version()},
           "gemm_gflops": {"peak_all_cores": gemm_all, "one_thread": gemm_one},
           "train_step_us": steps, "sleep_phase": sleep, "runs": runs, "scripts": scripts, "search_throughput": search,
           "targets": [{"target": t, "measured": abs(v), "limit": abs(lim), "met": v <= lim} for t, v, lim in targets]}
    path = ROOT / "benchmarks" / "results.json"
    kept = json.loads(path.read_text()) if path.is_file() else {}
    doc["job_kinds"] = kept.get("job_kinds")    # measured by --only-jobs, against another checkout
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print("\nwrote benchmarks/results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
