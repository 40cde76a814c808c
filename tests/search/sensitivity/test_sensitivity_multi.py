"""`archsearch sensitivity` on a multi-objective study (issue #26): its centre is the best quality."""

from __future__ import annotations

from pathlib import Path

import pytest

from archsearch.config import SearchConfig
from archsearch.controller import run_search
from archsearch.sensitivity import run_sensitivity
from archsearch.storage import best_quality_trial

from .test_sensitivity import _search_config


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sensitivity_reads_a_multi_objective_parent(tmp_path: Path) -> None:
    config = _search_config(tmp_path).to_dict()
    config["study"].update(n_trials=1, objectives=["accuracy", "params"])
    config["space"].update({"layers": [0, 1], "width": [4, 64], "baselines": []})
    study = run_search(SearchConfig.from_dict(config))
    assert best_quality_trial(study).number == 0
    result = run_sensitivity(config["study"]["storage"], "teacher", repeats=2)
    (centre,) = result.centres
    assert (centre.trial, centre.widths) == (0, ())
    assert result.direction == "maximize" and len(centre.neighbours) == 3
