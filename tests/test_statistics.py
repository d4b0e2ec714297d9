"""The statistics block. numpy + standard library only (no scipy: CI has none).

Reference values come from a textbook t table, from scipy 1.17.1 / R (hard-coded, source named at each
value), or from independent brute-force computations written here (all 2^n sign flips for Wilcoxon).
"""
import itertools
import json
import math

import numpy as np
import pytest

from conftest import c

add_holm, can_reach, describe, detectable_difference, holm = c.add_holm, c.can_reach, c.describe, \
    c.detectable_difference, c.holm
min_p_reachable, noncentral_t_cdf, paired_comparison, sign_test = c.min_p_reachable, c.noncentral_t_cdf, \
    c.paired_comparison, c.sign_test
t_critical_95, t_quantile, verdict, wilcoxon_signed_rank_p = c.t_critical_95, c.t_quantile, c.verdict, \
    c.wilcoxon_signed_rank_p


# ---------------------------------------------------------------- t quantiles
@pytest.mark.parametrize("p, df, table", [
    # textbook t table (e.g. Moore & McCabe, Table D), 3 decimals
    (0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 5, 2.571), (0.975, 9, 2.262), (0.975, 19, 2.093),
    (0.975, 30, 2.042), (0.975, 120, 1.980), (0.95, 10, 1.812), (0.995, 4, 4.604), (0.9995, 1, 636.619),
])
def test_t_quantile_matches_table(p, df, table):
    assert t_quantile(p, df) == pytest.approx(table, abs=5e-4)


@pytest.mark.parametrize("p, df, ref", [
    # scipy.stats.t.ppf(p, df), scipy 1.17.1
    (0.975, 19, 2.0930240544083087), (0.975, 1, 12.706204736174694), (0.95, 10, 1.8124611228116756),
    (0.999, 1000, 3.0984021639129233),
])
def test_t_quantile_full_precision(p, df, ref):
    assert t_quantile(p, df) == pytest.approx(ref, rel=1e-11)


def test_t_quantile_symmetry_median_and_alias():
    assert t_quantile(0.025, 9) == pytest.approx(-t_quantile(0.975, 9), rel=1e-12)
    assert abs(t_quantile(0.5, 3)) < 1e-12
    assert t_critical_95(9) == t_quantile(0.975, 9)
    with pytest.raises(ValueError):
        t_quantile(1.0, 5)
    with pytest.raises(ValueError):
        t_quantile(0.5, 0)


# ---------------------------------------------------------------- describe
def test_describe_small_n():
    assert describe([]) == {"n": 0, "mean": None, "std": None, "ci95": None, "ci95_clipped": False}
    assert describe([0.7]) == {"n": 1, "mean": 0.7, "std": None, "ci95": None, "ci95_clipped": False}


def test_describe_known_values():
    d = describe([1.0, 2.0, 3.0, 4.0])
    sd = math.sqrt(5 / 3)  # sum of squared deviations 5, ddof=1
    half = 3.182446305284263 * sd / 2  # scipy.stats.t.ppf(0.975, 3)
    assert d["n"] == 4 and d["mean"] == 2.5 and d["std"] == pytest.approx(sd, rel=1e-12)
    assert d["ci95"] == pytest.approx([2.5 - half, 2.5 + half], rel=1e-12)
    assert d["ci95_clipped"] is False
    assert all(type(x) is float for x in [d["mean"], d["std"], *d["ci95"]])


def test_describe_clips_to_bounds_and_flags_it():
    d = describe([0.99, 1.0], bounds=(0, 1))
    assert d["ci95"][1] == 1.0 and d["ci95"][0] < 0.99 and d["ci95_clipped"] is True
    unclipped = describe([0.99, 1.0])
    assert unclipped["ci95"][1] > 1.0 and unclipped["ci95_clipped"] is False
    assert describe([0.5, 0.52, 0.51], bounds=(0, 1))["ci95_clipped"] is False
    assert describe([-0.99, -0.98], bounds=(-1, 1))["ci95"][0] == -1.0


def test_describe_rejects_non_finite():
    with pytest.raises(ValueError):
        describe([0.5, float("nan")])


# ---------------------------------------------------------------- sign test
def test_sign_test_known_values():
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 0) == 0.0625       # 2 / 2^5
    assert sign_test(0, 6) == 0.03125      # 2 / 2^6
    assert sign_test(1, 9) == pytest.approx(2 * 11 / 1024)  # 2 (C(10,0) + C(10,1)) / 2^10
    assert sign_test(5, 5) == 1.0
    assert sign_test(2, 8) == sign_test(8, 2) == pytest.approx(2 * 56 / 1024)


