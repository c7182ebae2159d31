"""Recording and replaying the global averages inside a network."""

import numpy as np
import pytest

from mirnet.global_statistics import recording, replaying, spatial_mean
from mirnet.models import load_model


@pytest.fixture(scope="module")
def full(tiny_full_path):
    return load_model(tiny_full_path)


def test_outside_a_context_it_is_the_plain_mean(rng):
    x = rng.random((2, 5, 7, 3), dtype=np.float32)
    assert np.allclose(np.asarray(spatial_mean(x)), x.mean(axis=(1, 2), keepdims=True))


def test_replaying_an_images_own_averages_gives_its_own_output(full, rng):
    image = rng.random((1, 64, 64, 3), dtype=np.float32)
    with recording() as values:
        own = full.model(image, training=False).numpy()
    assert len(values) > 0 and all(tuple(v.shape[:3]) == (1, 1, 1) for v in values)
    with replaying(values):
        replayed = full.model(image, training=False).numpy()
    assert np.abs(replayed - own).max() < 1e-6


def test_another_images_averages_change_the_output(full, rng):
    """What tiles rely on: the averages given, not the input's own, set the network's global behaviour."""
    bright, dark = rng.random((1, 64, 64, 3), dtype=np.float32), rng.random((1, 64, 64, 3), dtype=np.float32) * 0.1
    with recording() as bright_values:
        full.model(bright, training=False)
    with recording() as dark_values:
        dark_own = full.model(dark, training=False).numpy()
    with replaying(bright_values):
        dark_with_bright = full.model(dark, training=False).numpy()
    assert np.abs(dark_with_bright - dark_own).max() > 1e-4
    with replaying(dark_values):
        assert np.abs(full.model(dark, training=False).numpy() - dark_own).max() < 1e-6


def test_a_wrong_number_of_values_is_an_error(full, rng):
    image = rng.random((1, 32, 32, 3), dtype=np.float32)
    with recording() as values:
        full.model(image, training=False)
    with pytest.raises(RuntimeError, match="more than"), replaying(values[:-1]):
        full.model(image, training=False)
    with pytest.raises(RuntimeError, match="averaged"), replaying([*values, values[0]]):
        full.model(image, training=False)
    with pytest.raises(RuntimeError, match="already"), recording(), replaying(values):
        pass
