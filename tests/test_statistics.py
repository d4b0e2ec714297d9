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
min_p_reachable, paired_comparison, sign_test = c.min_p_reachable, c.paired_comparison, c.sign_test
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
@pytest.mark.parametrize("n", [1, 4, 7, 12])
def test_wilcoxon_null_is_the_brute_force_distribution_of_w_plus(n):
    counts = np.zeros(n * (n + 1) // 2 + 1)
    for signs in itertools.product((0, 1), repeat=n):
        counts[sum(r for r, s in zip(range(1, n + 1), signs) if s)] += 1
    np.testing.assert_allclose(c.wilcoxon_null(n), counts / 2 ** n, rtol=0, atol=1e-15)


@pytest.mark.parametrize("n, alpha", [(6, 0.05), (9, 0.05), (9, 0.05 / 3), (15, 0.01)])
def test_wilcoxon_rejects_exactly_where_the_exact_test_is_below_alpha(n, alpha):
    x = np.random.default_rng(n).standard_normal((500, n)) + 0.6
    expected = [wilcoxon_signed_rank_p(row) < alpha for row in x]
    np.testing.assert_array_equal(c.wilcoxon_rejects(x, alpha), expected)
    assert 0 < np.mean(expected) < 1


@pytest.mark.parametrize("n, m", [(8, 1), (20, 1), (20, 3), (12, 5)])
def test_detectable_difference_has_80_percent_power_by_fresh_simulation(n, m):
    """At the returned difference, the Wilcoxon test at 0.05 / m rejects on 80 % of new normal samples
    (other draws than the function's own), and a quarter less difference has clearly less power."""
    dd = detectable_difference(0.03, n, m=m)
    x = np.random.default_rng(99).normal(dd, 0.03, (20_000, n))
    assert c.wilcoxon_rejects(x, 0.05 / m).mean() == pytest.approx(0.8, abs=0.015)
    assert c.wilcoxon_rejects(x - 0.25 * dd, 0.05 / m).mean() < 0.7


def test_detectable_difference_is_close_to_the_t_tests_and_grows_with_the_correction():
    # R: power.t.test(n=20, sd=1, sig.level=0.05, power=0.8, type="one.sample")$delta = 0.6604413; the
    # Wilcoxon test's efficiency under normality is 3/pi = 0.955, so it needs a little more
    assert 0.6604413 < detectable_difference(1.0, 20) < 0.6604413 / math.sqrt(0.955 * 0.97)
    assert detectable_difference(1.0, 20, m=3) > detectable_difference(1.0, 20) * 1.1


def test_detectable_difference_scaling_monotone_and_none():
    assert detectable_difference(0.02, 10) == pytest.approx(0.02 * detectable_difference(1.0, 10), rel=1e-12)
    values = [detectable_difference(1.0, n) for n in (6, 7, 10, 20, 40)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert detectable_difference(1.0, 5) is None                         # 2/32 > 0.05: no test can reject
    assert detectable_difference(1.0, 6, m=2) is None and detectable_difference(1.0, 7, m=2) is not None
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
    assert c["verdict"] == ("cannot be decided with 4 paired seeds: no test can reach p < 0.05 (the smallest "
                            "possible exact Wilcoxon p is 0.125); run at least 6 seeds")
    c = paired_comparison([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.2, 0.3, 0.4, 0.5, 0.5, 0.6], False,
                          "forgetting", "lwta", "relu")
    assert c["verdict"] == ("cannot be decided with 6 paired seeds (2 tied): no test can reach p < 0.05 (the "
                            "smallest possible exact Wilcoxon p is 0.125); run at least 6 seeds with non-zero "
                            "differences")


def test_after_holm_a_comparison_that_cannot_reach_the_corrected_level_says_so_and_detects_nothing():
    six = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    comps = {v: paired_comparison([x + 0.01 * (i + 1) for i, x in enumerate(six)], six, False, "forgetting", v,
                                  "relu") for v in ("a", "b", "c")}
    assert comps["a"]["can_reach_005"] and comps["a"]["detectable_diff"] is not None   # 2/64 < 0.05 alone
    add_holm(comps, "forgetting", "relu")
    assert comps["a"]["holm_m"] == 3 and not comps["a"]["can_reach_005"] and comps["a"]["detectable_diff"] is None
    assert comps["a"]["verdict"] == ("cannot be decided with 6 paired seeds: no test can reach p < 0.05 after Holm "
                                     "over 3 comparisons (the smallest possible exact Wilcoxon p, Holm-adjusted, is "
                                     "0.0938); run at least 7 seeds")


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
                            f"would have been detected with at least 80% power")


def test_holm_can_turn_significant_into_not_significant():
    # raw p = 0.03125 (6 seeds, all one way) is significant alone but not after Holm over 2 variants
    c = {"a": paired_comparison([0.2] * 6, [0.1] * 6, False, "forgetting", "a", "relu"),
         "b": paired_comparison([0.2] * 6, [0.1] * 6, False, "forgetting", "b", "relu")}
    assert c["a"]["verdict"].startswith("a forgets significantly more than relu")
    add_holm(c, "forgetting", "relu")
    assert c["a"]["wilcoxon_p_holm"] == pytest.approx(0.0625)
    assert c["a"]["verdict"] == ("cannot be decided with 6 paired seeds: no test can reach p < 0.05 after Holm "
                                 "over 2 comparisons (the smallest possible exact Wilcoxon p, Holm-adjusted, is "
                                 "0.0625); run at least 7 seeds")
    json.dumps(c, allow_nan=False)


def test_describe_equal_values_have_zero_sd():
    # np.std of six copies of 0.2 - 0.1 is ~1e-17, not 0; equal values must give sd 0 and a point interval
    d = describe([0.2 - 0.1] * 6)
    assert d["std"] == 0.0 and d["ci95"] == [d["mean"], d["mean"]]
    assert describe([0.9710 - 0.9580, 0.9007 - 0.8877])["std"] == 0.0
    assert describe([0.0, 0.0])["std"] == 0.0
