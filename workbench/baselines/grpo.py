"""Baseline `grpo`: GRPO (trl's GRPOTrainer) with a LoRA adapter, rewarded by the environment.

Each training task's first prompt is a GRPO prompt; a group of `grpo_group_size`
completions is sampled for it and each completion is scored by running it through a
fresh environment (`env.reset(task); env.step(text).score`). Every completion scored is
one environment step. By default (`baselines.grpo_steps = 0`) the optimiser steps are
derived from the budget, so grpo spends it like every other method: budget //
completions-per-step in single-turn mode; in multi-turn mode, where an episode may end
before `max_steps`, training goes on until the next step might overrun the budget. A set
`grpo_steps` caps them (and a warning says when the budget is then left unspent). The
reward function refuses to step past the budget.

Two modes (`baselines.grpo_multi_turn`):

- single-turn (the default): the reward is the score of the first action, one
  environment step per completion. Cheap enough for a CPU, and the first action carries
  most of the signal in our tasks (a coding task's first submission, the first moves of
  a navigation task).
- multi-turn: each completion is a whole episode played by the model being trained
  (`workbench.baselines._grpo_rollout`), through trl's experimental `rollout_func`,
  with `env_mask` hiding the environment's feedback turns from the loss; the reward is
  the episode's last score and every turn is an environment step.

trl 1.16 also offers `environment_factory`, where an environment's methods become tools
the model calls; it needs a chat template with tool calling, which SmolLM2-135M-Instruct
lacks, so it is not used.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from workbench.baselines._common import (
    adapter_name,
    finished_adapter,
    state_prompt,
    write_dataset,
)
from workbench.baselines._grpo_rollout import EpisodeRollout, environment_reward
from workbench.budget import Budget, accounting, step_budget
from workbench.context import StageContext
from workbench.distill.adapters import record_adapter
from workbench.distill.data import make_example
from workbench.distill.output import adapter_output, write_card
from workbench.distill.stage import adapter_summary
from workbench.envs.base import Task, execute
from workbench.errors import Cancelled, LeafeError
from workbench.seeds import run_label
from workbench.storable_text import clean_text

KIND = "grpo"
MAX_COMPLETION_TOKENS = 128  # a CPU-sized cap on each sampled answer


@dataclasses.dataclass
class Scorer:
    """The reward function: each completion through a fresh environment, within budget."""

    context: StageContext
    tasks: dict[str, Task]
    budget: int
    used: int = 0
    tokens: int = 0  # generated: the completions' tokens
    rewards: list[float] = dataclasses.field(default_factory=list)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    __name__: str = "environment_score"  # trl logs each reward function under its name

    def __call__(self, prompts: list, completions: list, task: list[str], **kwargs: Any) -> list[float]:
        scores = []
        self.tokens += sum(len(ids) for ids in kwargs.get("completion_ids") or [])
        for completion, name in zip(completions, task, strict=True):
            text = completion[0]["content"] if isinstance(completion, list) else str(completion)
            with self.lock:
                if self.used >= self.budget:
                    scores.append(0.0)  # never reached: the step count is planned to fit
                    continue
                self.used += 1
            env = self.context.suite.new_environment()
            env.reset(self.tasks[name])
            result, _ = execute(env, clean_text(text)[0])
            self.context.suite.close_environment(env)
            scores.append(float(result.score))
        self.rewards.extend(scores)
        return scores


@dataclasses.dataclass
class BudgetGuard:
    """Ends training once the next optimiser step might spend more than the budget left."""

    spender: Scorer | EpisodeRollout
    budget: int
    worst_step: int  # environment steps one optimiser step may take at most

    def exhausted(self) -> bool:
        return self.budget - self.spender.used < self.worst_step


def prompt_examples(context: StageContext, tasks: list[Task]) -> list[dict]:
    """Each task's first prompt, as the policy sees it (recorded as the GRPO dataset)."""
    examples = []
    for task in tasks:
        observation = context.suite.new_environment().reset(task)
        root = {"id": None, "depth": 0, "action": None, "observation": observation, "note_id": None}
        messages = state_prompt(context, [root])
        examples.append(make_example(messages, kind="grpo_prompt", target_start=len(messages), task=task.name))
    return examples


def steps_per_completion(context: StageContext) -> int:
    """Environment steps one completion may take: a whole episode when multi-turn."""
    return context.config.env.max_steps if context.config.baselines.grpo_multi_turn else 1


