"""Start exploration (and reflect, backtrack, curate) on a config file or a form, and
watch the tree grow as steps finish. The run goes on in a thread worker; ctrl+x cancels
it after the current step (finished steps are already committed).

A form filled from a config file never changes the run: every stage of the file gets a
checkbox, and a field left as the file filled it keeps the file's value exactly (a task
list with commas in a name, a value the form shows with stand-ins for control characters).
Only what a person changes overrides the file."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    Button,
    Checkbox,
    Footer,
    Header,
    Input,
    Label,
    ProgressBar,
    RichLog,
    Select,
    Static,
    Tree,
)

from screens.plain_text import plain, plain_line, visible_line
from screens.progress_bridge import LogLine, NodeStored, PendingNodes, RunStarted, StageProgress
from screens.stage_runner import StageFinished, StageRunnerScreen
from screens.widgets.trajectory_tree import TrajectoryTree, TreeItem
from workbench.context import Progress

if TYPE_CHECKING:
    from workbench.pipeline import RunResult

LIVE_STAGES = ("explore", "reflect", "backtrack", "curate")
FORM_FIELDS = ("env-kind", "env-suite", "env-tasks", "max-steps", "rollouts", "model-name", "model-script")
BACKENDS = [("hf (transformers)", "hf"), ("vllm", "vllm"), ("openai server", "openai"), ("scripted", "scripted")]


def stage_widget_id(stage: str) -> str:
    """`baseline:rft` -> `stage-baseline-rft` (a widget id has no colon)."""
    return "stage-" + "".join(character if character.isalnum() or character in "_-" else "-"
                              for character in stage)


def form_stages(config_stages: list[str]) -> list[str]:
    """The checkboxes for a config: its stages in its order, and the usual four that it
    lacks, each placed where the pipeline runs it."""
    from workbench.config import STAGES

    def place(stage: str) -> int:
        return STAGES.index(stage) if stage in STAGES else len(STAGES)

    shown = list(config_stages)
    for stage in LIVE_STAGES:
        if stage in shown:
            continue
        later = [index for index, other in enumerate(shown) if place(other) > place(stage)]
        shown.insert(later[0] if later else len(shown), stage)
    return shown


def parse_tasks(text: str) -> int | list[str | int]:
    """`3` is a count; `a, b` are task names; `0, 7` are seeds (navigation)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    items: list[str | int] = []
    for part in text.split(","):
        part = part.strip()
        if part:
            items.append(int(part) if part.lstrip("-").isdigit() else part)
    return items


