import keras
import pytest

from mirnet.architectures import build_model
from mirnet.flops import count_flops


def test_a_convolution_costs_two_operations_per_multiply_add():
    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(8, 3, padding="same", use_bias=False)])
    assert count_flops(model, 10, 20) == 2 * 9 * 3 * 8 * 10 * 20


def test_a_plain_convolutional_network_costs_about_two_operations_per_weight_and_pixel():
    # mirnet-lite is 3x3 convolutions only: its cost is 2 x parameters x pixels, plus biases, ReLUs and additions.
    model = build_model("mirnet-lite", groups=1, blocks=1, channels=8)
    flops = count_flops(model, 40, 60)
    assert flops == pytest.approx(2 * model.count_params() * 40 * 60, rel=0.05)


def test_folding_pixels_into_channels_cuts_the_cost_of_the_same_network():
    tiny = {"channels": 8, "groups": 1, "blocks": 1, "views": 1, "refine_views": 1}
    unfolded = count_flops(build_model("mirnet-refined", fold=1, **tiny), 32, 32)
    folded = count_flops(build_model("mirnet-refined", fold=4, **tiny), 32, 32)
    assert folded < unfolded / 2
