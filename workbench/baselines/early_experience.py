"""Baseline `early_experience` (Zhang et al. 2025, "Agent Learning via Early Experience").

Walk each training task along an expert trajectory. At every expert state, sample
`baselines.alternatives` actions from the base policy, try each in a copy of the
environment (every try is one environment step of the budget), then take the expert's
action. The answers become three kinds of examples:

- `early_experience_world` (implicit world modelling): state + action -> what the
  environment answered, less the lines the state already showed (`world_target`);
- `early_experience_reflection` (self-reflection): state -> the expert action and why it
  beats the alternative, the why written by the policy model itself (or, when its
  answer is empty or unusable, a sentence built from the two observations);
- `expert`: state -> the expert action.

Experts: the suite's `expert_action(env)` (navigation's planner) at each state, or its
`canonical_solution(task)` as a one-step trajectory (coding). A user environment may
define `expert_action()` on the environment itself.

The reflection target puts the expert action first and the explanation after it, unlike
the paper's reason-then-act order: action parsers read the first action word or code
block of an answer, and an explanation that mentions the alternative would otherwise be
read as the action.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from workbench.baselines._common import (
    finished_adapter,
    state_prompt,
    train_baseline_adapter,
    write_dataset,
)
from workbench.budget import Budget, step_budget
from workbench.context import StageContext
from workbench.distill.data import make_example
from workbench.envs.base import Environment, StepResult, Task, execute
from workbench.errors import LeafeError
from workbench.models.base import Sampling
from workbench.rollout.engine import step_workers
from workbench.storable_text import clean_text

KIND = "early_experience"
WORLD = "early_experience_world"
REFLECTION = "early_experience_reflection"
EXPERT = "expert"
SEED_OFFSET = 20_011
OBSERVATION_CHARS = 600  # how much of an observation a reflection prompt quotes
REFLECTION_TOKENS = 96
WORLD_QUESTION = "If you answer with the action below, what will the environment reply?\nAction:\n{action}"
REFLECTION_PROMPT = (
    "{state}\n\nTwo answers were tried at this point.\n"
    "Answer A:\n{alternative}\nThe environment replied to A:\n{alternative_result}\n\n"
    "Answer B:\n{expert}\nThe environment replied to B:\n{expert_result}\n\n"
    "In one or two sentences, explain why answer B is better than answer A. Do not repeat the answers."
)


@dataclass
class Line:
    """One task's expert trajectory in progress."""

    task: Task
    env: Environment
    path: list[dict]  # node-shaped dicts, root first, as build_messages reads them
    done: bool = False


@dataclass
class Tried:
    """An alternative tried at an expert state, waiting for its reflection."""

    prompt: list[dict[str, str]]
    task: str
    alternative: str
    alternative_result: StepResult
    expert: str
    expert_result: StepResult


@dataclass
class Collection:
    examples: list[dict] = field(default_factory=list)
    used: int = 0
    tokens: int = 0  # generated: alternatives and reflections
    states: int = 0
    alternatives: int = 0
    model_reflections: int = 0
    template_reflections: int = 0


def expert_action(context: StageContext, line: Line) -> str | None:
    """The expert's next action at this state, or None when there is no expert."""
    suite = context.suite
    action = suite.expert_action(line.env)
    if action is not None:
        return action
    if len(line.path) == 1:
        code = suite.canonical_solution(line.task)
        return f"```python\n{code.rstrip()}\n```" if code else None
    return None


def environment_copy(context: StageContext, line: Line) -> Environment:
    env = context.suite.new_environment()
    env.reset(line.task)
    if context.suite.supports_snapshot:
        env.restore(line.env.snapshot())
    else:  # no snapshot: the same state by replaying the expert's actions so far
        for step in line.path[1:]:
            execute(env, step["action"] or "")
    return env


def world_target(before: str, after: str) -> str:
    """What the world-modelling example teaches: the lines of the next observation that the
    state did not already show (the outcome and what changed). Lines every observation
    repeats (the mission, the list of actions) are in the prompt already; predicting them
    again costs training tokens and teaches nothing about the action. An answer that
    changed nothing keeps the whole observation."""
    seen = set(str(before).splitlines())
    new = [line for line in str(after).splitlines() if line not in seen]
    return "\n".join(new).strip() or str(after)


def world_example(prompt: list[dict[str, str]], action: str, before: str, after: str, task: str) -> dict:
    question = WORLD_QUESTION.format(action=action)
    messages = [*prompt[:-1], {"role": "user", "content": f"{prompt[-1]['content']}\n\n{question}"},
                {"role": "assistant", "content": world_target(before, after)}]
    return make_example(messages, kind=WORLD, target_start=len(messages) - 1, task=task)


