"""Multi-turn GRPO rollouts: a `rollout_func` for trl's GRPOTrainer that plays whole episodes.

Each prompt (a task's first turn, repeated `num_generations` times by trl's sampler) is
played to the end in lock-step with the other rows of the batch: the policy's answer is
sampled from the model being trained, run through the environment, and the feedback
joins the conversation as the next user turn, up to `max_steps` turns. The completion
trl trains on is every token after the prompt; the model's own tokens have `env_mask` 1,
the environment's turns (and the chat template's markup between turns) 0, so the loss
and the advantage only touch what the policy wrote. The reward is the episode's last
score, handed to the reward function as the `env_reward` column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.agent import clean_text, execute, safe_format
from workbench.context import StageContext
from workbench.envs.base import Task
from workbench.errors import LeafeError


@dataclass
class Row:
    task: Task
    env: Any
    messages: list[dict[str, str]]
    prompt_ids: list[int]
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    reward: float = 0.0
    done: bool = False


class EpisodeRollout:
    """The rollout_func; `budget` counts environment steps across all calls."""

    def __init__(self, context: StageContext, tasks_by_prompt: dict[str, list[Task]], *, budget: int,
                 max_new_tokens: int, temperature: float, top_p: float) -> None:
        self.context = context
        self.tasks_by_prompt = tasks_by_prompt
        self.calls = 0
        self.budget = budget
        self.used = 0
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p

    @staticmethod
    def prompt_key(messages: list[dict[str, str]]) -> str:
        return messages[-1]["content"]

    @classmethod
    def index_tasks(cls, examples: list[dict], tasks: list[Task]) -> dict[str, list[Task]]:
        """Each first prompt's tasks (usually one)."""
        index: dict[str, list[Task]] = {}
        for example, task in zip(examples, tasks, strict=True):
            index.setdefault(cls.prompt_key(example["messages"]), []).append(task)
        return index

    def render(self, tokenizer: Any, messages: list[dict[str, str]], *, generation_prompt: bool) -> str:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)

    def encode(self, tokenizer: Any, text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    def __call__(self, prompts: list[list[dict[str, str]]], trainer: Any) -> dict[str, Any]:
        tokenizer = trainer.processing_class
        model = trainer.accelerator.unwrap_model(trainer.model)
        rows = []
        self.calls += 1
        for prompt in prompts:
            # trl hands over prompts only. Tasks whose first prompt is the same text look
            # alike to the policy; they take turns across calls, a group keeps one task.
            options = self.tasks_by_prompt[self.prompt_key(prompt)]
            task = options[self.calls % len(options)]
            env = self.context.suite.new_environment()
            env.reset(task)
            ids = self.encode(tokenizer, self.render(tokenizer, prompt, generation_prompt=True))
            rows.append(Row(task, env, list(prompt), ids))
        max_steps = self.context.config.env.max_steps
        for turn in range(max_steps):
            live = [row for row in rows if not row.done]
            if not live:
                break
            for row, new_ids in zip(live, self.sample(model, tokenizer, live), strict=True):
                self.play(row, new_ids, tokenizer, turn, max_steps)
        for row in rows:
            self.context.suite.close_environment(row.env)
        return {
            "prompt_ids": [row.prompt_ids for row in rows],
            "completion_ids": [row.completion_ids for row in rows],
            "logprobs": None,
            "env_mask": [row.env_mask for row in rows],
            "env_reward": [row.reward for row in rows],
        }

    def sample(self, model: Any, tokenizer: Any, live: list[Row]) -> list[list[int]]:
        """One batched generate over every live row's conversation so far."""
        import torch

        sequences = [row.prompt_ids + row.completion_ids for row in live]
        width = max(len(ids) for ids in sequences)
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in sequences], device=model.device)
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in sequences],
                                 device=model.device)
        with torch.no_grad():
            output = model.generate(
                input_ids=input_ids, attention_mask=attention, max_new_tokens=self.max_new_tokens,
                do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=None, pad_token_id=pad,
            )
        eos = tokenizer.eos_token_id
        # Everything after the first end-of-turn token is padding.
        return [row[: row.index(eos) + 1] if eos in row else row for row in output[:, width:].tolist()]

    def play(self, row: Row, new_ids: list[int], tokenizer: Any, turn: int, max_steps: int) -> None:
        """Step the environment with the answer; extend the completion and its mask."""
        eos = tokenizer.eos_token_id
        ended = bool(new_ids) and new_ids[-1] == eos
        row.completion_ids += new_ids
        row.env_mask += [1] * len(new_ids)
        if not ended:  # out of tokens: close the turn as the template would
            row.completion_ids.append(eos)
            row.env_mask.append(0)
        text = clean_text(tokenizer.decode(new_ids, skip_special_tokens=True))[0]
        if self.used >= self.budget:
            row.done = True  # never reached: the step count is planned to fit the budget
            return
        self.used += 1
        result, success = execute(row.env, text)
        row.reward = float(result.score)
        row.done = bool(result.done) or success or turn + 1 >= max_steps
        if row.done:
            return
        prompts = self.context.config.prompts
        steps_left = max(0, max_steps - (turn + 1))
        through = self.render(tokenizer, [*row.messages, {"role": "assistant", "content": text}],
                              generation_prompt=False).rstrip()
        row.messages += [
            {"role": "assistant", "content": text},
            {"role": "user", "content": safe_format(prompts.next_turn, observation=result.observation,
                                                    steps_left=steps_left)},
        ]
        after = self.render(tokenizer, row.messages, generation_prompt=True)
        if not after.startswith(through):
            raise LeafeError(
                "baseline:grpo: the model's chat template does not render a conversation as a prefix "
                "of its continuation, so multi-turn episodes cannot be joined; use grpo_multi_turn = false"
            )
        # The template's text between the end of the answer and the next answer: the
        # feedback turn. It is context for the next turn, never a training target.
        bridge = self.encode(tokenizer, after[len(through):])
        row.completion_ids += bridge
        row.env_mask += [0] * len(bridge)


def environment_reward(prompts: list, completions: list, env_reward: list[float], **kwargs: Any) -> list[float]:
    """The reward trl reads: the episode's last score, computed by the rollout."""
    return [float(value) for value in env_reward]
