"""Study 9: sleep replay, the SDM Top-K MLP and submasks, each run as its source ran it as far as this bench
allows (10 seeds). Sources: Tadros et al., Nature Communications 2022; Bricken et al., ICLR 2023; Srivastava et
al., ICLR 2015 (docs/mechanisms.md cites each in full).

Sleep replay (SRC): class-incremental split MNIST, the bias-free ReLU network with and without the sleep
phase, at the bench's default training (momentum 0.9) and at the original's momentum 0.5, with joint
training as the ceiling. SDM: class-incremental split MNIST with the paper's one hidden layer and 50
epochs per task (the paper: 500), ReLU and plain Top-K beside it. Submasks: the headline protocol's seed 0
with ReLU, LWTA and maxout. (k-winners on permuted MNIST is study 4.)
"""
import re

from common import parse_study_args, run_setting, seed_count, write_study

STUDY, SEEDS = "09_mechanisms", 10
SPLIT = ["--tasks", "01,23,45,67,89", "--scenario", "class"]
SETTINGS = {
    "sleep, momentum 0.9 (bench default)": ([*SPLIT, "--models", "relu:bias=0,relu:sleep=1"], SEEDS),
    "sleep, momentum 0.5 (the original's)": ([*SPLIT, "--momentum", "0.5", "--models", "relu:bias=0,relu:sleep=1"],
                                             SEEDS),
    "joint, momentum 0.9": ([*SPLIT, "--joint", "--models", "relu:bias=0,relu:sleep=1"], SEEDS),
    "joint, momentum 0.5": ([*SPLIT, "--joint", "--momentum", "0.5", "--models", "relu:bias=0,relu:sleep=1"], SEEDS),
    "sdm, 1 hidden layer, 50 epochs per task": ([*SPLIT, "--depth", "1", "--epochs", "50", "--models",
                                                 "relu,topk,sdm:schedule=both"], SEEDS),
    "submasks, default protocol": (["--models", "relu,lwta,maxout:k=2"], 1),
}

if __name__ == "__main__":
    parse_study_args(__doc__)
    docs = {}
    for label, (args, seeds) in SETTINGS.items():
        docs[label] = run_setting(STUDY, re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_"), args, seeds)
    sub = docs.pop("submasks, default protocol")["headline"]["submasks"]
    notes = ["Submasks (seed 0, default protocol): kNN on the last hidden layer's submasks (k = 5, Hamming, the "
             "training images as memory) against the softmax on the same 1,000 test images per task:", "",
             "| variant | task | kNN | softmax | kNN − softmax |", "|---|---|---|---|---|"]
    for v, s in sub.items():
        if s["knn_acc"] is None:
            notes.append(f"| {v} | diverged | | | |")
            continue
        for t, (k, f) in enumerate(zip(s["knn_acc"], s["softmax_acc"]), start=1):
            notes.append(f"| {v} | {t} | {k:.4f} | {f:.4f} | {k - f:+.4f} |")
    write_study(STUDY, f"Study 9: sleep replay, SDM and submasks as their sources ran them "
                       f"({seed_count(*docs.values())} seeds)", docs, notes)
