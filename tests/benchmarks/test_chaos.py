"""Tests of benchmarks/chaos.py's verdict: a chaos run whose faults did not happen cannot pass."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "chaos.py"
_spec = importlib.util.spec_from_file_location("benchmarks_chaos", _PATH)
chaos = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = chaos  # its dataclasses look their module up there
_spec.loader.exec_module(chaos)

CLEAN = {
    "planned": {"worker": 4, "controller": 2, "interrupt": 1, "backends": 4},
    "fired": {"worker": 4, "controller": 2, "interrupt": 1, "backends": 4},
    "survived": {"worker": 4, "controller": 2, "interrupt": 1, "backends": 4},
    "lost": 0,
    "duplicated": 0,
    "left_running": 0,
    "left_waiting": 0,
    "failed_for_the_database": 0,
    "finished": 55,
    "n_trials": 55,
    "unexpected_exits": [],
}


def test_verdict_passes_a_run_whose_planned_faults_all_fired_and_survived() -> None:
    """Check that a run with every planned fault fired and survived, and nothing lost, passes."""
    assert chaos.verdict(CLEAN, 1.0) == []


@pytest.mark.parametrize(
    ("changes", "min_fired", "reason"),
    [
        # Issue #27's run: the search ended after 2 of 10 faults, and the script still exited 0.
        ({"fired": {"worker": 0, "backends": 2}, "survived": {"backends": 2}}, 1.0, "2 of 11 planned faults fired"),
        (
            {"fired": {"worker": 4, "backends": 4}, "survived": {"worker": 4, "backends": 4}},
            0.9,
            r"\(0.73 < the required share 0.90\)",
        ),
        ({"planned": {}, "fired": {}, "survived": {}}, 1.0, "0 of 0 planned faults fired"),
        (
            {"survived": {"worker": 3, "controller": 2, "interrupt": 1, "backends": 4}},
            1.0,
            "1 of 11 fired faults not survived",
        ),
        ({"lost": 1}, 1.0, "lost: 1"),
        # Two worker errors stopped the search in a chaos run; the script's reruns hid them from the verdict.
        ({"unexpected_exits": [2, 2]}, 1.0, r"the controller stopped by itself 2 times \(exit 2, 2\)"),
        ({"left_waiting": 2}, 1.0, "left waiting: 2"),
        ({"finished": 54}, 1.0, "54 trials finished, not n_trials = 55"),
    ],
)
def test_verdict_fails_when_faults_did_not_fire_or_the_search_did_not_survive(
    changes: dict, min_fired: float, reason: str
) -> None:
    """Check that too few fired faults (below the stated share), an unsurvived fault, a lost or left-over trial,
    or a wrong total each fail the run with a reason that says so."""
    failures = chaos.verdict(CLEAN | changes, min_fired)
    assert failures and any(re.search(reason, f) for f in failures), failures
