"""Study 2 (the seed document's open question 1): does LWTA help at the paper's scale?

Three hidden layers of 1,000 units, 1,000 training images per class (twice the default) and 10 epochs per
task (twice the default), digits 0-4 then 5-9, task-incremental. The paper trained on the full training
set for many more epochs; this is what fits the study budget here (about 40 s of CPU per job).
"""
from common import run_setting, write_study

STUDY, SEEDS = "02_paper_scale", 20
SCALE = ["--hidden", "1000", "--depth", "3", "--n-train-per-class", "1000", "--epochs", "10"]

if __name__ == "__main__":
    doc = run_setting(STUDY, "scale", [*SCALE, "--models", "relu,lwta:k=2,maxout:k=2"], SEEDS, "paper_scale")
    write_study(STUDY, f"Study 2: 3 x 1000 units, 1000 images per class, 10 epochs per task ({SEEDS} seeds)",
                {"paper scale": doc}, ["Each variant against relu, paired by seed."])
