"""The verdict is built from intervals: lower, higher, no detectable difference (with MDE), or undefined."""

import pandas as pd

from fairmerge.study.verdict import classify, comparison_verdict, verdict_table


def _comparisons() -> pd.DataFrame:
    nan = float("nan")
    rows = [
        # merge: fairer on race EOD (primary), accuracy kept within δ; DPD not detectable.
        ("merge", "all", "accuracy", -0.01, -0.03, 0.01, 0.30, 0.60, False, "secondary", nan),
        ("merge", "race", "eod", -0.20, -0.30, -0.10, 0.002, 0.002, True, "primary", nan),
        ("merge", "race", "dpd", -0.03, -0.12, 0.06, 0.40, 0.80, False, "secondary", 0.506),
        # inject:worst: higher race EOD, and an accuracy loss larger than δ is not ruled out.
        ("inject:worst", "all", "accuracy", -0.05, -0.09, -0.01, 0.01, 0.04, False, "secondary", nan),
        ("inject:worst", "race", "eod", 0.15, 0.05, 0.25, 0.004, 0.016, False, "secondary", nan),
        ("inject:worst", "gender", "eod", nan, nan, nan, nan, nan, False, "secondary", nan),
        # A secondary whose interval excludes 0 but Holm does not reject; an exploratory row.
        ("inject:worst", "race", "dpd", 0.20, 0.19, 0.22, 0.001, 0.07, False, "secondary", 0.506),
        ("lora", "race", "eod", -0.25, -0.4, -0.1, 0.001, nan, False, "exploratory", nan),
    ]
    columns = [
        "model",
        "attribute",
        "metric",
        "delta",
        "ci_low",
        "ci_high",
        "p_value",
        "p_holm",
        "primary",
        "role",
        "labels_dpd",
    ]
    return pd.DataFrame(rows, columns=columns)


def test_interval_verdict_has_three_outcomes_and_undefined() -> None:
    table = verdict_table(_comparisons())
    assert table["outcome"].tolist() == [
        "no detectable difference",
        "lower",
        "no detectable difference",
        "lower",
        "higher",
        "undefined",
        "not significant after Holm",
        "exploratory",
    ]
    # Significant before correction is not enough: Holm decides, and it is not "no detectable difference".
    assert classify({"ci_low": -0.3, "ci_high": -0.01, "p_holm": 0.2}) == "not significant after Holm"
    assert classify({"ci_low": -0.3, "ci_high": 0.01, "p_holm": 0.2}) == "no detectable difference"


def test_interval_verdict_wording() -> None:
    mde = {"race": {"dpd": 0.31, "eod": 0.42}, "gender": {"dpd": float("nan"), "eod": float("nan")}}
    text = comparison_verdict(_comparisons(), accuracy_margin=0.05, mde=mde)
    assert text.startswith(
        "Detectably fairer than FFT on test while keeping accuracy within 0.05: merge (race EOD)."
    )
    assert "race EOD lower than FFT (95% CI of the difference [-0.300, -0.100], p (primary) = 0.002)" in text
    assert "race DPD: no detectable difference from FFT" in text
    assert "the test used detects a |ΔDPD| of 0.31 with 80 % power" in text
    assert "DPD of the true labels on the same posts: 0.506" in text
    assert "race DPD: the unadjusted 95% interval lies above 0" in text and "not a finding" in text
    assert "no detectable difference from FFT (the interval includes 0" in text
    assert (
        "lora vs FFT: race EOD (exploratory, no test claimed): 95% CI of the difference [-0.400, -0.100]"
        in text
    )
    # No "no detectable difference" beside an interval that excludes 0.
    for sentence in text.split(";"):
        if "no detectable difference" in sentence and "[" in sentence:
            low, high = (float(v) for v in sentence.split("[")[1].split("]")[0].split(","))
            assert low <= 0 <= high
    assert "race EOD higher than FFT" in text and "gender EOD undefined" in text
    assert "a loss larger than δ = 0.05 is not ruled out" in text and "within δ = 0.05" in text
    assert (
        "2 lower, 1 higher, 1 with an interval excluding 0 but not significant after Holm, 2 with no "
        "detectable difference, 1 exploratory, 1 undefined" in text
    )
    # Never a headline point estimate: the deltas themselves do not appear.
    assert "-0.200" not in text and "0.150" not in text


def test_no_model_detectably_fairer() -> None:
    frame = _comparisons()
    frame = frame[frame["model"] != "merge"]
    text = comparison_verdict(frame, accuracy_margin=0.05, mde={"race": {"eod": 0.4}})
    assert text.startswith("No model is detectably fairer than FFT")


def test_a_selected_point_that_edits_nothing_is_named_for_what_it_is() -> None:
    from fairmerge.labels import ModelLabel
    from fairmerge.study.testing import SelectedModel

    def selected(family: str, lam: float | None, lambdas: dict[str, float] | None = None) -> SelectedModel:
        return SelectedModel(ModelLabel(family), lam, lambdas, "fairest", True, "")

    assert selected("merge", 0.0).unedited == "θ_base" and selected("merge", 0.2).unedited is None
    assert selected("merge_pergroup", None, {"Arab": 0.0, "Women": 0.0}).unedited == "θ_base"
    assert selected("merge_pergroup", None, {"Arab": 0.0, "Women": 0.1}).unedited is None
    assert selected("inject", 0.0).unedited == "FFT" and selected("lora", None).unedited is None
    assert selected("merge", 0.0).to_dict()["unedited"] == "θ_base"

    unedited = {"merge": ("θ_base", [0, 2]), "inject:worst": ("FFT", [1])}
    text = comparison_verdict(
        _comparisons(), accuracy_margin=0.05, mde={"race": {"eod": 0.4}}, unedited=unedited, n_seeds=3
    )
    assert "merge: on seeds 0, 2 (of 3) validation selected λ = 0, which is θ_base itself, not an" in text
    assert "inject:worst: on seed 1 (of 3) validation selected λ = 0, which is FFT itself" in text
    assert "not an edit" not in comparison_verdict(_comparisons(), accuracy_margin=0.05, mde={})
