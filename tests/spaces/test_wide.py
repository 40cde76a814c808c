"""Tests of `fit_space`: the default space fitted to wide inputs and many classes (issue #24)."""

from __future__ import annotations

import pytest

from archsearch.spaces import MAX_EMBEDDED_FEATURES, MLPSpace, fit_space, wide_width


def test_a_narrow_table_keeps_the_default_space():
    """Check that digits-sized data (64 features, 10 classes) searches exactly the default space."""
    space, notes = fit_space(MLPSpace(), 64, 10)
    assert space == MLPSpace() and notes == []


def test_wide_inputs_drop_the_embedding_and_widen_the_widths():
    """Check that 2,000 features and 40 classes search no embedding and widths 64 to 1,024, and say so."""
    space, notes = fit_space(MLPSpace(), 2000, 40, given=())
    assert space.embedding == ("none",)
    assert space.width == (64, 1024)
    assert notes == [
        f"Space: no per-feature embedding on 2,000 input features (above {MAX_EMBEDDED_FEATURES}); "
        '[space] embedding = ["none", "pl"] searches it anyway.',
        "Space: hidden widths 64 to 1024 for 2,000 inputs and 40 outputs; [space] width sets them.",
    ]


def test_an_embedding_the_user_wrote_is_kept_with_a_warning():
    """Check that an explicit embedding on wide inputs is searched, with a note that it is slow."""
    space, notes = fit_space(MLPSpace(embedding=("none", "pl")), 2000, 40, given=("embedding",))
    assert space.embedding == ("none", "pl")
    assert "[space] embedding = ['none', 'pl'] on 2,000 input features" in notes[0]


def test_a_width_the_user_wrote_is_kept():
    """Check that a [space] width is never changed, and with no key given the differing fields count as given."""
    space, _ = fit_space(MLPSpace(width=(8, 64)), 2000, 40)
    assert space.width == (8, 64)


def test_the_lower_width_bound_stays_below_a_user_baseline():
    """Check that a baseline narrower than the scaled lower bound stays inside the range."""
    space, _ = fit_space(MLPSpace(baselines=((32,),)), 2000, 40, given=("baselines",))
    assert space.width == (32, 1024)


@pytest.mark.parametrize(
    ("features", "outputs", "expected"),
    [(13, 3, (16, 512)), (2000, 40, (64, 1024)), (2048, 1000, (1024, 1024)), (100_000, 2, (16, 2048))],
)
def test_the_width_rule(features, outputs, expected):
    """Check the stated rule at a few sizes: low from the classes, high from the features, capped."""
    assert wide_width(features, outputs) == expected
