"""Weights kept fp16 and upcast per layer (generate/upcast.py): a layer runs the weights it holds now."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from editanything.generate.upcast import is_upcast_per_layer, upcast_per_layer  # noqa: E402


def _layer():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3)).to(torch.float16)


def test_a_layer_computes_in_fp32_from_its_fp16_weights_and_keeps_them_fp16():
    module = upcast_per_layer(_layer(), "unet")
    weight = module[0].weight.data
    x = torch.randn(2, 4)
    expected = x @ weight.float().T + module[0].bias.data.float()
    assert torch.equal(module(x), expected)
    assert is_upcast_per_layer(module[0]) and module[0].weight.dtype == torch.float16
    assert module[0].weight.data.data_ptr() == weight.data_ptr()  # the same fp16 tensor, no copy kept


@pytest.mark.parametrize("change", ["replaced", "edited in place", "cast to fp32"])
def test_weights_changed_after_hooking_are_the_ones_that_run(change):
    """A cast or an edit after loading (a pipeline's `.to()`, a test poisoning a layer) must not be undone by
    weights the hook saw earlier."""
    module = upcast_per_layer(_layer(), "unet")
    layer = module[0]
    if change == "replaced":
        layer.weight.data = torch.zeros_like(layer.weight.data)
    elif change == "edited in place":
        layer.weight.data.zero_()
    else:
        module.to(torch.float32)
        layer.weight.data.zero_()
    x = torch.randn(2, 4)
    assert torch.equal(module(x), layer.bias.data.float().expand(2, 3))
