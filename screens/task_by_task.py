"""Two policies of a run compared task by task: each task's c/n under the reference (base)
and the policy (an adapter), marked fixed / broken / unchanged, sortable; Enter opens the
task's evaluation episodes under both policies side by side."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Label, Static

from screens.base import WorkbenchScreen
from screens.plain_text import plain_line, shortened
from screens.store_problems import shows_store_problems
from store import evaluations as stored_evaluations
from workbench.task_changes import (
    BROKEN,
    FIXED,
    SORT_KEYS,
    TaskChange,
    compare_tasks,
    counts_text,
    sort_changes,
    tally,
)

MARK_STYLE = {FIXED: "bold green", BROKEN: "bold red", "unchanged": "dim"}


def default_pair(policies: list[str]) -> tuple[str, str]:
    """The reference (base, when evaluated) and the policy compared with it (the newest other)."""
    reference = "base" if "base" in policies else policies[0]
    others = [policy for policy in policies if policy != reference]
    return reference, others[-1]


class TaskByTaskScreen(WorkbenchScreen):
    """One row per task: c/n under each policy, the change in success rate and its mark."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "sort", "Sort", id="tasks.sort", tooltip="Order by change, task name or gain, in turn"),
        Binding("c", "next_policy", "Other policy", id="tasks.next_policy",
                tooltip="Compare the next evaluated policy with the reference"),
        Binding("enter", "open_task", "Episodes", id="tasks.open", tooltip="The task's episodes side by side"),
    ]
    AUTO_FOCUS = "#task-table"
    screen_title = "Task by task"

    def __init__(self, run_id: int, policies: list[str]) -> None:
        super().__init__(run_id)
        self.policies = policies
        self.reference, self.policy = default_pair(policies)
        self.sort_key = SORT_KEYS[0]
        self.changes: list[TaskChange] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="task-info")
        yield DataTable(id="task-table", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.reload()

    @shows_store_problems
    def reload(self) -> None:
        self.changes = sort_changes(
            compare_tasks(stored_evaluations.task_results(self.db, self.run_id, self.reference),
                          stored_evaluations.task_results(self.db, self.run_id, self.policy)),
            self.sort_key,
        )
        table = self.query_one("#task-table", DataTable)
        table.clear(columns=True)
        table.add_column("task", key="task")
        table.add_column(shortened(self.reference, 28), key="reference")
        table.add_column(shortened(self.policy, 28), key="policy")
        table.add_column("Δ rate", key="gain")
        table.add_column("", key="mark")
        for change in self.changes:
            table.add_row(
                plain_line(change.task, width=40),
                Text(counts_text(change.reference), justify="right"),
                Text(counts_text(change.policy), justify="right"),
                Text(f"{change.gain:+.2f}", justify="right"),
                Text(change.mark, style=MARK_STYLE[change.mark]),
                key=change.task,
            )
        counts = tally(self.changes)
        self.query_one("#task-info", Static).update(Text.assemble(
            plain_line(self.policy, style="bold"), " against ", plain_line(self.reference, style="bold"),
            f" on {len(self.changes)} tasks: ",
            (f"{counts[FIXED]} fixed", MARK_STYLE[FIXED]), ", ", (f"{counts[BROKEN]} broken", MARK_STYLE[BROKEN]),
            f", {counts['unchanged']} unchanged (success rate c/n). Sorted by {self.sort_key}; ",
            ("s", "bold cyan"), " sorts, ", ("c", "bold cyan"), " compares another policy, ",
            ("enter", "bold cyan"), " opens a task's episodes.",
        ))

    def action_sort(self) -> None:
        self.sort_key = SORT_KEYS[(SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)]
        self.reload()

    def action_next_policy(self) -> None:
        others = [policy for policy in self.policies if policy != self.reference]
        self.policy = others[(others.index(self.policy) + 1) % len(others)]
        self.reload()

    def selected_task(self) -> str | None:
        table = self.query_one("#task-table", DataTable)
        if table.row_count == 0:
            return None
        return self.changes[table.cursor_row].task

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_task()

    def action_open_task(self) -> None:
        task = self.selected_task()
        if task is not None:
            self.app.push_screen(TaskEpisodesScreen(self.run_id, task, self.reference, self.policy))


def episodes_text(episodes: list[dict]) -> Text:
    """A policy's evaluation episodes of one task: each rollout's outcome, then its steps."""
    if not episodes:
        return Text("No evaluation episodes of this task under this policy.", style="dim")
    text = Text()
    for episode in episodes:
        solved = episode["success"]
        text.append(f"rollout {episode['rollout']}  ", style="bold")
        text.append("✓ solved" if solved else "✗ not solved", style="green" if solved else "red")
        text.append(f"  score {episode['score'] or 0:.2f} · {episode['steps'] or 0} steps"
                    + ("" if episode["status"] == "finished" else f" · {episode['status']}") + "\n", style="dim")
        for step in episode["path"]:
            text.append(f"  {step['depth']}. ", style="dim")
            text.append_text(plain_line(step["action"] or "", width=60))
            text.append("\n     → ", style="dim")
            text.append_text(plain_line(step["observation"] or "", width=60, style="italic"))
            text.append("\n")
        text.append("\n")
    return text


class TaskEpisodesScreen(WorkbenchScreen):
    """One task's evaluation episodes under the reference and the policy, side by side."""

    screen_title = "Task episodes"

    def __init__(self, run_id: int, task: str, reference: str, policy: str) -> None:
        super().__init__(run_id)
        self.task_name = task
        self.sides = (reference, policy)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(plain_line(f"Task {self.task_name}: its evaluation episodes under each policy."), id="task-info")
        with Horizontal(id="task-episodes"):
            for index, policy in enumerate(self.sides):
                with Vertical(classes="task-episodes-pane"):
                    yield Label(plain_line(policy, width=50), classes="pane-title")
                    with VerticalScroll():
                        yield Static(id=f"episodes-{index}")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.show_episodes()

    @shows_store_problems
    def show_episodes(self) -> None:
        for index, policy in enumerate(self.sides):
            episodes = stored_evaluations.evaluation_episodes(self.db, self.run_id, policy, self.task_name)
            self.query_one(f"#episodes-{index}", Static).update(episodes_text(episodes))

