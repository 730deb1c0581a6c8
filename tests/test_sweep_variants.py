"""Sweep variants and the results table, without Ray: grids, random draws from ranges, sorting by the metric."""
from __future__ import annotations

import pytest

from nodegraph import sweep as sweeps


def test_a_grid_is_every_combination_and_values_are_json_else_strings():
    grid = dict([sweeps.parse_grid("optimize.lr=0.05,0.1"), sweeps.parse_grid("settings.image_size=24,32"),
                 sweeps.parse_grid("optimize.optimizer=adam,sgd"), sweeps.parse_grid("camera.position=[1,2,3];[0,0,3]")])
    assert grid["optimize.optimizer"] == ["adam", "sgd"] and grid["camera.position"] == [[1, 2, 3], [0, 0, 3]]
    trials = sweeps.variants(grid)
    assert len(trials) == 16 and len({tuple(sorted((k, str(v)) for k, v in t.items())) for t in trials}) == 16
    with pytest.raises(ValueError, match="NODE.PARAM"):
        sweeps.parse_grid("lr=0.1")


def test_random_draws_stay_in_their_ranges_log_ones_log_uniformly_and_repeat_with_the_seed():
    ranges = dict([sweeps.parse_range("optimize.lr=0.001:0.1:log"), sweeps.parse_range("blend.sigma=0:1")])
    trials = sweeps.variants({"settings.image_size": [24, 32]}, ranges, samples=200, seed=3)
    assert len(trials) == 400
    lrs = [t["optimize.lr"] for t in trials]
    assert all(0.001 <= v <= 0.1 for v in lrs) and all(0 <= t["blend.sigma"] <= 1 for t in trials)
    below = sum(v < 0.01 for v in lrs) / len(lrs)  # log-uniform: half the draws below the geometric middle
    assert 0.4 < below < 0.6
    assert trials == sweeps.variants({"settings.image_size": [24, 32]}, ranges, samples=200, seed=3)
    with pytest.raises(ValueError, match="log"):
        sweeps.parse_range("optimize.lr=0:1:log")


@pytest.mark.parametrize("mode", ["min", "max"])
def test_rows_sort_by_the_metric_with_failed_trials_last(mode, tmp_path):
    sweep = sweeps.Sweep("s", tmp_path, "g", "m", mode, [{}] * 4)
    for i, (status, value) in enumerate([("ok", 3.0), ("error", None), ("ok", 1.0), ("ok", 2.0)]):
        sweep.rows.append(sweeps._row(i, {"x": i}, status, metrics={"m": value} if value else {}, metric=value))
    order = [r["trial"] for r in sweep.sorted_rows()]
    assert order == ([2, 3, 0, 1] if mode == "min" else [0, 3, 2, 1])
    assert sweep.best()["trial"] == order[0]
    lines = sweeps.results_csv(sweep).splitlines()
    assert lines[0].split(",")[:4] == ["trial", "x", "status", "metric:m"]
    assert [int(line.split(",")[0]) for line in lines[1:]] == order