# ---------------------------------------------------------------- Wilcoxon
def brute_force_wilcoxon(diffs, decimals=9):
    """Independent reference: O(n^2) average ranks (ties found by rounding), then all 2^n sign flips."""
    d = [x for x in diffs if x != 0]
    if not d:
        return 1.0
    a = [round(abs(x), decimals) for x in d]
    ranks = [sum(y < x for y in a) + (sum(y == x for y in a) + 1) / 2 for x in a]
    w = sum(r for r, x in zip(ranks, d) if x > 0)
    null = [sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product((0, 1), repeat=len(d))]
    lower = sum(v <= w + 1e-9 for v in null) / len(null)
    upper = sum(v >= w - 1e-9 for v in null) / len(null)
    return min(1.0, 2 * min(lower, upper))


@pytest.mark.parametrize("seed", range(12))
def test_wilcoxon_matches_brute_force_with_ties_and_zeros(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 13))
    # accuracies on a 1/1000 grid, so ties and zero differences happen and arise from float subtraction
    base = rng.integers(900, 990, n) / 1000
    variant = base + rng.integers(-6, 9, n) / 1000
    diffs = list(variant - base)
    assert wilcoxon_signed_rank_p(diffs) == pytest.approx(brute_force_wilcoxon(diffs), rel=1e-12)


def test_wilcoxon_hand_made_ties_and_zeros():
    diffs = [1, 2, 2, 3, -3, 4, 5, 5, 5, -6, 0, 0]
    # brute force gives 0.19140625; note scipy 1.17.1 wilcoxon(method='exact') gives 0.232 here because it
    # uses the tie-free null distribution, which is why this code does its own.
    assert wilcoxon_signed_rank_p(diffs) == pytest.approx(brute_force_wilcoxon(diffs), rel=1e-12)
    assert wilcoxon_signed_rank_p(diffs) == pytest.approx(0.19140625, rel=1e-12)


def test_wilcoxon_textbook_example():
    # Darwin's Zea mays height differences (Fisher, The Design of Experiments, 1935); exact two-sided
    # p = 0.041259765625 (scipy.stats.wilcoxon(d, method='exact'), also in scipy's docs)
    d = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75]
    assert wilcoxon_signed_rank_p(d) == pytest.approx(0.041259765625, rel=1e-12)


def test_wilcoxon_float_subtraction_ties_are_ties():
    # these two differences are 0.013 but differ in the last bits after float subtraction
    d1, d2 = 0.9710 - 0.9580, 0.9007 - 0.8877
    assert d1 != d2
    diffs = [d1, -d2, 0.02, 0.03, 0.001]
    exact = [0.013, -0.013, 0.02, 0.03, 0.001]
    assert wilcoxon_signed_rank_p(diffs) == wilcoxon_signed_rank_p(exact)
    assert wilcoxon_signed_rank_p(diffs) == pytest.approx(brute_force_wilcoxon(exact), rel=1e-12)


def test_wilcoxon_edge_cases_and_invariances():
    assert wilcoxon_signed_rank_p([]) == 1.0
    assert wilcoxon_signed_rank_p([0.0, 0.0, 0.0]) == 1.0
    assert wilcoxon_signed_rank_p([0.01] * 6) == 0.03125     # all same sign: 2 / 2^6
    assert wilcoxon_signed_rank_p([0.01] * 5) == 0.0625
    d = np.array([0.3, -0.1, 0.25, 0.05, -0.02, 0.4, 0.11])
    p = wilcoxon_signed_rank_p(d)
    assert wilcoxon_signed_rank_p(-d) == p and wilcoxon_signed_rank_p(d[::-1]) == p
    assert wilcoxon_signed_rank_p(d * 1e-3) == p


def test_min_p_reachable_and_can_reach():
    assert min_p_reachable(0) == 1.0 and min_p_reachable(1) == 1.0
    assert min_p_reachable(4) == 0.125 and min_p_reachable(5) == 0.0625
    assert not can_reach(5) and can_reach(6)
    assert not can_reach(6, alpha=0.01) and can_reach(8, alpha=0.01)  # 2/128 > 0.01 > 2/256
    for n in range(1, 10):  # the bound is attained: all signs equal
        assert wilcoxon_signed_rank_p([1.0] * n) == min_p_reachable(n)


# ---------------------------------------------------------------- Holm
def test_holm_hand_computed():
    # sorted 0.01, 0.03, 0.04 -> 3*0.01 = 0.03, 2*0.03 = 0.06, max(0.06, 1*0.04) = 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.4]) == pytest.approx([0.8, 0.8])
    assert holm([0.6, 0.9]) == [1.0, 1.0]
    assert holm([]) == []
    out = holm([0.02, None, 0.01])
    assert out[1] is None and out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.02)