def plan_steps(context: StageContext, budget: Budget, completions_per_step: int, n_tasks: int) -> int:
    """Optimiser steps that surely fit in the budget, each episode taken at its longest
    (and, with baselines.rollouts_per_task, no more completions per task than that)."""
    settings = context.config.baselines
    worst = completions_per_step * steps_per_completion(context)
    # Derived: as many steps as the budget holds. Multi-turn plans for the shortest
    # episodes (one step each) and stops early once the next step might overrun.
    derived = budget.steps // (completions_per_step if settings.grpo_multi_turn else worst)
    steps = min(settings.grpo_steps, derived) if settings.grpo_steps else derived
    if settings.rollouts_per_task:
        steps = min(steps, max(1, settings.rollouts_per_task * n_tasks // completions_per_step))
    if steps < 1 or budget.steps < worst:
        raise LeafeError(
            f"baseline:grpo: one step may take {worst} environment steps, "
            f"more than the budget of {budget.steps}; lower baselines.grpo_group_size"
        )
    return steps


def make_callback(
    context: StageContext, curve: list[dict[str, float]], total: int, spend: BudgetGuard | None = None,
):
    from transformers import TrainerCallback

    train_tokens = [0]

    class Report(TrainerCallback):
        """Loss and reward to the progress bar and the loss curve; stop on cancel."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs:
                return
            point = {"step": state.global_step, "epoch": float(logs.get("epoch", state.epoch or 0.0)),
                     "loss": float(logs["loss"]), "learning_rate": float(logs.get("learning_rate", 0.0)),
                     "reward": float(logs.get("reward", 0.0))}
            if curve and curve[-1]["step"] == point["step"]:
                return
            curve.append(point)
            if "num_tokens" in logs:  # prompt and completion tokens through the model so far
                train_tokens[0] = int(logs["num_tokens"])
            context.progress.advance(1, loss=point["loss"], reward=point["reward"])

        def on_step_end(self, args, state, control, **kwargs):
            if context.cancel.is_set() or (spend is not None and spend.exhausted()):
                control.should_training_stop = True

    context.progress.start(KIND, total, f"baseline:grpo: {total} steps")
    report = Report()
    report.train_tokens = train_tokens
    return report


def train_grpo(
    context: StageContext, examples: list[dict], scorer: Scorer | EpisodeRollout, steps: int,
    staging: Path, curve: list[dict[str, float]], guard: BudgetGuard | None = None,
) -> dict[str, Any]:
    """Run GRPOTrainer with LoRA; save the adapter into `staging`; return what it measured."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from workbench.distill.training import load_for_training, make_accelerator

    config = context.config
    settings = config.distill
    group = config.baselines.grpo_group_size
    accelerator = make_accelerator(config.model)
    model, tokenizer, _ = load_for_training(config.model, accelerator)
    tokenizer.padding_side = "left"
    lora = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                      target_modules=list(settings.target_modules), task_type="CAUSAL_LM")
    # output_dir is the adapter's staging folder: TensorBoard events land in <adapter>/runs.
    arguments = GRPOConfig(
        output_dir=str(staging),
        report_to=["tensorboard"] if settings.report_to == "tensorboard" else "none",
        max_steps=steps,
        per_device_train_batch_size=group,
        num_generations=group,
        gradient_accumulation_steps=1,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="linear",
        # Per answer; a multi-turn rollout applies it to each turn itself.
        max_completion_length=min(config.model.max_new_tokens, MAX_COMPLETION_TOKENS),
        temperature=max(config.explore.temperature, 0.1),  # GRPO needs diverse groups
        top_p=config.explore.top_p,
        logging_steps=1,
        save_strategy="no",
        gradient_checkpointing=False,
        bf16=False,
        use_cpu=accelerator.device.type == "cpu",
        seed=settings.seed,
        disable_dropout=True,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    multi_turn = isinstance(scorer, EpisodeRollout)
    report = make_callback(context, curve, steps, guard)
    with warnings.catch_warnings():
        # rollout_func is marked experimental in trl 1.16; the module docstring says why we use it.
        warnings.filterwarnings("ignore", message=".*rollout_func.*experimental")
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=environment_reward if multi_turn else scorer,
            rollout_func=scorer if multi_turn else None,
            args=arguments,
            train_dataset=Dataset.from_list([{"prompt": e["messages"], "task": e["task"]} for e in examples]),
            processing_class=tokenizer,
            peft_config=lora,
            callbacks=[report],
        )
    # Trainer prints every log line to stdout when its tqdm bars are off; stdout belongs to
    # `--json`, and the progress reporter already shows loss and reward.
    trainer.remove_callback(PrinterCallback)
    started = time.monotonic()
    output = trainer.train()
    seconds = time.monotonic() - started
    context.progress.finish()
    if context.cancel.is_set():
        raise Cancelled()
    trainer.save_model(str(staging))
    return {"train_seconds": seconds, "train_loss": float(output.training_loss), "steps": output.global_step,
            "train_tokens": report.train_tokens[0]}


def run_grpo(context: StageContext) -> dict:
    from workbench.files import atomic_directory

    done = finished_adapter(context, KIND)
    if done:
        return done
    config = context.config
    if config.model.backend not in ("hf", "vllm"):
        raise LeafeError(f"baseline:grpo: [model] backend {config.model.backend!r} has no local weights to train")
    if config.baselines.grpo_group_size < 2:
        raise LeafeError("baseline:grpo: grpo_group_size must be at least 2 (advantages compare a group)")
    tasks = context.suite.load_tasks(config.env.tasks)
    budget = step_budget(context, len(tasks))
    steps = plan_steps(context, budget, config.baselines.grpo_group_size, len(tasks))
    examples = prompt_examples(context, tasks)
    dataset_path, dataset_id = write_dataset(context, kind=KIND, name=f"grpo-run-{context.run_id}", examples=examples)
    name = adapter_name(KIND, run_label(context))
    output = adapter_output(context.db, name)
    completion_tokens = min(config.model.max_new_tokens, MAX_COMPLETION_TOKENS)
    if config.baselines.grpo_multi_turn:
        scorer: Scorer | EpisodeRollout = EpisodeRollout(
            context, EpisodeRollout.index_tasks(examples, tasks),
            budget=budget.steps, max_new_tokens=completion_tokens,
            temperature=max(config.explore.temperature, 0.1), top_p=config.explore.top_p,
        )
    else:
        scorer = Scorer(context, {task.name: task for task in tasks}, budget.steps)
    curve: list[dict[str, float]] = []
    started = time.monotonic()
    with atomic_directory(output) as staging:
        guard = BudgetGuard(scorer, budget.steps, config.baselines.grpo_group_size * steps_per_completion(context))
        measured = train_grpo(context, examples, scorer, steps, staging, curve, guard)
        write_card(staging, context.db, name=name, kind=KIND, dataset_path=dataset_path, settings=config.distill)
    group_rewards = [point["reward"] for point in curve]
    first, last = group_rewards[:1], group_rewards[-1:]
    metrics = {
        "final_loss": curve[-1]["loss"] if curve else measured["train_loss"],
        "first_loss": curve[0]["loss"] if curve else measured["train_loss"],
        "steps": measured["steps"],
        "completions": measured["steps"] * config.baselines.grpo_group_size,
        "mean_reward": sum(group_rewards) / max(1, len(group_rewards)),
        "first_step_reward": sum(first) / max(1, len(first)),
        "last_step_reward": sum(last) / max(1, len(last)),
        "wall_time": time.monotonic() - started,
        "train_seconds": measured["train_seconds"],
        "n_examples": len(examples),
        "multi_turn": config.baselines.grpo_multi_turn,
        "train_examples": measured["steps"] * config.baselines.grpo_group_size,  # scored completions
        "train_tokens": measured["train_tokens"],
        **accounting(context, "baseline:grpo", used=scorer.used, budget=budget, tokens=scorer.tokens),
    }
    adapter_id = record_adapter(
        context.db, name=name, path=output, model=config.model, dataset_path=dataset_path,
        dataset_id=dataset_id, kind=KIND, run_id=context.run_id, metrics=metrics, examples=examples,
        settings=config.distill, curve=curve,
        extra_lineage={"grpo": {"group_size": config.baselines.grpo_group_size, "steps": steps,
                                "multi_turn": config.baselines.grpo_multi_turn,
                                "max_completion_length": completion_tokens}},
    )
    context.say(
        f"baseline:grpo: {measured['steps']} steps, {scorer.used} of {budget.steps} environment steps, "
        f"mean reward {metrics['first_step_reward']:.2f} (first step) -> {metrics['last_step_reward']:.2f} (last)"
    )
    return {**adapter_summary(context.db, adapter_id), "mean_reward": metrics["mean_reward"]}
