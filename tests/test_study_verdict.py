"""The generated verdict names the models that stay close to FFT with a lower EOD, and says if it is noise."""

from fairmerge.study.verdict import strategy_verdict

FFT = {"model": "fft", "accuracy": 0.82, "race_eod": 0.50}


def test_no_candidate_close_to_fft() -> None:
    text = strategy_verdict(FFT, [{"model": "merge", "accuracy": 0.70, "race_eod": 0.10}], {}, ["race"])
    assert text.startswith("No merged model") and "merge at 0.700" in text


def test_winner_with_significant_and_noisy_reductions() -> None:
    candidates = [
        {"model": "merge", "accuracy": 0.81, "race_eod": 0.30},
        {"model": "merge_pergroup", "accuracy": 0.815, "race_eod": 0.45},
    ]
    tests = {
        "merge": {"race": {"eod": {"delta": -0.2, "ci_low": -0.3, "ci_high": -0.1}}},
        "merge_pergroup": {"race": {"eod": {"delta": -0.05, "ci_low": -0.2, "ci_high": 0.1}}},
    }
    text = strategy_verdict(FFT, candidates, tests, ["race"])
    assert "merge, merge_pergroup" in text
    assert "outside the CI" in text and "within noise" in text
