"""Pass@k per policy with its 95% interval, a plot of Pass@k against k, the paired
comparisons of policies (when the run has any), the run's recorded evaluations, and a key
to launch an evaluation (the `evaluate` stage in a thread worker) that belongs to the run
the screen was opened from; `t` compares two policies task by task."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, ProgressBar, Static

from screens.plain_text import plain, plain_line, visible_line
from screens.progress_bridge import LogLine
from screens.stage_runner import StageFinished, StageRunnerScreen
from screens.store_problems import shows_store_problems
from screens.widgets.loss_plot import PassAtKPlot
from store import ablation as stored_ablation
from store import budget as stored_budgets
from store import costs as stored_costs
from store import evaluations as stored_evaluations
from store import pairs as stored_pairs
from store import splits as stored_splits
from store import views
from workbench.context import Progress

OVERLAP_MARK = "*"
"""After a policy trained on some of the evaluation tasks (not a held-out measure there)."""


def stage_cost_lines(costs) -> list[str]:
    """One line per stage that ran: wall time, tokens, environment steps, peak memory."""
    from workbench.costs import cost_rows

    ran = [cost for cost in costs if cost.wall_time > 0]
    if not ran:
        return []
    return ["Stage costs (wall time, tokens generated, env steps, peak memory):"] + [
        f"  {stage}: {wall}, {tokens} tokens, {steps} env steps, peak {peak}"
        for stage, wall, tokens, steps, peak in cost_rows(ran)
    ]


class ResultsScreen(StageRunnerScreen):
    """The run's Pass@k table (or every run's, with `a`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e,ctrl+s", "evaluate", "Evaluate", id="results.evaluate",
                tooltip="Run the evaluate stage for the policies below"),
        Binding("a", "toggle_all", "All runs", id="results.all_runs", tooltip="Show every run's results or this run's"),
        Binding("t", "task_by_task", "Task by task", id="results.task_by_task",
                tooltip="Each task's c/n under two policies, with fixed / broken / unchanged marks"),
        Binding("ctrl+x", "cancel_evaluation", "Cancel", id="results.cancel", tooltip="Stop the evaluation", priority=True),
    ]
    AUTO_FOCUS = "#evals"
    screen_title = "Results"
    progress_bar_id = "eval-progress"
    busy_notice = "An evaluation is running; ctrl+x cancels it."

    def __init__(self, run_id: int | None) -> None:
        super().__init__(run_id)
        self.shown_run: int | None = run_id

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="results-info")
        with Horizontal(id="results-body"):
            yield DataTable(id="evals", cursor_type="row", zebra_stripes=True)
            yield PassAtKPlot(id="passk-plot")
        yield DataTable(id="pairs", cursor_type="row", zebra_stripes=True)
        yield Static(id="diagnostics")
        yield Static(id="evaluations")
        with Horizontal(id="eval-form"):
            yield Label("policies", classes="inline-label")
            yield Input(id="eval-policies", compact=True)
            yield Label("n", classes="inline-label")
            yield Input("4", id="eval-n", type="integer", compact=True)
            yield Label("tasks", classes="inline-label")
            yield Input(id="eval-tasks", compact=True, placeholder="the run's test tasks")
            yield Button("Evaluate (e)", variant="primary", id="evaluate", compact=True)
        yield Static(id="eval-held-out")
        yield ProgressBar(id="eval-progress", show_eta=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#evals", DataTable)
        for label in ("run", "policy", "k", "pass@k", "95% interval", "tasks"):
            table.add_column(label, key=label)
        pairs = self.query_one("#pairs", DataTable)
        for label in ("run", "policy", "reference", "k", "Δ pass@k", "95% paired interval", "tasks"):
            pairs.add_column(label, key=label)
        self.fill_form()
        self.reload()

    @shows_store_problems
    def fill_form(self) -> None:
        """The policies and n of the run's config, and every adapter in the store."""
        config = views.run_config(self.db, self.run_id) if self.run_id is not None else {}
        evaluate = config.get("evaluate", {})
        policies = list(evaluate.get("policies") or ["base"])
        for adapter in views.adapters(self.db):
            policy = f"adapter:{adapter['name']}"
            if policy not in policies:
                policies.append(policy)
        # An Input shows its value as it is, control characters included: the visible form.
        self.query_one("#eval-policies", Input).value = visible_line(", ".join(map(str, policies)))
        self.query_one("#eval-n", Input).value = visible_line(evaluate.get("n", 4))
        tasks = evaluate.get("tasks")
        self.query_one("#eval-tasks", Input).value = visible_line(
            ", ".join(map(str, tasks)) if isinstance(tasks, list) else ("" if tasks is None else tasks))
        if self.run_id is not None and not views.evals(self.db, self.run_id):
            self.shown_run = None
        self.show_held_out()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id in ("eval-tasks", "eval-policies"):
            self.show_held_out()

    def chosen_policies(self) -> list[str]:
        return [p.strip() for p in self.query_one("#eval-policies", Input).value.split(",") if p.strip()]

    @shows_store_problems
    def show_held_out(self) -> None:
        """The overlap check of the chosen tasks, before anything runs."""
        from workbench.held_out import held_out_line, parse_tasks

        widget = self.query_one("#eval-held-out", Static)
        if self.run_id is None:
            widget.update(Text("Open a run to evaluate under it.", style="dim"))
            return
        line = held_out_line(self.db, self.run_id, self.chosen_policies(),
                             parse_tasks(self.query_one("#eval-tasks", Input).value))
        widget.update(plain_line(line, style="yellow" if line.startswith("Not held out") else "dim"))

    @shows_store_problems
    def reload(self) -> None:
        rows = views.evals(self.db, self.shown_run)
        overlap = stored_pairs.overlap_by_policy(self.db, self.shown_run)
        table = self.query_one("#evals", DataTable)
        table.clear()
        for row in rows:
            interval = (f"{row['ci_low']:.2f}–{row['ci_high']:.2f}" if row["ci_low"] is not None
                        and row["ci_high"] is not None else "–")
            policy = row["policy"] + (f" {OVERLAP_MARK}" if (row["run_id"], row["policy"]) in overlap else "")
            table.add_row(
                Text(str(row["run_id"]), justify="right"), plain_line(policy, width=40),
                Text(str(row["k"]), justify="right"),
                Text(f"{row['pass_at_k']:.3f}", style="bold", justify="right"), Text(interval, justify="right"),
                Text(str(row["n_tasks"] if row["n_tasks"] is not None else "–"), justify="right"),
            )
        self.query_one("#passk-plot", PassAtKPlot).set_curves(views.eval_curves(rows))
        compared = self.show_pairs()
        self.show_diagnostics()
        self.show_evaluations()
        scope = f"run {self.shown_run}" if self.shown_run is not None else "every run"
        if rows:
            info = Text.assemble(("Pass@k ", "bold"), f"of {scope}: unbiased estimator over n rollouts per task; "
                                 "interval: bootstrap over tasks. ", ("a", "bold cyan"), " toggles all runs.")
            if compared:
                info.append(" Δ: policy minus reference, per task, with a paired bootstrap interval.")
            if overlap:
                info.append(f" {OVERLAP_MARK} trained on some of these tasks: not a held-out measure.", style="yellow")
        else:
            info = Text.assemble((f"No evaluation results for {scope} yet. ", "bold"),
                                 "Set the policies below and press ", ("e", "bold cyan"), ".")
        self.query_one("#results-info", Static).update(info)

    def show_diagnostics(self) -> None:
        """Budgets per trained method and the no-note control, for one shown run; hidden otherwise."""
        from workbench.ablation import summary_lines
        from workbench.budget import budget_rows
        from workbench.splits import splits_line

        lines: list[str] = []
        if self.shown_run is not None:
            budgets = {name: entry for name, entry in stored_budgets.adapter_budgets(self.db, self.shown_run).items()
                       if "env_steps" in entry}
            for name, kind, steps, budget, tokens, examples, train_tokens in budget_rows(budgets):
                lines.append(f"{kind} ({name}): {steps} of {budget} env steps, {tokens} tokens generated, "
                             f"trained on {examples} examples / {train_tokens} tokens")
            lines += summary_lines(stored_ablation.stored_summary(self.db, self.shown_run))
            split = splits_line(stored_splits.get_splits(self.db, self.shown_run))
            lines += [split] if split else []
            lines += stage_cost_lines(stored_costs.stage_costs(self.db, self.shown_run))
        widget = self.query_one("#diagnostics", Static)
        widget.update(plain("\n".join(lines)))  # adapter names come from outside
        widget.display = bool(lines)

    def show_evaluations(self) -> None:
        """The shown run's recorded evaluations, newest first: what each used and how it ended."""
        widget = self.query_one("#evaluations", Static)
        recorded = stored_evaluations.evaluations_of_run(self.db, self.shown_run) if self.shown_run else []
        lines = [evaluation_line(evaluation) for evaluation in recorded[:5]]
        if len(recorded) > 5:
            lines.append(f"… and {len(recorded) - 5} earlier")
        widget.update(plain("\n".join(["Evaluations of this run:", *lines]) if lines else ""))
        widget.display = bool(lines)

    def show_pairs(self) -> bool:
        """Fill the paired comparisons of the shown run(s); the table shows only when there are any."""
        pairs = stored_pairs.pairs(self.db, self.shown_run)
        table = self.query_one("#pairs", DataTable)
        table.clear()
        for pair in pairs:
            mark = f" {OVERLAP_MARK}" if pair.overlap_tasks else ""
            clears_zero = pair.ci_low > 0 or pair.ci_high < 0
            table.add_row(
                Text(str(pair.run_id), justify="right"), plain_line(pair.policy + mark, width=40),
                plain_line(pair.reference, width=40),
                Text(str(pair.k), justify="right"),
                Text(f"{pair.diff:+.3f}", style="bold" if clears_zero else "", justify="right"),
                Text(f"{pair.ci_low:+.2f}–{pair.ci_high:+.2f}", justify="right"),
                Text(str(pair.n_tasks), justify="right"),
            )
        table.display = bool(pairs)
        return bool(pairs)

    def action_toggle_all(self) -> None:
        self.shown_run = self.run_id if self.shown_run is None else None
        self.reload()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "evaluate":
            self.action_evaluate()

    # -- evaluating -------------------------------------------------------------------

    def evaluation_config(self) -> Any:
        """The run's config with the form's policies, n and tasks: checked like any config
        before anything runs (the evaluation itself is recorded under the run)."""
        from workbench.config import config_from_dict
        from workbench.held_out import parse_tasks

        data = views.run_config(self.db, self.run_id) if self.run_id is not None else {}
        n = int(self.query_one("#eval-n", Input).value or 4)
        evaluate = dict(data.get("evaluate", {}))
        evaluate["policies"] = self.chosen_policies() or ["base"]
        evaluate["n"] = n
        evaluate["k"] = [k for k in evaluate.get("k", [1, 2, 4]) if k <= n] or [1]
        tasks = parse_tasks(self.query_one("#eval-tasks", Input).value)
        if tasks is not None:
            evaluate["tasks"] = tasks
        return config_from_dict({**data, "evaluate": evaluate})

    @property
    def evaluating(self) -> bool:
        return self.busy

    @shows_store_problems
    def action_evaluate(self) -> None:
        if self.busy:
            self.notify(self.busy_notice, severity="warning")
            return
        from workbench.errors import LeafeError

        if self.run_id is None:
            self.notify("Open a run first: an evaluation is recorded under its run.", severity="warning")
            return
        try:
            config = self.evaluation_config()
        except (LeafeError, ValueError) as error:
            self.notify(f"Cannot evaluate: {error}", severity="error", timeout=6)
            return
        self.query_one("#results-info", Static).update(
            plain_line(f"Evaluating {', '.join(config.evaluate.policies)} with n = {config.evaluate.n}…"))
        db_path, run_id, settings = self.workbench.db_path, self.run_id, config.evaluate

        def evaluate(progress: Progress, cancel: threading.Event) -> dict:
            from workbench.evaluate import evaluate_in_run

            return evaluate_in_run(db_path, run_id, policies=settings.policies, n=settings.n,
                                   tasks=settings.tasks, progress=progress, cancel=cancel)

        self.start_stage(evaluate)

    def action_cancel_evaluation(self) -> None:
        self.cancel_stage()

    def on_log_line(self, message: LogLine) -> None:
        self.query_one("#results-info", Static).update(plain_line(message.text))

    def stage_finished(self, message: StageFinished) -> None:
        result: dict | None = message.result
        if result is None:
            text = ("Evaluation cancelled." if message.cancelled else f"Evaluation failed: {message.error}")
            self.shown_run = self.run_id  # a failed one is recorded under the run too
            self.reload()
            self.query_one("#results-info", Static).update(plain_line(text))
            self.notify(text, severity="error" if message.failed else "warning", timeout=8)
            return
        self.shown_run = result["run_id"]  # the run the screen is titled with
        self.reload()
        self.notify(f"Evaluation {result['evaluation_id']} of run {result['run_id']} finished: "
                    f"{result['tasks']} tasks, n = {result['n']}.", timeout=5)

    # -- task by task -----------------------------------------------------------------

    @shows_store_problems
    def action_task_by_task(self) -> None:
        from screens.task_by_task import TaskByTaskScreen

        run_id = self.shown_run if self.shown_run is not None else self.run_id
        policies = stored_evaluations.evaluated_policies(self.db, run_id) if run_id is not None else []
        if len(policies) < 2:
            self.notify("Task by task needs a run with two evaluated policies.", severity="warning")
            return
        self.app.push_screen(TaskByTaskScreen(run_id, policies))


def evaluation_line(evaluation: stored_evaluations.Evaluation) -> str:
    """`#2 finished 14:03  base, adapter:x · 3 tasks · n 4 · seed 1000 · adapter:x trained on 1`."""
    tasks = evaluation.summary.get("tasks")
    chosen = (f"{tasks} tasks" if tasks is not None else
              "tasks " + (", ".join(map(str, evaluation.tasks)) if isinstance(evaluation.tasks, list)
                          else str(evaluation.tasks if evaluation.tasks is not None else "of the run")))
    parts = [f"#{evaluation.id} {evaluation.status} {evaluation.created_at[11:16]}",
             ", ".join(evaluation.policies), chosen, f"n {evaluation.n}", f"seed {evaluation.seed}"]
    overlap = evaluation.summary.get("overlap") or {}
    parts += [f"{policy} trained on {len(names)}" for policy, names in overlap.items() if names]
    if evaluation.error:
        parts.append(evaluation.error)
    return "  " + " · ".join(parts)