def test_holm_properties_random():
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = list(rng.uniform(0, 0.3, rng.integers(1, 8)))
        adj = holm(p)
        assert all(a >= q and a <= 1 for a, q in zip(adj, p))
        order = np.argsort(p)
        assert all(np.diff(np.array(adj)[order]) >= 0)   # monotone in the raw p
        assert min(adj) == pytest.approx(min(1, len(p) * min(p)))


# ---------------------------------------------------------------- power
@pytest.mark.parametrize("t, df, nc, ref", [
    # scipy.stats.nct.cdf(t, df, nc), scipy 1.17.1
    (2.093, 19, 2.95, 0.20094522157034247), (-2.776, 4, 1.0, 0.002798095115713142),
    (12.706, 1, 20.0, 0.11659970350550963), (1.5, 9, 0.5, 0.8173597433931109),
    (0.3, 40, -1.2, 0.9328417751676954), (3.0, 2, 4.0, 0.21121489158489212),
])
def test_noncentral_t_cdf(t, df, nc, ref):
    assert noncentral_t_cdf(t, df, nc) == pytest.approx(ref, abs=1e-9)


def test_noncentral_t_cdf_central_case():
    # nc = 0 is Student's t: P(T <= t_0.975) = 0.975
    for df in (1, 3, 19):
        assert noncentral_t_cdf(t_quantile(0.975, df), df, 0.0) == pytest.approx(0.975, abs=1e-9)


def test_detectable_difference_r_value():
    # R: power.t.test(n=20, sd=1, sig.level=0.05, power=0.8, type="one.sample")$delta = 0.6604413
    assert detectable_difference(1.0, 20) == pytest.approx(0.6604413, abs=1e-5)


@pytest.mark.parametrize("n, alpha, power, ref", [
    # solve P(|T'| > t_crit) = power with scipy.stats.nct (sf(tc, n-1, d sqrt n) + sf(tc, n-1, -d sqrt n))
    # and scipy.optimize.brentq, scipy 1.17.1
    (2, 0.05, 0.8, 11.54988843588234), (3, 0.05, 0.8, 3.2640435496995717),
    (5, 0.05, 0.8, 1.6819969659555543), (10, 0.05, 0.8, 0.9960013714554438),
    (20, 0.05, 0.8, 0.6604416546230263), (40, 0.05, 0.8, 0.45425693968357),
    (100, 0.05, 0.8, 0.28291263278138656), (20, 0.05, 0.9, 0.7644579021777315),
    (10, 0.01, 0.8, 1.3320321091254899),
])
def test_detectable_difference_scipy_values(n, alpha, power, ref):
    assert detectable_difference(1.0, n, alpha, power) == pytest.approx(ref, rel=1e-5)


