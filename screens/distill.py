"""Distil approved corrections (or a dataset) into a LoRA adapter, watching the loss, and
list the adapters with their lineage. Training runs in a thread worker."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    ProgressBar,
    RadioButton,
    RadioSet,
    Select,
    Static,
)
from textual.worker import Worker, WorkerState

from screens.base import WorkbenchScreen, one_line
from screens.plain_text import plain_line, visible_line
from screens.progress_bridge import LogLine, MessageProgress, StageProgress
from screens.store_problems import is_store_problem, shows_store_problems, store_problem_line
from screens.widgets.loss_plot import LossPlot
from screens.words import counted
from store import views
from workbench.context import Cancelled


class TrainingFinished(Message):
    """train_adapter returned an adapter id."""

    def __init__(self, adapter_id: int) -> None:
        super().__init__()
        self.adapter_id = adapter_id


def lineage_text(row: dict) -> str:
    """Which run, dataset and corrections an adapter came from (workbench.distill's lineage),
    on one line with control characters made visible."""
    lineage = row["lineage"] or {}
    corrections = lineage.get("correction_ids") or []
    parts = []
    run_id = row.get("run_id") if row.get("run_id") is not None else lineage.get("run_id")
    if run_id is not None:
        parts.append(f"run {run_id}")
    if row.get("dataset_name") or lineage.get("dataset_name"):
        parts.append(f"dataset {row.get('dataset_name') or lineage.get('dataset_name')}")
    if corrections:
        shown = ",".join(str(c) for c in corrections[:6]) + ("…" if len(corrections) > 6 else "")
        parts.append(f"corrections {shown}")
    return visible_line(" · ".join(parts))


class DistillScreen(WorkbenchScreen):
    """Pick the data, set LoRA, train; the adapters table shows what was trained from what."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "train", "Train", id="distill.train", tooltip="Train a LoRA adapter on the chosen data"),
        Binding("ctrl+x", "cancel_training", "Cancel", id="distill.cancel", tooltip="Stop training", priority=True),
    ]
    AUTO_FOCUS = "#adapters"
    screen_title = "Distill"

    def __init__(self, run_id: int | None) -> None:
        super().__init__(run_id)
        self.cancel = threading.Event()
        self.training = False
        self.adapter_rows: dict[int, dict] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="distill-body"):
            with VerticalScroll(id="distill-form"):
                yield Label("Training data", classes="form-label")
                with RadioSet(id="source", compact=True):
                    yield RadioButton("approved corrections of this run", value=True, id="source-corrections", compact=True)
                    yield RadioButton("an exported dataset", id="source-dataset", compact=True)
                yield Select([], prompt="dataset", id="dataset", compact=True)
                yield Static(id="example-count")
                yield Label("LoRA rank · alpha", classes="form-label")
                with Horizontal(classes="form-row"):
                    yield Input("16", id="lora-r", type="integer", compact=True)
                    yield Input("32", id="lora-alpha", type="integer", compact=True)
                yield Label("learning rate · epochs", classes="form-label")
                with Horizontal(classes="form-row"):
                    yield Input("0.0002", id="learning-rate", type="number", compact=True)
                    yield Input("3", id="epochs", type="integer", compact=True)
                yield Label("Adapter name", classes="form-label")
                yield Input(placeholder=self.default_name(), id="adapter-name", compact=True)
                yield Button("Train (ctrl+s)", variant="primary", id="train", compact=True)
            with Vertical(id="distill-watch"):
                yield Static("", id="distill-status")
                yield ProgressBar(id="distill-progress", show_eta=True)
                yield LossPlot(id="loss-plot")
                yield DataTable(id="adapters", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def default_name(self) -> str:
        return f"leafe-run-{self.run_id}" if self.run_id is not None else "leafe"

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#adapters", DataTable)
        for label in ("adapter", "kind", "base", "examples", "final loss", "lineage"):
            table.add_column(label, key=label)
        self.fill_form()
        self.reload_adapters()
        self.update_count()

    @shows_store_problems
    def fill_form(self) -> None:
        """LoRA settings from the run's config, and the store's datasets to choose from."""
        config = views.run_config(self.db, self.run_id) if self.run_id is not None else {}
        distill = config.get("distill", {})
        for widget_id, key in (("lora-r", "lora_r"), ("lora-alpha", "lora_alpha"),
                               ("learning-rate", "learning_rate"), ("epochs", "epochs")):
            if key in distill:
                self.query_one(f"#{widget_id}", Input).value = visible_line(distill[key])
        if self.run_id is None:
            self.query_one("#source-dataset", RadioButton).value = True
        datasets = views.datasets(self.db)
        select = self.query_one("#dataset", Select)
        # An option's prompt given as str is read as markup: dataset names come from the store.
        select.set_options([
            (plain_line(f"{row['name']} ({counted(row['n_examples'] or 0, 'example')})"), row["id"]) for row in datasets
        ])
        if datasets:
            select.value = datasets[0]["id"]

    # -- form -----------------------------------------------------------------------

    def source(self) -> str:
        return "corrections" if self.query_one("#source-corrections", RadioButton).value else "dataset"

    @on(RadioSet.Changed)
    @on(Select.Changed, "#dataset")
    @shows_store_problems
    def update_count(self) -> None:
        count = self.query_one("#example-count", Static)
        if self.source() == "corrections":
            if self.run_id is None:
                count.update(Text("Open a run first (its approved corrections are the data).", style="yellow"))
                return
            counts = views.correction_counts(self.db, self.run_id)
            trainable = counts["approved"] + counts["edited"]
            count.update(Text.assemble(
                (counted(trainable, "example"), "bold"),
                f" ({counts['approved']} approved, {counts['edited']} edited; {counts['proposed']} still proposed)",
            ))
        else:
            dataset_id = self.query_one("#dataset", Select).value
            rows = {row["id"]: row for row in views.datasets(self.db)}
            row = rows.get(dataset_id) if isinstance(dataset_id, int) else None
            count.update(plain_line(f"{counted(row['n_examples'] or 0, 'example')} in {row['path']}", style="bold")
                         if row else Text("No dataset chosen.", style="yellow"))

    def settings(self) -> dict[str, Any]:
        def number(widget_id: str, cast: type) -> Any:
            text = self.query_one(f"#{widget_id}", Input).value.strip()
            try:
                value = cast(text)
            except ValueError:
                raise ValueError(f"{widget_id.replace('-', ' ')} must be a number, got {text!r}") from None
            if value <= 0:
                raise ValueError(f"{widget_id.replace('-', ' ')} must be positive")
            return value

        return {"lora_r": number("lora-r", int), "lora_alpha": number("lora-alpha", int),
                "learning_rate": number("learning-rate", float), "epochs": number("epochs", int)}

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "train":
            self.action_train()

    # -- adapters -------------------------------------------------------------------

    @shows_store_problems
    def reload_adapters(self, select: int | None = None) -> None:
        table = self.query_one("#adapters", DataTable)
        table.clear()
        self.adapter_rows = {row["id"]: row for row in views.adapters(self.db)}
        for row in self.adapter_rows.values():
            loss = row["metrics"].get("final_loss")
            table.add_row(
                plain_line(row["name"], width=40), plain_line(row["kind"] or ""),
                plain_line(row["base_model"] or "", width=40),
                Text(str(row["n_examples"] if row["n_examples"] is not None else "–"), justify="right"),
                Text(f"{loss:.3f}" if isinstance(loss, int | float) else "–", justify="right"),
                plain_line(lineage_text(row)), key=str(row["id"]),
            )
        if select is not None and select in self.adapter_rows:
            table.move_cursor(row=table.get_row_index(str(select)))
        self.show_adapter_curve()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if not self.training:
            self.show_adapter_curve()

    @shows_store_problems
    def show_adapter_curve(self) -> None:
        table = self.query_one("#adapters", DataTable)
        if table.row_count == 0:
            self.query_one("#distill-status", Static).update("No adapters yet.")
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        row = self.adapter_rows.get(int(key)) if key is not None else None
        if row is None:
            return
        self.query_one("#loss-plot", LossPlot).set_points(views.train_log(self.db, row["id"]))
        self.query_one("#distill-status", Static).update(
            Text.assemble(("adapter ", "dim"), (visible_line(row["name"]), "bold"),
                          f"  {visible_line(row['path'] or '')}  ", (lineage_text(row), "cyan"))
        )

    # -- training -------------------------------------------------------------------

    def action_train(self) -> None:
        if self.training:
            self.notify("Training is in progress; ctrl+x cancels it.", severity="warning")
            return
        try:
            settings = self.settings()
        except ValueError as error:
            self.notify(str(error), severity="error")
            return
        dataset_id = self.query_one("#dataset", Select).value
        source = self.source()
        if source == "dataset" and not isinstance(dataset_id, int):
            self.notify("Choose a dataset first.", severity="warning")
            return
        if source == "corrections" and self.run_id is None:
            self.notify("Open a run first, or choose a dataset.", severity="warning")
            return
        name = self.query_one("#adapter-name", Input).value.strip() or self.default_name()
        existing = {row["name"] for row in self.adapter_rows.values()}
        base, suffix = name, 2
        while name in existing:
            name, suffix = f"{base}-{suffix}", suffix + 1
        self.training = True
        self.cancel.clear()
        self.query_one("#loss-plot", LossPlot).set_points([])
        self.query_one("#distill-status", Static).update(plain_line(f"Training {name}…"))
        self.train(source, dataset_id if isinstance(dataset_id, int) else None, settings, name)

    @work(thread=True, exclusive=True, exit_on_error=False, group="distill")
    def train(self, source: str, dataset_id: int | None, settings: dict[str, Any], name: str) -> int:
        from store.db import open_store
        from workbench.config import Config, config_from_dict

        db = open_store(self.workbench.db_path)
        try:
            config = config_from_dict(views.run_config(db, self.run_id)) if self.run_id is not None else Config()
            progress = MessageProgress(self)
            if source == "corrections":
                from workbench.export import export_dataset

                progress.event("message", text="exporting approved corrections")
                dataset = export_dataset(db, config, self.run_id)
            else:
                dataset = db["datasets"].get(dataset_id)
            if not dataset["n_examples"]:
                raise ValueError("the dataset has no examples: approve some corrections first")
            from workbench.distill import default_output, train_adapter

            # Like the distill stage: adapters/<name> beside the store unless the run's
            # config names a folder (never the folder the app was started from).
            output = config.distill.output or str(default_output(db, name))
            adapter_id = train_adapter(
                db, dataset_path=dataset["path"], dataset_id=dataset["id"],
                settings=dataclasses.replace(config.distill, **settings), model=config.model,
                name=name, output=output, run_id=self.run_id, kind="leafe",
                progress=progress, cancel=self.cancel,
            )
        finally:
            db.close()
        self.post_message(TrainingFinished(adapter_id))
        return adapter_id

    def action_cancel_training(self) -> None:
        if self.training:
            self.cancel.set()
            self.query_one("#distill-status", Static).update("Cancelling…")

    def on_stage_progress(self, message: StageProgress) -> None:
        bar = self.query_one("#distill-progress", ProgressBar)
        bar.add_class("-active")
        bar.update(total=message.total, progress=message.completed)
        loss = message.fields.get("loss")
        status = f"{message.description}" + (f"  loss {loss:.4f}" if isinstance(loss, int | float) else "")
        self.query_one("#distill-status", Static).update(plain_line(status))
        if message.losses:
            self.query_one("#loss-plot", LossPlot).set_points(list(message.losses))

    def on_log_line(self, message: LogLine) -> None:
        self.query_one("#distill-status", Static).update(plain_line(message.text))

    def on_training_finished(self, message: TrainingFinished) -> None:
        self.training = False
        self.reload_adapters(select=message.adapter_id)
        self.notify(f"Adapter {message.adapter_id} trained.", timeout=4)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "distill" or event.state not in (WorkerState.ERROR, WorkerState.CANCELLED):
            return
        self.training = False
        error = event.worker.error
        if event.state == WorkerState.CANCELLED or isinstance(error, Cancelled):
            text = "Training cancelled; no adapter was stored."
            self.query_one("#distill-status", Static).update(plain_line(text))
            self.notify(text, severity="warning", timeout=5)
            return
        if isinstance(error, ImportError):
            text = f"Distillation is not available: {one_line(error)}"
        elif error is not None and is_store_problem(error):
            text = f"Training stopped: {store_problem_line(self.workbench.db_path, error)}"
        else:
            text = f"Training stopped: {one_line(str(error)) or type(error).__name__}"
        self.query_one("#distill-status", Static).update(plain_line(text))
        self.notify(text, severity="error", timeout=8)
