"""Study 4: permuted MNIST, 10 tasks, domain-incremental (one shared head). (Open question 3 of
npow/schmidhuber-problems, compete-to-compute/README.md.)

Default network and budget per task (2 x 400 units, 500 images per class, 5 epochs per task).
"""
from common import parse_study_args, run_setting, seed_count, write_study

STUDY, SEEDS = "04_permuted", 20

if __name__ == "__main__":
    parse_study_args(__doc__)
    doc = run_setting(STUDY, "permuted10", ["--permuted", "10", "--models", "relu,lwta,topk,kwinners:k_inference_factor=1.5:boost_strength_factor=0.9"], SEEDS)
    write_study(STUDY, f"Study 4: permuted MNIST, 10 tasks ({seed_count(doc)} seeds)", {"permuted MNIST": doc},
                ["Each variant against relu, paired by seed. ACC = mean accuracy over the 10 tasks at the end."])