def first_line(text: str) -> str:
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    return line[:200]


def template_reflection(tried: Tried) -> str:
    """The fallback explanation: the two observations side by side."""
    return (
        f"The other answer led to: {first_line(tried.alternative_result.observation) or 'no progress'} "
        f"This answer led to: {first_line(tried.expert_result.observation) or 'progress'} "
        f"(score {tried.expert_result.score:.2f} against {tried.alternative_result.score:.2f}), "
        "so it is the better step."
    )


SCAFFOLDING = ("answer a", "answer b", "replied to", "two answers were tried", "explain why")


def usable_reflection(text: str, prompt: str) -> str | None:
    """The model's explanation if it says something of its own: a few words, no code, no
    echo of the prompt's scaffolding, and mostly not copied from the prompt."""
    text = " ".join(text.split())
    words = text.lower().split()
    if len(words) < 4 or "```" in text or any(phrase in text.lower() for phrase in SCAFFOLDING):
        return None
    source = " ".join(prompt.lower().split())
    trigrams = [" ".join(words[i:i + 3]) for i in range(len(words) - 2)]
    if trigrams and sum(gram in source for gram in trigrams) / len(trigrams) > 0.5:
        return None
    return text[:400]


def reflection_prompt(tried: Tried) -> list[dict[str, str]]:
    return [{"role": "user", "content": REFLECTION_PROMPT.format(
        state=tried.prompt[-1]["content"][:OBSERVATION_CHARS * 2],
        alternative=tried.alternative[:OBSERVATION_CHARS],
        alternative_result=str(tried.alternative_result.observation)[:OBSERVATION_CHARS],
        expert=tried.expert[:OBSERVATION_CHARS],
        expert_result=str(tried.expert_result.observation)[:OBSERVATION_CHARS],
    )}]


def reflect(context: StageContext, pending: list[Tried], collection: Collection, seed: int) -> None:
    """One batched call: the policy explains each expert choice; template where it fails."""
    if not pending:
        return
    sampling = Sampling(temperature=0.0, max_new_tokens=min(REFLECTION_TOKENS, context.config.model.max_new_tokens),
                        seed=seed)
    prompts = [reflection_prompt(t) for t in pending]
    answers = context.generator().generate(prompts, 1, sampling, tags=[t.task for t in pending])
    collection.tokens += sum(samples[0].tokens for samples in answers)
    for tried, prompt, samples in zip(pending, prompts, answers, strict=True):
        reason = usable_reflection(samples[0].text, prompt[0]["content"])
        if reason is None:
            reason = template_reflection(tried)
            collection.template_reflections += 1
        else:
            collection.model_reflections += 1
        messages = [*tried.prompt, {"role": "assistant", "content": f"{tried.expert}\n\n{reason}"}]
        collection.examples.append(
            make_example(messages, kind=REFLECTION, target_start=len(messages) - 1, task=tried.task)
        )


def same_outcome(first: StepResult, second: StepResult) -> bool:
    return str(first.observation) == str(second.observation) and float(first.score) == float(second.score)


def try_actions(
    context: StageContext,
    live: list[tuple[Line, str]],
    prompts: list[list[dict[str, str]]],
    samples: list[list[Any]],
    pool: ThreadPoolExecutor,
    collection: Collection,
) -> list[Tried]:
    """Try every alternative in a copy of its state and the expert action in the line's own
    environment (all at once, in threads); add world-model and expert examples; return the
    alternatives whose outcome differs from the expert's, for reflection."""
    jobs = []  # (line index, alternative text or None for the expert, text to run, environment)
    for index, ((line, action), tries) in enumerate(zip(live, samples, strict=True)):
        for sample in tries:
            text = clean_text(sample.text)[0]
            jobs.append((index, text, text, environment_copy(context, line)))
        jobs.append((index, None, action, line.env))
    results = list(pool.map(lambda job: execute(job[3], job[2]), jobs))
    collection.used += len(jobs)
    pending: list[Tried] = []
    for index, (line, action) in enumerate(live):
        mine = [(job[1], result) for job, result in zip(jobs, results, strict=True) if job[0] == index]
        expert_result, expert_success = next(result for text, result in mine if text is None)
        prompt, name = prompts[index], line.task.name
        for text, (result, _) in mine:
            collection.examples.append(world_example(prompt, action if text is None else text,
                                                     str(line.path[-1]["observation"]), str(result.observation), name))
            if text is not None:
                collection.alternatives += 1
                if not same_outcome(result, expert_result):
                    pending.append(Tried(prompt, name, text, result, action, expert_result))
        collection.examples.append(make_example(
            [*prompt, {"role": "assistant", "content": action}], kind=EXPERT, target_start=len(prompt), task=name
        ))
        line.path = [*line.path, {"id": None, "depth": len(line.path), "action": action,
                                  "observation": str(expert_result.observation), "note_id": None}]
        line.done = bool(expert_result.done) or expert_success
        collection.states += 1
    return pending


