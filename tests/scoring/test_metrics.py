"""The paper's metrics: Appendix C's worked examples, Table 2 from Table 1, and literal
implementations of the formulas on random prediction sequences."""
import numpy as np
import pytest

from corruptions import corruption_names
from pipeline import metrics

from .. import metrics_reference as reference

# Table 1 (CE) and Table 2 (relative CE) of the paper: network -> clean error, mCE, 15 CEs
TABLE1 = {
    "SqueezeNet": (41.8, 104.4, [107, 106, 105, 100, 103, 101, 100, 101, 103, 97, 97, 98, 106, 109, 134]),
    "VGG-11": (31.0, 93.5, [97, 97, 100, 92, 99, 93, 91, 92, 91, 84, 75, 86, 97, 107, 100]),
    "VGG-19": (27.6, 88.9, [89, 91, 95, 89, 98, 90, 90, 89, 86, 75, 68, 80, 97, 102, 94]),
    "VGG-19+BN": (25.8, 81.6, [82, 83, 88, 82, 94, 84, 86, 80, 78, 69, 61, 74, 94, 85, 83]),
    "ResNet-18": (30.2, 84.7, [87, 88, 91, 84, 91, 87, 89, 86, 84, 78, 69, 78, 90, 80, 85]),
    "ResNet-50": (23.9, 76.7, [80, 82, 83, 75, 89, 78, 80, 78, 75, 66, 57, 71, 85, 77, 77]),
}
TABLE2 = {
    "SqueezeNet": (117.9, [118, 116, 114, 104, 110, 106, 105, 106, 110, 98, 101, 100, 126, 129, 229]),
    "VGG-11": (123.3, [122, 121, 125, 116, 129, 121, 115, 114, 113, 99, 86, 102, 151, 161, 174]),
    "VGG-19": (122.9, [114, 117, 122, 118, 136, 123, 122, 114, 111, 88, 82, 98, 165, 161, 172]),
    "VGG-19+BN": (111.1, [104, 105, 114, 108, 132, 114, 119, 102, 100, 79, 68, 89, 165, 125, 144]),
    "ResNet-18": (103.9, [104, 106, 111, 100, 116, 108, 112, 103, 101, 89, 67, 87, 133, 97, 126]),
    "ResNet-50": (105.0, [104, 107, 107, 97, 126, 107, 110, 101, 97, 79, 62, 89, 146, 111, 132]),
}


def permutation(*head, n=20):
    """sigma as a rank list: sigma(i) for i = 1..n, the given head then the identity."""
    rest = [k for k in range(1, n + 1) if k not in head]
    return np.array(list(head) + rest)


@pytest.mark.parametrize("sigma, expected", [
    (permutation(), 0),
    (permutation(2, 1), 2),
    (permutation(3, 1, 2), 4),
    (np.array(list(range(2, 21)) + [1]), 5),
    (permutation(1, 2, 3, 4, 6, 5), 1),
    (permutation(1, 2, 3, 4, 6, 7, 5), 1),
    (permutation(1, 2, 3, 5, 6, 4), 2),
    (permutation(5, 4, 3, 2, 1), 12),
])
def test_appendix_c_examples(sigma, expected):
    identity = np.arange(1, len(sigma) + 1)
    # pi(x) is the identity, so the class ranked i under x is ranked sigma(i) under x'
    assert reference.ranking_distance(identity, sigma)[0] == expected


def test_alexnet_per_severity_errors_average_to_appendix_d():
    for name, errors in metrics.ALEXNET_ERRORS.items():
        assert abs(np.mean(errors) - metrics.ALEXNET_MEAN_ERRORS[name]) < 0.0006, name
    assert set(metrics.ALEXNET_MEAN_ERRORS) == set(corruption_names("all"))


@pytest.mark.parametrize("network", TABLE1)
def test_table_2_recomputed_from_table_1(network):
    clean, mce, ces = TABLE1[network]
    baseline = metrics.Baseline.alexnet()
    names = corruption_names("benchmark")
    # a model whose mean error per corruption gives Table 1's CE (only the sum over severities matters)
    errors = {n: {s: ce / 100 * baseline.mean_errors[n] for s in range(1, 6)} for n, ce in zip(names, ces)}
    summary = metrics.summarize_c(errors, clean / 100)
    relative_mce, relative = TABLE2[network]
    for name, ce, printed in zip(names, ces, relative):
        assert abs(summary["ce"][name] - ce) < 1e-9
        assert abs(summary["relative_ce"][name] - printed) <= 2.0, (name, summary["relative_ce"][name], printed)
    assert abs(summary["mce"] - mce) <= 0.5
    assert abs(summary["relative_mce"] - relative_mce) <= 1.0, summary["relative_mce"]


def test_alexnet_scores_100_against_itself():
    errors = {n: dict(zip(range(1, 6), e)) for n, e in metrics.ALEXNET_ERRORS.items()}
    summary = metrics.summarize_c(errors, metrics.ALEXNET_CLEAN_ERROR)
    assert summary["mce"] == pytest.approx(100) and summary["relative_mce"] == pytest.approx(100)


