"""A seed's searches as study outputs: pareto_front.csv rows (selected marked) and the figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from search_synthetic import synthetic_evaluations

from fairmerge.report.search_figures import plot_fronts, plot_search
from fairmerge.search import grid_search, nsga2_search, score_front_on_test
from fairmerge.search.outcome import SeedSearch, front_rows, write_search_outputs


def _seed_search() -> SeedSearch:
    evaluations, spy = synthetic_evaluations()
    results = {"grid": grid_search(evaluations, 5), "nsga2": nsga2_search(evaluations, 8, seed=0)}
    tests = {m: score_front_on_test(r, evaluations) for m, r in results.items()}
    predictions = {m: np.zeros((len(t), 4)) for m, t in tests.items()}
    selected = {m: r.front[-1] for m, r in results.items()}
    tested = [c for c, split in spy.calls if split == "test"]
    fronts = {p.coefficients for r in results.values() for p in r.front}
    assert set(tested) == fronts and len(tested) == len(fronts)  # only front points, once each
    return SeedSearch(0, results, tests, predictions, selected, dict(evaluations.counts))


def test_front_rows_hold_both_splits_and_mark_the_selected_point(tmp_path: Path) -> None:
    run = _seed_search()
    rows = front_rows([run])
    for method, result in run.results.items():
        mine = rows[rows["model"] == method]
        assert (mine["split"] == "val").sum() == (mine["split"] == "test").sum() == len(result.front)
        assert mine["selected"].sum() == 2  # the selected point on val and on test
    assert {"seed", "lambda_race:A", "lambda_race:B", "race_dpd_ci_low", "race_eod_ci_high"} <= set(
        rows.columns
    )
    # test rows carry the test scores (the synthetic test is shifted), not the val ones
    val = rows[(rows.split == "val")].accuracy.to_numpy()
    test = rows[(rows.split == "test")].accuracy.to_numpy()
    assert np.allclose(val - test, 0.02)


def test_figures_are_drawn_from_pareto_front_csv(tmp_path: Path) -> None:
    assert plot_search(tmp_path / "pareto_front.csv", tmp_path) == {}  # no search: no figure
    write_search_outputs(tmp_path, front_rows([_seed_search()]), pd.DataFrame({"method": ["grid"]}))
    figures = plot_search(tmp_path / "pareto_front.csv", tmp_path)
    assert set(figures) == {"search-fronts"}  # no learned method ran: no coefficient figure
    assert figures["search-fronts"].read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "hypervolume.csv").is_file()


def test_fronts_figure_draws_an_interval_that_excludes_its_estimate(tmp_path: Path) -> None:
    """A basic bootstrap interval of a gap can lie below its estimate (here race_eod 0.04 in
    [0, 0.03]): the figure draws it as is instead of failing on a negative error bar."""
    row = {"model": "grid", "point": 0, "accuracy": 0.7, "accuracy_ci_low": 0.66, "accuracy_ci_high": 0.74}
    row |= {"race_eod": 0.04, "race_eod_ci_low": 0.0, "race_eod_ci_high": 0.03, "selected": True}
    fronts = pd.DataFrame([row | {"split": "val"}, row | {"split": "test"}])
    path = plot_fronts(fronts, tmp_path / "fronts.png")
    assert path.read_bytes().startswith(b"\x89PNG")
