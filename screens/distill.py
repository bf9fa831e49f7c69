"""Distil approved corrections (or a dataset) into a LoRA adapter (or every weight),
watching the loss, and list the adapters with their lineage.

The form shows what training will use before it starts: the examples by kind (approved,
edited, rehearsal, with rehearsal a visible toggle), the dataset name the export will
write (an existing dataset is never rewritten), the method, epochs, batch size and
learning rate. Training is `workbench.distill.job.distill_from_run`, run by the stage
runner in a thread worker."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    Button,
    Checkbox,
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

from screens import table_rows
from screens.plain_text import plain_line, visible_line
from screens.progress_bridge import LogLine, StageProgress
from screens.stage_runner import StageFinished, StageRunnerScreen
from screens.store_problems import shows_store_problems
from screens.widgets.loss_plot import LossPlot
from screens.words import counted
from store import views

METHODS = [("lora (a LoRA adapter)", "lora"), ("full (every weight)", "full")]
NUMBER_FIELDS = (("lora-r", "lora_r"), ("lora-alpha", "lora_alpha"), ("learning-rate", "learning_rate"),
                 ("epochs", "epochs"), ("batch-size", "batch_size"))
"""Form field -> [distill] key, for the numbers the form shows and sends."""


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


class DistillScreen(StageRunnerScreen):
    """Pick the data, set LoRA, train; the adapters table shows what was trained from what."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "train", "Train", id="distill.train", tooltip="Train a LoRA adapter on the chosen data"),
        Binding("ctrl+x", "cancel_training", "Cancel", id="distill.cancel", tooltip="Stop training", priority=True),
    ]
    AUTO_FOCUS = "#adapters"
    screen_title = "Distill"
    progress_bar_id = "distill-progress"
    busy_notice = "Training is in progress; ctrl+x cancels it."

    def __init__(self, run_id: int | None) -> None:
        super().__init__(run_id)
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
                yield Checkbox("rehearsal: + successful episodes", id="rehearsal", compact=True)
                yield Static(id="example-count")
                yield Label("method", classes="form-label")
                yield Select(METHODS, value="lora", allow_blank=False, id="method", compact=True)
                yield Label("LoRA rank · alpha", classes="form-label")
                with Horizontal(classes="form-row"):
                    yield Input("16", id="lora-r", type="integer", compact=True)
                    yield Input("32", id="lora-alpha", type="integer", compact=True)
                yield Label("learning rate · epochs · batch size", classes="form-label")
                with Horizontal(classes="form-row"):
                    yield Input("0.0002", id="learning-rate", type="number", compact=True)
                    yield Input("3", id="epochs", type="integer", compact=True)
                    yield Input("4", id="batch-size", type="integer", compact=True)
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
        for widget_id, key in NUMBER_FIELDS:
            if key in distill:
                self.query_one(f"#{widget_id}", Input).value = visible_line(distill[key])
        if distill.get("method") in ("lora", "full"):
            self.query_one("#method", Select).value = distill["method"]
        self.query_one("#rehearsal", Checkbox).value = bool(config.get("export", {}).get("rehearsal", False))
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
    @on(Checkbox.Changed, "#rehearsal")
    @shows_store_problems
    def update_count(self) -> None:
        """What training will use, by kind, before anything is trained."""
        count = self.query_one("#example-count", Static)
        rehearsal = self.query_one("#rehearsal", Checkbox)
        rehearsal.disabled = self.source() != "corrections"
        if self.source() == "corrections":
            if self.run_id is None:
                count.update(Text("Open a run first (its approved corrections are the data).", style="yellow"))
                return
            from workbench.distill.job import free_name, planned_examples

            kinds = planned_examples(self.db, self.run_id, rehearsal=rehearsal.value)
            proposed = views.correction_counts(self.db, self.run_id)["proposed"]
            total = kinds["approved"] + kinds["edited"] + kinds["rehearsal"]
            taken = {row["name"] for row in views.datasets(self.db)}
            wanted = f"leafe-run-{self.run_id}"
            dataset = free_name(wanted, taken)
            text = Text.assemble(
                (counted(total, "example"), "bold"),
                f": {kinds['approved']} approved, {kinds['edited']} edited, "
                + (f"{kinds['rehearsal']} rehearsal" if rehearsal.value else "rehearsal off"),
                f"; {proposed} still proposed",
            )
            if kinds["left_out"]:
                text.append(f"; {kinds['left_out']} left out (they copy their note)", style="yellow")
            text.append_text(plain_line(f"\nwrites dataset {dataset}"
                                        + (f" ({wanted} is kept)" if dataset != wanted else ""), style="dim"))
            count.update(text)
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

        settings = {key: number(widget_id, float if key == "learning_rate" else int)
                    for widget_id, key in NUMBER_FIELDS}
        method = self.query_one("#method", Select).value
        settings["method"] = method if method in ("lora", "full") else "lora"
        return settings

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
        if select is not None:
            table_rows.move_to_id(table, select)
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
        adapter_id = table_rows.selected_id(table)
        row = self.adapter_rows.get(adapter_id) if adapter_id is not None else None
        if row is None:
            return
        self.query_one("#loss-plot", LossPlot).set_points(views.train_log(self.db, row["id"]))
        self.query_one("#distill-status", Static).update(
            Text.assemble(("adapter ", "dim"), (visible_line(row["name"]), "bold"),
                          f"  {visible_line(row['path'] or '')}  ", (lineage_text(row), "cyan"))
        )

    # -- training -------------------------------------------------------------------

    @property
    def training(self) -> bool:
        return self.busy

    def action_train(self) -> None:
        if self.busy:
            self.notify(self.busy_notice, severity="warning")
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
        from workbench.distill.job import DistillRequest, distill_from_run

        request = DistillRequest(
            run_id=self.run_id, dataset_id=dataset_id if source == "dataset" and isinstance(dataset_id, int) else None,
            name=self.query_one("#adapter-name", Input).value.strip() or self.default_name(),
            settings=settings, rehearsal=self.query_one("#rehearsal", Checkbox).value,
        )
        db_path = self.workbench.db_path
        self.query_one("#loss-plot", LossPlot).set_points([])
        self.query_one("#distill-status", Static).update(plain_line(f"Training {request.name}…"))
        self.start_stage(lambda progress, cancel: distill_from_run(db_path, request, progress=progress, cancel=cancel))

    def action_cancel_training(self) -> None:
        if self.cancel_stage():
            self.query_one("#distill-status", Static).update("Cancelling…")

    def progress_shown(self, message: StageProgress) -> None:
        loss = message.fields.get("loss")
        status = f"{message.description}" + (f"  loss {loss:.4f}" if isinstance(loss, int | float) else "")
        self.query_one("#distill-status", Static).update(plain_line(status))
        if message.losses:
            self.query_one("#loss-plot", LossPlot).set_points(list(message.losses))

    def on_log_line(self, message: LogLine) -> None:
        self.query_one("#distill-status", Static).update(plain_line(message.text))

    def stage_finished(self, message: StageFinished) -> None:
        if message.cancelled:
            text = "Training cancelled; no adapter was stored."
            self.query_one("#distill-status", Static).update(plain_line(text))
            self.notify(text, severity="warning", timeout=5)
            return
        if message.failed:
            text = f"Training stopped: {message.error}"
            self.query_one("#distill-status", Static).update(plain_line(text))
            self.notify(text, severity="error", timeout=8)
            return
        self.reload_adapters(select=message.result)
        self.update_count()  # the new dataset's name is taken now
        self.notify(f"Adapter {message.result} trained.", timeout=4)
