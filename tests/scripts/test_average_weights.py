"""scripts/average_weights.py: shares are normalised, negative shares extrapolate, and cancelling shares are refused."""

from __future__ import annotations

import numpy as np
import pytest

from tests.scripts.loading import load_script


def _model(value: float) -> list[np.ndarray]:
    return [np.full((2, 3), value, dtype=np.float32), np.full((4,), 2 * value, dtype=np.float32)]


def test_shares_are_normalised_to_sum_to_one() -> None:
    script = load_script("average_weights")
    combined = script.combine([_model(1.0), _model(5.0)], [1.0, 3.0])
    assert np.allclose(combined[0], 4.0) and np.allclose(combined[1], 8.0)


def test_a_negative_share_extrapolates_past_the_second_model() -> None:
    script = load_script("average_weights")
    combined = script.combine([_model(1.0), _model(5.0)], [-0.25, 1.25])  # 5 + 0.25 x (5 - 1)
    assert np.allclose(combined[0], 6.0) and np.allclose(combined[1], 12.0)


def test_shares_that_cancel_out_are_refused() -> None:
    script = load_script("average_weights")
    with pytest.raises(ValueError, match="must not cancel out"):
        script.combine([_model(1.0), _model(5.0)], [-1.0, 1.0])


@pytest.mark.parametrize(
    "text, expected", [("a/v4.keras:-0.25", ("a/v4.keras", -0.25)), ("v5.keras", ("v5.keras", 1.0))]
)
def test_a_share_is_read_after_the_last_colon(text: str, expected: tuple[str, float]) -> None:
    script = load_script("average_weights")
    path, share = script.parse_share(text)
    assert (str(path), share) == expected