def test_detectable_difference_scaling_monotone_and_none():
    assert detectable_difference(0.02, 10) == pytest.approx(0.02 * detectable_difference(1.0, 10), rel=1e-5)
    values = [detectable_difference(1.0, n) for n in (2, 3, 4, 6, 10, 20, 40)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert detectable_difference(1.0, 1) is None and detectable_difference(0.0, 10) is None
    assert detectable_difference(None, 10) is None and detectable_difference(float("nan"), 10) is None


# ---------------------------------------------------------------- paired comparison and verdicts
SCHEMA_C_KEYS = ["n_pairs", "diff", "better", "ties", "worse", "wilcoxon_p", "wilcoxon_p_holm", "sign_test_p",
                 "detectable_diff", "can_reach_005", "verdict"]


def test_paired_comparison_counts_forgetting():
    variant = [0.10, 0.20, 0.05, 0.30, 0.07]
    baseline = [0.15, 0.20, 0.10, 0.25, 0.09]   # diffs -0.05, 0, -0.05, +0.05, -0.02
    c = paired_comparison(variant, baseline, higher_is_better=False, metric_name="forgetting",
                          variant="lwta", baseline="relu")
    assert list(c) == SCHEMA_C_KEYS
    assert (c["n_pairs"], c["better"], c["ties"], c["worse"]) == (5, 3, 1, 1)
    assert c["diff"]["n"] == 5 and c["diff"]["mean"] == pytest.approx(-0.014)
    assert c["sign_test_p"] == sign_test(3, 1) and c["wilcoxon_p_holm"] is None
    assert c["wilcoxon_p"] == pytest.approx(brute_force_wilcoxon([-0.05, -0.05, 0.05, -0.02]))
    assert c["can_reach_005"] is False
    assert c["detectable_diff"] == pytest.approx(detectable_difference(c["diff"]["std"], 5))
    json.dumps(c, allow_nan=False)  # strict JSON


def test_paired_comparison_direction_acc():
    c = paired_comparison([0.9, 0.8, 0.7], [0.8, 0.8, 0.9], higher_is_better=True)
    assert (c["better"], c["ties"], c["worse"]) == (1, 1, 1)
    with pytest.raises(ValueError):
        paired_comparison([0.9, 0.8], [0.8], higher_is_better=True)


def test_verdict_too_few_seeds():
    c = paired_comparison([0.1, 0.2, 0.3, 0.4], [0.2, 0.3, 0.4, 0.5], False, "forgetting", "lwta", "relu")
    assert c["verdict"] == ("with 4 paired seeds no test can reach p < 0.05 (the smallest possible exact "
                            "Wilcoxon p is 0.125); run at least 6 seeds")
    c = paired_comparison([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.2, 0.3, 0.4, 0.5, 0.5, 0.6], False,
                          "forgetting", "lwta", "relu")
    assert c["verdict"] == ("with 6 paired seeds (2 tied) no test can reach p < 0.05 (the smallest possible "
                            "exact Wilcoxon p is 0.125); run at least 6 seeds with non-zero differences")


def test_verdict_significant_uses_holm():
    base = [0.10, 0.12, 0.08, 0.11, 0.09, 0.10, 0.13, 0.07]
    more = [b + 0.02 + 0.001 * i for i, b in enumerate(base)]   # forgets more on all 8 seeds
    same = [b + (0.01 if i % 2 else -0.01) for i, b in enumerate(base)]
    comps = {"lwta": paired_comparison(more, base, False, "forgetting", "lwta", "relu"),
             "topk": paired_comparison(same, base, False, "forgetting", "topk", "relu")}
    assert comps["lwta"]["wilcoxon_p"] == pytest.approx(2 / 2 ** 8)
    assert comps["lwta"]["verdict"] == "lwta forgets significantly more than relu (Wilcoxon p = 0.0078)"
    add_holm(comps, "forgetting", "relu")
    assert comps["lwta"]["wilcoxon_p_holm"] == pytest.approx(2 * 2 / 2 ** 8)
    assert comps["topk"]["wilcoxon_p_holm"] == 1.0
    assert comps["lwta"]["verdict"] == ("lwta forgets significantly more than relu "
                                        "(Wilcoxon p = 0.0078, Holm-adjusted 0.016)")
    acc = paired_comparison([b - 0.05 for b in base], base, True, "acc", "lwta", "relu")
    assert acc["verdict"].startswith("lwta has significantly lower ACC than relu (Wilcoxon p = ")


def test_verdict_not_significant_reports_detectable_difference():
    rng = np.random.default_rng(3)
    base = list(rng.uniform(0.9, 0.95, 20))
    variant = [b + d for b, d in zip(base, rng.normal(0, 0.01, 20))]
    c = paired_comparison(variant, base, True, "acc", "lwta", "relu")
    assert c["wilcoxon_p"] >= 0.05 and c["can_reach_005"]
    dd = detectable_difference(c["diff"]["std"], 20)
    assert c["verdict"] == (f"no significant difference between lwta and relu at 20 seeds "
                            f"(Wilcoxon p = {c['wilcoxon_p']:.2g}); a true mean difference of ±{dd:.2g} "
                            f"would have been detected with 80% power")


def test_holm_can_turn_significant_into_not_significant():
    # raw p = 0.03125 (6 seeds, all one way) is significant alone but not after Holm over 2 variants
    c = {"a": paired_comparison([0.2] * 6, [0.1] * 6, False, "forgetting", "a", "relu"),
         "b": paired_comparison([0.2] * 6, [0.1] * 6, False, "forgetting", "b", "relu")}
    assert c["a"]["verdict"].startswith("a forgets significantly more than relu")
    add_holm(c, "forgetting", "relu")
    assert c["a"]["wilcoxon_p_holm"] == pytest.approx(0.0625)
    assert c["a"]["verdict"] == ("no significant difference between a and relu at 6 seeds "
                                 "(Wilcoxon p = 0.031, Holm-adjusted 0.062)")
    json.dumps(c, allow_nan=False)


def test_describe_equal_values_have_zero_sd():
    # np.std of six copies of 0.2 - 0.1 is ~1e-17, not 0; equal values must give sd 0 and a point interval
    d = describe([0.2 - 0.1] * 6)
    assert d["std"] == 0.0 and d["ci95"] == [d["mean"], d["mean"]]
    assert describe([0.9710 - 0.9580, 0.9007 - 0.8877])["std"] == 0.0
    assert describe([0.0, 0.0])["std"] == 0.0
