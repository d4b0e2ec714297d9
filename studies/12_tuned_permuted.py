"""Study 12: permuted MNIST, 10 tasks, with every variant tuned on its own validation data.

Study 4's setting (one shared head, 2 x 400 units, 500 images per class and task): ReLU, LWTA, Top-K and
k-winners at their selected configurations (see studies/tuning.py). A job costs about 20 s of one core
here, so the search is cut to 12 configurations on 3 tuning seeds (the evaluation keeps 20 seeds), with
50 validation images per class; the fixed setting's 20-seed result is study 4 (the same runs: holding
validation images out leaves the training data unchanged).
"""
from common import parse_study_args
from tuning import tuned_flags, run_study

if __name__ == "__main__":
    parse_study_args(__doc__, extra=tuned_flags)
    run_study("12_tuned_permuted", "Study 12: permuted MNIST, 10 tasks, tuned per variant", ["--permuted", "10"],
              ["relu", "lwta", "topk", "kwinners:k_inference_factor=1.5:boost_strength_factor=0.9"], n_configs=12, epochs=5, tune_seeds=3, val=50, fixed=False,
              notes=["Ten pixel permutations of MNIST (task 1 unpermuted), one shared head, 2 x 400 units, "
                     "500 images per class and task. The fixed setting (lr 0.05) is study 4."])
