"""LoRA's input dropout, with its masks drawn as integers.

peft drops each adapted layer's input with `torch.nn.Dropout`, whose CPU kernel
(`bernoulli_`) draws a double-precision uniform for every element. On the embedded model
with 7 adapted layers in each of 30 blocks that was 15% of a training step (README,
"Distillation against trl"): more than the LoRA products it feeds. The same Bernoulli(p)
mask comes from 31-bit uniform integers at about a third of the cost: an element is
dropped when its integer is below round(p * 2^31), so the drop probability is p to within
2^-32, and kept elements are scaled by 1 / (1 - p) as torch's dropout scales them.

Masks still come from torch's default generator, so a seeded run draws the same masks
every time; they are not the masks `nn.Dropout` would have drawn from that seed.
"""

from __future__ import annotations

from typing import Any

import torch

INTEGER_RANGE = 2**31  # random_() on int32 draws uniformly from [0, 2^31)


class IntegerMaskDropout(torch.nn.Module):
    """Inverted dropout with drop probability `p`, masks drawn as 31-bit integers."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be at least 0 and below 1, got {p}")
        self.p = p
        self.threshold = round(p * INTEGER_RANGE)
        self.scale = 1.0 / (1.0 - p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        draws = torch.empty(x.shape, dtype=torch.int32, device=x.device).random_()
        # torch.where keeps only the boolean mask for backward, as nn.Dropout does.
        return torch.where(draws >= self.threshold, x * self.scale, 0)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def use_integer_masks(model: Any) -> int:
    """Swap every LoRA layer's `nn.Dropout` for `IntegerMaskDropout` with the same p; how
    many were swapped. Layers without dropout (peft's `nn.Identity` at p = 0) are left."""
    swapped = 0
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if not isinstance(dropouts, torch.nn.ModuleDict):
            continue
        for name, dropout in list(dropouts.items()):
            if isinstance(dropout, torch.nn.Dropout):
                dropouts[name] = IntegerMaskDropout(dropout.p)
                swapped += 1
    return swapped
