"""`distill.dropout_masks = "integer"`: LoRA's input dropout drawn from 31-bit integers,
the same inverted Bernoulli(p) dropout as torch's, at a fraction of its cost on a CPU."""

from __future__ import annotations

import pytest

from tests.fixtures.tiny_model import save_tiny_llama
from tests.fixtures.training import trained_both_ways
from workbench.config import DistillConfig


@pytest.mark.parametrize("p", [0.05, 0.3])
def test_drops_a_p_share_of_elements_and_scales_the_rest_as_torch_dropout_does(p):
    import torch

    from workbench.distill.dropout import IntegerMaskDropout

    torch.manual_seed(0)
    x = torch.rand(1000, 1000) + 0.5  # no zeros of its own
    out = IntegerMaskDropout(p).train()(x)
    dropped = out == 0
    # 1e6 Bernoulli draws: the share is within 5 standard deviations of p.
    sd = (p * (1 - p) / x.numel()) ** 0.5
    assert abs(float(dropped.float().mean()) - p) < 5 * sd
    assert torch.allclose(out[~dropped], x[~dropped] / (1 - p))
    # Same scaling as torch's own dropout on the elements it keeps.
    reference = torch.nn.functional.dropout(x, p, training=True)
    kept = reference != 0
    assert torch.allclose(reference[kept], x[kept] / (1 - p))


def test_evaluation_mode_and_zero_probability_leave_the_input_alone_and_gradients_follow_the_mask():
    import torch

    from workbench.distill.dropout import IntegerMaskDropout

    x = torch.rand(64, 32) + 0.5
    assert torch.equal(IntegerMaskDropout(0.3).eval()(x), x)
    assert torch.equal(IntegerMaskDropout(0.0).train()(x), x)
    leaf = x.clone().requires_grad_(True)
    out = IntegerMaskDropout(0.3).train()(leaf)
    out.sum().backward()
    assert torch.allclose(leaf.grad, (out != 0).float() / 0.7)
    with pytest.raises(ValueError, match="below 1"):
        IntegerMaskDropout(1.0)


def test_a_seed_draws_the_same_masks_and_another_seed_other_ones():
    import torch

    from workbench.distill.dropout import IntegerMaskDropout

    x = torch.ones(200, 200)
    masks = []
    for seed in (7, 7, 8):
        torch.manual_seed(seed)
        masks.append(IntegerMaskDropout(0.2).train()(x) == 0)
    assert torch.equal(masks[0], masks[1])
    assert not torch.equal(masks[0], masks[2])


def test_every_adapted_layer_of_a_trained_adapter_drops_with_integer_masks_unless_torch_is_asked_for(tmp_path):
    import torch

    from workbench.distill.dropout import IntegerMaskDropout
    from workbench.distill.training import make_trainable

    base = save_tiny_llama(tmp_path / "tiny")

    def dropouts(masks: str) -> list[type]:
        from transformers import AutoModelForCausalLM

        model = make_trainable(AutoModelForCausalLM.from_pretrained(base),
                               DistillConfig(lora_dropout=0.1, dropout_masks=masks))
        return [type(d) for m in model.modules() if isinstance(getattr(m, "lora_dropout", None), torch.nn.ModuleDict)
                for d in m.lora_dropout.values()]

    integer, plain = dropouts("integer"), dropouts("torch")
    assert len(integer) == len(plain) == len(DistillConfig().target_modules)  # one layer, 7 adapted modules
    assert set(integer) == {IntegerMaskDropout}
    assert set(plain) == {torch.nn.Dropout}


def test_training_with_integer_masks_learns_the_data_as_torch_masks_do(tmp_path):
    # Batches as the test was calibrated on (one example a row): on six examples an epoch's
    # mean loss follows which examples share a batch more than it follows the masks.
    settings = DistillConfig(epochs=4, batch_size=4, max_length=256, lora_dropout=0.1, learning_rate=1e-2,
                             share_prefixes=False)
    integer, plain = trained_both_ways(tmp_path, "float32", settings, dropout_masks="torch")
    # Both lower the loss, by about as much: the masks differ, the dropout does not.
    assert integer.epoch_losses[-1] < integer.epoch_losses[0]
    assert plain.epoch_losses[-1] < plain.epoch_losses[0]
    assert integer.epoch_losses[-1] == pytest.approx(plain.epoch_losses[-1], rel=0.1)
