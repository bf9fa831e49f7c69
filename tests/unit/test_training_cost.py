"""Training spends its time on the data: batches of similar length (little padding), and
Early Experience's world-modelling targets hold the next observation's news, not the lines
every observation repeats."""

from __future__ import annotations

import random

from workbench.baselines.early_experience import world_example, world_target
from workbench.config import DistillConfig
from workbench.distill.data import LengthGroupedBatches


def padded_tokens(batches: list[list[int]], lengths: list[int]) -> int:
    return sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)


def test_length_grouped_batches_pad_far_less_than_shuffled_ones_and_cover_every_example():
    rng = random.Random(0)
    lengths = [rng.randint(40, 900) for _ in range(256)]
    grouped = LengthGroupedBatches(lengths, batch_size=8, seed=1).batches(0)
    plain = LengthGroupedBatches(lengths, batch_size=8, seed=1, grouped=False).batches(0)
    for batches in (grouped, plain):
        assert sorted(i for batch in batches for i in batch) == list(range(256))
    real = sum(lengths)
    # Shuffled batches of 40..900 tokens spend most of their compute on padding.
    assert padded_tokens(plain, lengths) > 1.5 * real
    assert padded_tokens(grouped, lengths) < 1.1 * real


def test_grouping_is_on_by_default_and_can_be_turned_off():
    assert DistillConfig().group_by_length is True
    assert DistillConfig(group_by_length=False).group_by_length is False


BEFORE = (
    "Mission: get to the green goal square\nYou are at row 2, column 1, facing west. In front of you: a wall.\n"
    "The goal is 1 to your left and 2 behind you, 3 cells away.\n"
    "Actions: left, right (turn in place), forward (move one cell)."
)


def test_a_world_target_is_what_the_action_changed():
    after = (
        "Turned left. Distance to goal: 3.\nMission: get to the green goal square\n"
        "You are at row 2, column 1, facing south. In front of you: open floor.\n"
        "The goal is 1 forward and 2 to your left, 3 cells away.\n"
        "Actions: left, right (turn in place), forward (move one cell)."
    )
    assert world_target(BEFORE, after) == (
        "Turned left. Distance to goal: 3.\n"
        "You are at row 2, column 1, facing south. In front of you: open floor.\n"
        "The goal is 1 forward and 2 to your left, 3 cells away."
    )
    blocked = "Blocked by a wall. Distance to goal: 3.\n" + BEFORE
    assert world_target(BEFORE, blocked) == "Blocked by a wall. Distance to goal: 3."
    # An answer that changed nothing at all is still taught as the whole reply.
    assert world_target(BEFORE, BEFORE) == BEFORE


def test_a_world_example_asks_about_the_action_and_answers_with_the_news():
    prompt = [{"role": "system", "content": "Navigate."}, {"role": "user", "content": BEFORE}]
    example = world_example(prompt, "forward", BEFORE, "Blocked by a wall. Distance to goal: 3.\n" + BEFORE, "7")
    assert example["messages"][-1] == {"role": "assistant", "content": "Blocked by a wall. Distance to goal: 3."}
    assert "forward" in example["messages"][-2]["content"] and BEFORE in example["messages"][-2]["content"]
    assert example["target_start"] == len(example["messages"]) - 1
