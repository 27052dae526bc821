"""The model against a baseline window by window (`eval.paired`): a pure function, checked on cases whose answer
is known without it."""

from __future__ import annotations

import numpy as np
import pytest

from vid2world.eval.paired import paired_difference


def test_a_constant_gap_has_no_spread():
    base = np.linspace(15.0, 25.0, 16)
    p = paired_difference(base + 0.5, base, higher_is_better=True)
    assert p.difference == pytest.approx(0.5, rel=1e-12) and p.low == pytest.approx(0.5, rel=1e-12)
    assert p.high == pytest.approx(0.5, rel=1e-12) and p.wins == 16 and p.windows == 16 and p.separated


def test_wins_follow_the_metrics_direction():
    model, base = np.array([0.1, 0.2, 0.3]), np.array([0.2, 0.1, 0.4])
    assert paired_difference(model, base, higher_is_better=False).wins == 2  # lower is better: 0.1 and 0.3
    assert paired_difference(model, base, higher_is_better=True).wins == 1
    assert paired_difference(base, base, higher_is_better=True).wins == 0  # a tie is not a win


def test_a_gap_that_flips_sign_is_not_separated_and_the_interval_holds_the_mean():
    rng = np.random.default_rng(3)
    base = rng.normal(20, 2, 32)
    model = base + np.where(np.arange(32) % 2, 1.0, -1.0) + 0.05
    p = paired_difference(model, base, higher_is_better=True)
    assert p.low < 0 < p.high and not p.separated and p.low <= p.difference <= p.high and p.wins == 16
    # the bootstrap's spread is about the standard error of the mean difference
    se = np.std(model - base, ddof=1) / np.sqrt(32)
    assert (p.high - p.low) == pytest.approx(2 * 1.96 * se, rel=0.25)
    assert paired_difference(model, base, True) == p  # seeded: the same interval every time


@pytest.mark.parametrize("model, base, message", [
    (np.zeros(3), np.zeros(4), r"two equal, non-empty 1-D arrays, got \(3,\) and \(4,\)"),
    (np.zeros(0), np.zeros(0), "non-empty"),
    (np.array([1.0, np.nan]), np.zeros(2), "must be finite"),
])
def test_bad_scores_are_refused(model, base, message):
    with pytest.raises(ValueError, match=message):
        paired_difference(model, base, higher_is_better=True)


def test_text_puts_the_three_numbers_to_the_same_decimals():
    from vid2world.eval.paired import PairedDifference

    assert PairedDifference(0.586, -0.00509, 1.2, 24, 32).text() == "+0.59 (-0.01 to +1.20)"
    assert PairedDifference(-0.00281, -0.00455, -0.000991, 25, 32).text() == "-0.00281 (-0.00455 to -0.00099)"
    assert PairedDifference(1.27, 0.72, 1.87, 23, 32).text(2, " dB") == "+1.27 dB (+0.72 to +1.87)"
