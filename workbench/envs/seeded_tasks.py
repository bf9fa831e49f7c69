"""Tasks that are reset seeds of one environment id (navigation's MiniGrid, gymnasium):
`env.tasks` as a count (seeds 0 .. n-1) or a list of seeds, each `7`, `"7"` or `"ID/7"`."""

from __future__ import annotations

from workbench.envs.base import Task
from workbench.errors import EnvironmentSetupError


def seeded_tasks(kind: str, env_id: str, selection: object) -> list[Task]:
    """One task per seed, named `ID/SEED`; `kind` names the suite in a refusal
    (`navigation: env.tasks must be at least 1, got 0`)."""
    if isinstance(selection, bool) or not isinstance(selection, int | list):
        raise EnvironmentSetupError(f"{kind}: env.tasks must be a count or a list of seeds, got {selection!r}")
    if isinstance(selection, int):
        if selection < 1:
            raise EnvironmentSetupError(f"{kind}: env.tasks must be at least 1, got {selection}")
        seeds = list(range(selection))
    else:
        seeds = [seed_of(kind, env_id, item) for item in selection]
    return [Task(f"{env_id}/{seed}", {"env_id": env_id, "seed": seed}) for seed in seeds]


def seed_of(kind: str, env_id: str, item: str | int) -> int:
    """A reset seed from `7`, `"7"` or `"ID/7"`; an id other than this suite's is refused,
    so a task list written for another suite does not run here by accident."""
    text = str(item).strip()
    if isinstance(item, str) and "/" in text:
        named_id, _, text = text.rpartition("/")
        if named_id != env_id:
            raise EnvironmentSetupError(f"{kind}: task {item!r} is not from the suite {env_id!r}")
    if isinstance(item, bool) or not text.isdigit():
        raise EnvironmentSetupError(
            f"{kind}: task {item!r} is not a seed (a whole number 0 or more, or {env_id}/SEED)"
        )
    return int(text)