def start_lines(context: StageContext, tasks: list[Task]) -> list[Line]:
    lines = []
    for task in tasks:
        env = context.suite.new_environment()
        observation = env.reset(task)
        root = {"id": None, "depth": 0, "action": None, "observation": observation, "note_id": None}
        lines.append(Line(task, env, [root]))
    return lines


def collect(context: StageContext, tasks: list[Task], budget: Budget) -> Collection:
    """Walk expert trajectories, pass after pass over the tasks, until the budget is spent."""
    config = context.config
    alternatives = max(0, config.baselines.alternatives)
    per_state = 1 + alternatives
    max_steps = config.env.max_steps
    collection = Collection()
    generator = context.generator()
    context.progress.start(KIND, budget.steps, f"baseline:early_experience: {len(tasks)} tasks")
    with ThreadPoolExecutor(max_workers=step_workers(context)) as pool:
        for pass_index in range(budget.steps):  # a pass spends at least one state, or ends the loop
            lines = start_lines(context, tasks)
            states_before = collection.states
            for depth in range(max_steps):
                context.check_cancelled()
                live = []
                for line in lines:
                    if line.done:
                        continue
                    action = expert_action(context, line)
                    if action is None:
                        line.done = True
                    else:
                        live.append((line, action))
                affordable = (budget.steps - collection.used) // per_state
                live = live[:affordable]
                if not live:
                    break
                prompts = [state_prompt(context, line.path) for line, _ in live]
                seed = config.explore.seed + SEED_OFFSET + 7919 * (pass_index * max_steps + depth)
                samples = generator.generate(
                    prompts, alternatives,
                    Sampling(temperature=config.explore.temperature, max_new_tokens=config.model.max_new_tokens,
                             top_p=config.explore.top_p, seed=seed),
                    tags=[line.task.name for line, _ in live],
                ) if alternatives else [[] for _ in live]
                collection.tokens += sum(sample.tokens for tries in samples for sample in tries)
                pending = try_actions(context, live, prompts, samples, pool, collection)
                reflect(context, pending, collection, seed)
                context.progress.advance(len(live) * per_state, used=collection.used,
                                         examples=len(collection.examples))
            for line in lines:
                context.suite.close_environment(line.env)
            if collection.states == states_before:
                break
    context.progress.finish()
    return collection


def run_early_experience(context: StageContext) -> dict:
    done = finished_adapter(context, KIND)
    if done:
        return done
    tasks = context.suite.load_tasks(context.config.env.tasks)
    budget = step_budget(context, len(tasks))
    collection = collect(context, tasks, budget)
    if not collection.examples:
        raise LeafeError(
            f"baseline:early_experience: no expert states were visited (env.kind "
            f"{context.config.env.kind!r} offers no expert_action or canonical_solution, "
            f"or the budget of {budget.steps} steps is below one state's {1 + context.config.baselines.alternatives})"
        )
    path, dataset_id = write_dataset(
        context, kind=KIND, name=f"early-experience-run-{context.run_id}", examples=collection.examples
    )
    counts = {kind: sum(e["kind"] == kind for e in collection.examples) for kind in (WORLD, REFLECTION, EXPERT)}
    context.say(
        f"baseline:early_experience: {collection.states} expert states, {collection.alternatives} alternatives, "
        f"{collection.used} of {budget.steps} steps; reflections by the model {collection.model_reflections}, "
        f"by template {collection.template_reflections}"
    )
    extra = {**counts, "expert_states": collection.states, "model_reflections": collection.model_reflections,
             "template_reflections": collection.template_reflections}
    summary = train_baseline_adapter(
        context, kind=KIND, dataset_path=path, dataset_id=dataset_id, budget=budget, used=collection.used,
        tokens=collection.tokens, extra=extra,
    )
    return {**summary, "env_steps_budget": budget.steps, "env_steps_used": collection.used, **counts}
