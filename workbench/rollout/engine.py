"""The lock-step batched rollout engine that exploration, backtracking and evaluation share.

Every live walker advances together, one batched generate call per step (per policy, when
walkers of several policies share the batch); the environments step in a thread pool; each
step's nodes land in one transaction, so a killed run loses at most the step in flight.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from store import episodes
from store.db import transaction
from store.records import Step
from workbench.context import StageContext, Stopwatch
from workbench.envs.base import execute
from workbench.models.base import ChatPrompt, Completion, Generator, Sampling
from workbench.prompts import build_messages, fit_context
from workbench.rollout.record import store_step
from workbench.rollout.walkers import Walker, note_texts
from workbench.storable_text import clean_text


def step_workers(context: StageContext) -> int:
    workers = context.config.env.sandbox.workers or os.cpu_count() or 2
    return max(1, workers)


StepHook = Callable[[Walker, Step], None]


def roll_out(
    context: StageContext,
    walkers: list[Walker],
    generator: Generator,
    sampling: Sampling,
    *,
    max_steps: int,
    stopwatch: Stopwatch | None = None,
    on_step: StepHook | None = None,
    on_finish: Callable[[Walker], None] | None = None,
) -> None:
    """Advance every walker in lock-step until each is done or out of budget."""
    notes_text = note_texts(context, walkers)
    live = [w for w in walkers if not w.done and w.depth < max_steps]
    for walker in walkers:
        if walker not in live and not walker.done:
            walker.done = True
            if on_finish:
                on_finish(walker)
    step = 0
    with ThreadPoolExecutor(max_workers=step_workers(context)) as pool:
        while live:
            context.check_cancelled()
            prompts, dropped = [], []
            for walker in live:
                pending = walker.pending_note[1] if walker.pending_note else None
                messages = build_messages(
                    context.config.prompts, walker.path, max_steps, notes_text, pending
                )
                messages, gone = fit_context(messages, generator, sampling.max_new_tokens)
                prompts.append(messages)
                dropped.append(gone)
            seed = None if sampling.seed is None else sampling.seed + 7919 * step
            completions = generate_step(live, prompts, generator, dataclasses.replace(sampling, seed=seed))
            actions = [clean_text(samples[0].text) for samples in completions]
            results = list(pool.map(lambda pair: execute(pair[0].env, pair[1][0]), zip(live, actions, strict=True)))
            with transaction(context.db):
                for walker, (text, cleaning), samples, (result, success), gone in zip(
                    live, actions, completions, results, dropped, strict=True
                ):
                    feedback = dict(result.feedback) | cleaning
                    if gone:
                        feedback["history_turns_dropped"] = gone
                    record = store_step(
                        context, walker, text, result, feedback, success,
                        tokens=samples[0].tokens, truncated=gone, max_steps=max_steps,
                    )
                    if stopwatch:
                        stopwatch.add_tokens(samples[0].tokens)
                    if on_step:
                        on_step(walker, record)
                    if walker.done and walker.branch_depth == 0:
                        episodes.finish(context.db, walker.episode_id)
            for walker in live:
                context.progress.event("node", node_id=walker.node_id, episode_id=walker.episode_id)
                if walker.done and on_finish:
                    on_finish(walker)
            context.progress.advance(len(live), live=sum(not w.done for w in live))
            live = [w for w in live if not w.done]
            step += 1
    if stopwatch:
        stopwatch.flush()


def step_seed(episode_seed: int, depth: int) -> int:
    """The seed of an episode's action after `depth` steps: a stable mix of both (a resumed
    or differently batched episode draws the same)."""
    digest = hashlib.blake2b(f"{episode_seed}:{depth}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def generate_step(
    live: Sequence[Walker], prompts: Sequence[ChatPrompt], generator: Generator, sampling: Sampling
) -> list[list[Completion]]:
    """One action for each live walker: one generate call per policy among them (walkers
    with a generator of their own), each walker seeded by its own seed where it has one."""
    groups: dict[int, list[int]] = {}
    policies: dict[int, Generator] = {}
    for index, walker in enumerate(live):
        own = walker.generator or generator
        groups.setdefault(id(own), []).append(index)
        policies[id(own)] = own
    completions: list[list[Completion]] = [[] for _ in live]
    for key, indices in groups.items():
        rows = [live[i] for i in indices]
        seeded = sampling
        if all(w.seed is not None for w in rows):
            seeded = dataclasses.replace(sampling, row_seeds=tuple(step_seed(w.seed, w.depth) for w in rows))  # type: ignore[arg-type]
        answers = policies[key].generate(
            [prompts[i] for i in indices], 1, seeded, tags=[w.task.name for w in rows]
        )
        for index, samples in zip(indices, answers, strict=True):
            completions[index] = samples
    return completions