def test_missing_cells_leave_the_means_out_unless_partial_is_allowed():
    errors = {n: {s: 0.5 for s in range(1, 6)} for n in corruption_names("benchmark")}
    del errors["fog"][3]
    errors["spatter"] = {1: 0.4}
    summary = metrics.summarize_c(errors, 0.2)
    assert summary["mce"] is None and summary["relative_mce"] is None
    assert "fog/3" in summary["missing"] and "spatter/2" in summary["missing"]
    assert "saturate/1" not in summary["missing"]  # an extra corruption nobody scored is not missing
    partial = metrics.summarize_c(errors, 0.2, allow_partial=True)
    assert partial["partial"] and partial["mce"] == pytest.approx(np.mean([partial["ce"][n] for n in partial["ce"]
                                                                          if n in corruption_names("benchmark")]))
    assert "fog" not in partial["ce"]


def test_another_baseline_from_a_results_file():
    results = {"model": {"name": "ResNet-50"}, "clean_error": 0.24,
               "errors": {n: {str(s): 0.6 for s in range(1, 6)} for n in corruption_names("all")}}
    baseline = metrics.Baseline.from_results(results)
    errors = {n: {s: 0.3 for s in range(1, 6)} for n in corruption_names("all")}
    summary = metrics.summarize_c(errors, 0.12, baseline)
    assert summary["baseline"] == "ResNet-50"
    assert summary["ce"]["fog"] == pytest.approx(50) and summary["relative_ce"]["fog"] == pytest.approx(50)


# ----------------------------------------------------------------- ImageNet-P, literally

def literal_over_pairs(sequences, noise, difficulty, compare):
    """ImageNet-P/test.py's loops: for noise, every frame against the first; otherwise chains
    of every `difficulty`-th frame, each against the one before; averaged per video, then
    over videos."""
    total = 0.0
    step = 1 if noise else difficulty
    for video in sequences:
        values = []
        for start in range(step):
            previous = video[start]
            for frame in video[start::step][1:]:
                values.append(compare(previous, frame))
                if not noise:
                    previous = frame
        total += np.mean(values) / len(sequences)
    return total


def literal_d(ranks_x, ranks_y):
    """The paper's double sum with sigma = pi(x)^-1 pi(x')."""
    n = len(ranks_x)
    class_at = {ranks_x[c]: c for c in range(n)}
    sigma = {i: ranks_y[class_at[i]] for i in range(1, n + 1)}
    return sum(1 for i in range(1, 6) for j in range(min(i, sigma[i]) + 1, max(i, sigma[i]) + 1)
               if 1 <= j - 1 <= 5)


def literal_zipf(ranks_x, ranks_y):
    n = len(ranks_x)
    class_at = {ranks_x[c]: c for c in range(n)}
    return sum((1 / i) * abs(1 / i - 1 / ranks_y[class_at[i]]) for i in range(1, n + 1))


@pytest.mark.parametrize("noise, difficulty", [(True, 1), (False, 1), (False, 2), (False, 3)])
def test_flip_probability_and_distances_match_the_formulas(noise, difficulty):
    rng = np.random.default_rng(difficulty + 10 * noise)
    classes, videos, frames = 12, 7, 11
    scores = rng.normal(size=(videos, frames, classes)) + rng.normal(size=(videos, 1, classes)) * 2
    predictions = scores.argmax(-1)
    ranks = reference.ranks_from_scores(scores)
    assert reference.flip_probability(predictions, noise, difficulty) == pytest.approx(
        literal_over_pairs(predictions, noise, difficulty, lambda a, b: int(a != b)))
    assert reference.top5_distance(ranks, noise, difficulty) == pytest.approx(
        literal_over_pairs(ranks, noise, difficulty, literal_d))
    assert reference.top5_distance(ranks, noise, difficulty, mode="zipf") == pytest.approx(
        literal_over_pairs(ranks, noise, difficulty, literal_zipf))


def test_ranks_follow_scores():
    scores = np.array([[0.1, 3.0, -1.0, 2.0]])
    assert reference.ranks_from_scores(scores).tolist() == [[3, 1, 4, 2]]


def test_flip_rate_and_mean_flip_rate():
    measured = {p: {"1": {"fp": fp, "ut5d": metrics.ALEXNET_UT5D[p] / 2}} for p, fp in metrics.ALEXNET_FP.items()}
    measured["rotate"]["2"] = {"fp": 0.5, "ut5d": 1.0}  # no AlexNet value at difficulty 2: not normalised
    measured["spatter"]["1"]["fp"] = 10.0  # a validation perturbation: never in mFR
    summary = metrics.summarize_p(measured, metrics.FlipBaseline.alexnet())
    assert summary["mfr"] == pytest.approx(100) and summary["mt5d"] == pytest.approx(50)
    assert summary["fr"]["spatter"]["1"] == pytest.approx(100 * 10.0 / 0.0505) and "2" not in summary["fr"]["rotate"]
    del measured["rotate"]
    partial = metrics.summarize_p(measured, metrics.FlipBaseline.alexnet())
    assert partial["mfr"] is None and partial["missing"] == ["rotate"]
    assert metrics.summarize_p(measured, None)["fr"] == {}