class LiveScreen(StageRunnerScreen):
    """The form on the left, the growing tree and the log on the right."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "start", "Start", id="live.start", tooltip="Start a run with the form's settings"),
        Binding("ctrl+x", "cancel_run", "Cancel run", id="live.cancel", priority=True,
                tooltip="Stop after the current step; finished steps stay stored"),
        Binding("ctrl+o", "open_tree", "Open run", id="live.open", tooltip="Open this run in the episode screen"),
    ]
    AUTO_FOCUS = "#config-path"
    screen_title = "Live run"
    progress_bar_id = "live-progress"
    busy_notice = "A run is in progress; ctrl+x cancels it."

    def __init__(self) -> None:
        super().__init__(None)
        self.pending = PendingNodes()
        self.loaded_path = ""  # the config file the form was filled from
        self.loaded_values: dict[str, object] = {}  # what each field showed once it was filled

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="live-body"):
            with VerticalScroll(id="live-form"):
                yield Label("Config file (optional, fills the form)", classes="form-label")
                yield Input(placeholder="examples/quickstart.toml", id="config-path", compact=True)
                yield Label("Environment kind · suite", classes="form-label")
                with Horizontal(classes="form-row"):
                    yield Input("coding", id="env-kind", compact=True)
                    yield Input("humaneval", id="env-suite", compact=True)
                # The task list has a row of its own: beside max_steps, a list cut at the
                # field's edge read as one ("Easy/1, Easy/3" and 3 looked like "Easy/33").
                yield Label("Tasks: a count, or names with commas", classes="form-label")
                yield Input("3", id="env-tasks", compact=True)
                yield Label("max_steps (budget) · rollouts", classes="form-label")
                with Horizontal(classes="form-row"):
                    yield Input("3", id="max-steps", type="integer", compact=True)
                    yield Input("1", id="rollouts", type="integer", compact=True)
                yield Label("Model backend · name", classes="form-label")
                yield Select(BACKENDS, value="hf", allow_blank=False, id="model-backend", compact=True)
                yield Input("embedded", id="model-name", compact=True)
                yield Input(placeholder="script JSONL (scripted backend)", id="model-script", compact=True)
                yield Label("Stages", classes="form-label")
                with Horizontal(classes="form-row stage-row", id="stage-row"):
                    for stage in LIVE_STAGES:
                        yield self.stage_checkbox(stage, stage in ("explore", "reflect", "backtrack"))
                yield Button("Start (ctrl+s)", variant="primary", id="start", compact=True)
            with Vertical(id="live-watch"):
                yield Static("Fill the form (or give a config file) and press ctrl+s.", id="live-status")
                yield ProgressBar(id="live-progress", show_eta=False)
                yield TrajectoryTree(self.db, None, id="live-tree")
                yield RichLog(id="live-log", max_lines=500, wrap=True, markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(0.25, self.flush_pending)

    @property
    def tree(self) -> TrajectoryTree:
        return self.query_one("#live-tree", TrajectoryTree)

    # -- the form -------------------------------------------------------------------

    def value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def stage_checkbox(self, stage: str, checked: bool) -> Checkbox:
        return Checkbox(plain_line(stage), value=checked, id=stage_widget_id(stage), name=stage,
                        classes="stage-choice", compact=True)

    def checked_stages(self) -> list[str]:
        """The stages to run, in the order their checkboxes show."""
        return [box.name or "" for box in self.query(".stage-choice").results(Checkbox) if box.value]

    async def show_stages(self, stages: list[str]) -> None:
        """One checkbox per stage of the config (checked) and per usual stage it lacks."""
        row = self.query_one("#stage-row", Horizontal)
        await row.remove_children()
        await row.mount_all([self.stage_checkbox(stage, stage in stages) for stage in form_stages(stages)])

    def unchanged(self, widget_id: str) -> bool:
        """The field still shows what the config file put there."""
        if widget_id not in self.loaded_values or self.value("config-path") != self.loaded_path:
            return False
        widget = self.query_one(f"#{widget_id}")
        current = widget.value.strip() if isinstance(widget, Input) else widget.value  # type: ignore[attr-defined]
        return current == self.loaded_values[widget_id]

    @on(Input.Submitted, "#config-path")
    async def load_config_file(self) -> None:
        """Fill the form from a config file, so what runs is what the form shows."""
        path = self.value("config-path")
        if not path:
            return
        from workbench.config import load_config
        from workbench.errors import LeafeError

        try:
            config = load_config(path)
        except LeafeError as error:
            self.notify(str(error), severity="error", timeout=6)
            return
        # The form shows the file's values as text a person can read: an Input would send a
        # control character in a task name to the terminal as it is.
        self.query_one("#env-kind", Input).value = visible_line(config.env.kind)
        self.query_one("#env-suite", Input).value = visible_line(config.env.suite)
        tasks = config.env.tasks
        self.query_one("#env-tasks", Input).value = (
            str(tasks) if isinstance(tasks, int) else visible_line(", ".join(map(str, tasks))))
        self.query_one("#max-steps", Input).value = str(config.env.max_steps)
        self.query_one("#rollouts", Input).value = str(config.explore.rollouts_per_task)
        self.query_one("#model-backend", Select).value = config.model.backend
        self.query_one("#model-name", Input).value = visible_line(config.model.name)
        self.query_one("#model-script", Input).value = visible_line(config.model.script)
        await self.show_stages(list(config.stages.run))
        self.loaded_path = path
        self.loaded_values = {widget_id: self.value(widget_id) for widget_id in FORM_FIELDS}
        self.loaded_values["model-backend"] = self.query_one("#model-backend", Select).value
        self.notify(f"Loaded {path}; press ctrl+s to start.", timeout=3)

    def form_config(self) -> Any:
        """The config to run: the file's (if any), overridden by the form's fields."""
        from workbench.config import config_from_dict, load_config, resolved

        path = self.value("config-path")
        data: dict[str, Any] = resolved(load_config(path)) if path else {}
        data.setdefault("env", {})
        data.setdefault("model", {})
        data.setdefault("explore", {})
        # A field still showing the file's value keeps the file's value as it is.
        if not self.unchanged("env-kind"):
            data["env"]["kind"] = self.value("env-kind") or "coding"
        if self.value("env-suite") and not self.unchanged("env-suite"):
            data["env"]["suite"] = self.value("env-suite")
        if not self.unchanged("env-tasks"):
            data["env"]["tasks"] = parse_tasks(self.value("env-tasks") or "1")
        if not self.unchanged("max-steps"):
            data["env"]["max_steps"] = int(self.value("max-steps") or 3)
        if not self.unchanged("rollouts"):
            data["explore"]["rollouts_per_task"] = int(self.value("rollouts") or 1)
        if not self.unchanged("model-backend"):
            backend = self.query_one("#model-backend", Select).value
            data["model"]["backend"] = backend if isinstance(backend, str) else "hf"
        if not self.unchanged("model-name"):
            data["model"]["name"] = self.value("model-name") or "embedded"
        if self.value("model-script") and not self.unchanged("model-script"):
            data["model"]["script"] = self.value("model-script")
        stages = self.checked_stages()
        if not stages:
            from workbench.errors import ConfigError

            raise ConfigError("pick at least one stage")
        data.setdefault("stages", {})["run"] = stages
        data.setdefault("store", {})["path"] = str(self.workbench.db_path)
        return config_from_dict(data)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()

    # -- running --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.busy

    def action_start(self) -> None:
        if self.busy:
            self.notify(self.busy_notice, severity="warning")
            return
        from workbench.errors import LeafeError

        try:
            config = self.form_config()
        except (LeafeError, ValueError) as error:
            self.notify(f"Cannot start: {error}", severity="error", timeout=6)
            return
        self.run_id = None
        self.tree.run_id = None
        self.tree.show_episodes([])
        self.query_one("#live-log", RichLog).clear()
        self.query_one("#live-status", Static).update(plain_line(f"Starting: {', '.join(config.stages.run)}…"))
        db_path, config_path = self.workbench.db_path, self.value("config-path")

        def run(progress: Progress, cancel: threading.Event) -> RunResult:
            from workbench.pipeline import run_pipeline

            return run_pipeline(config, db_path=db_path, progress=progress, cancel=cancel, config_path=config_path)

        self.start_stage(run)

    def action_cancel_run(self) -> None:
        if self.cancel_stage():
            self.query_one("#live-status", Static).update("Cancelling after the current step…")

    def action_open_tree(self) -> None:
        if self.run_id is not None:
            self.workbench.open_run(self.run_id)

    # -- what the worker reports --------------------------------------------------------

    def on_run_started(self, message: RunStarted) -> None:
        self.adopt_run(message.run_id)

    def on_node_stored(self, message: NodeStored) -> None:
        self.pending.add(message.node_id)

    def adopt_run(self, run_id: int | None) -> None:
        if run_id is None:
            return
        self.run_id = run_id
        self.tree.run_id = run_id
        self.set_titles()

    def flush_pending(self) -> None:
        node_ids = self.pending.take()
        if node_ids:
            self.tree.add_live_nodes(node_ids, follow=True)

    def progress_shown(self, message: StageProgress) -> None:
        extra = "  ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in message.fields.items())
        self.query_one("#live-status", Static).update(plain_line(f"{message.description}  {extra}".strip()))

    def on_log_line(self, message: LogLine) -> None:
        self.query_one("#live-log", RichLog).write(plain(message.text))

    def stage_finished(self, message: StageFinished) -> None:
        self.flush_pending()
        result: RunResult | None = message.result
        if result is None:
            text = "Run cancelled before it started" if message.cancelled else f"Run failed: {message.error}"
            self.query_one("#live-status", Static).update(plain_line(text))
            self.notify(text, severity="error" if message.failed else "warning", timeout=8)
            return
        self.adopt_run(result.run_id)
        text = visible_line(f"Run {result.run_id} {result.status}" + (f": {result.error}" if result.error else ""))
        self.query_one("#live-status", Static).update(plain(text + "  (ctrl+o opens it, c curates)"))
        self.query_one("#live-log", RichLog).write(plain(text))
        self.notify(text, severity="error" if result.status == "failed" else "information", timeout=5)
        for episode_id in list(self.tree.episode_nodes):
            self.tree.refresh_episode(episode_id)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[TreeItem]) -> None:
        event.stop()
