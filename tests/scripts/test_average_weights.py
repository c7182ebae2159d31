"""scripts/average_weights.py: shares are normalised, negative shares extrapolate, cancelling shares are refused, and
networks grown from one another average in the grown network."""

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


def test_a_model_grown_from_another_is_averaged_with_it_in_the_grown_network() -> None:
    """``--grow``: a model without a layer of the last one's network enters the average with that layer's initial
    value (here a refinement input that starts at zero) and its own weights everywhere else."""
    from mirnet.architectures import build_model

    average_weights = load_script("average_weights")
    arguments = {"num_rrg": 1, "num_mrb": 1, "channels": 8, "fold": 4, "refine": 4, "body_views": 2}
    grown_arguments = {**arguments, "refine_views_features": True}
    smaller = build_model("mirnet", **arguments)
    grown = build_model("mirnet", **grown_arguments)
    grown_names = [w.path for w in grown.weights]
    as_grown, itself = average_weights.grown_weights([smaller, grown], "mirnet", grown_arguments)
    assert [w.shape for w in as_grown] == [w.shape for w in itself] == [tuple(w.shape) for w in grown.weights]
    own = {w.path: np.asarray(w) for w in smaller.weights}
    for path, value in zip(grown_names, as_grown, strict=True):
        if path.startswith("refine_views_features/"):
            assert not value.any()  # the grown input, at its initial zero
        else:
            np.testing.assert_array_equal(value, own[path])
    for value, expected in zip(itself, grown.get_weights(), strict=True):
        np.testing.assert_array_equal(value, expected)
    half = average_weights.combine([as_grown, itself], [1, 1])
    new = grown_names.index("refine_views_features/kernel")
    np.testing.assert_allclose(half[new], 0.5 * itself[new])
