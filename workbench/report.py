"""`python -m workbench.report --db STORE [--run ID] --out DIR` (`make report DB=...`):
a run's results as files for the README and for other tools.

From the store it writes `report.md` (Markdown tables: Pass@k with 95% intervals, paired
differences, each trained adapter's budget and training compute, the rounds curve, what
the note adds (ablation:no_note) with LEAFE's yield, and how often the environment read
each action from each policy's text),
the same figures as `report.json` and one CSV per table, and plots where a picture reads
better: Pass@k against k on a log axis, validation Pass@1 against round. A run with several
training seeds gets each policy's Pass@k over seeds (mean, standard deviation, min, max)
and then each seed's own tables (its seed run's). Plots are SVG,
drawn here (no plotting library needed); with matplotlib installed, PNG copies as well.
Sections a run has no data for are left out, with a line saying so.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

from store import ablation as stored_ablation
from store import pairs as stored_pairs
from store import queries
from store import report as stored
from store import rounds as stored_rounds
from store import seeds as stored_seeds
from store.db import open_store
from workbench.config import ADAPTER_PREFIX
from workbench.errors import LeafeError
from workbench.evaluate import expand_policies
from workbench.seeds import across_seeds, label, seeds_cell

# (metrics key, column): what each method's adapter record says it spent. `tokens` is what
# the method generated while collecting data (the budget's tokens); `train_tokens` what went
# through training, all epochs. The report once showed `tokens` as "tokens trained", which
# put Early Experience's 8,829 generated tokens where its 363,468 trained ones belonged.
TRAINING_COLUMNS = (
    ("env_steps_budget", "env steps (budget)"), ("env_steps_used", "env steps (used)"),
    ("train_examples", "training examples"), ("train_tokens", "tokens trained"), ("tokens", "tokens generated"),
    ("steps", "optimiser steps"), ("wall_time", "wall time (s)"), ("method", "method"),
)
TRAINING_KEYS = tuple(key for key, _ in TRAINING_COLUMNS)


def training_row(name: str, kind: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """One adapter's budget and training compute. Records from before `train_examples`
    was stored give their dataset size (`n_examples`) instead."""
    row = {"adapter": name, "kind": kind, **{key: metrics.get(key) for key in TRAINING_KEYS}}
    if row["train_examples"] is None:
        row["train_examples"] = metrics.get("n_examples")
    return row


def collect(db, run_id: int) -> dict[str, Any]:
    """Every figure of the report, as plain data (what report.json holds)."""
    pass_at_k = stored.pass_at_k_rows(db, run_id)
    pairs = [pair.__dict__ for pair in stored_pairs.pairs(db, run_id)]
    training = [training_row(row["name"], row["kind"], row["metrics"]) for row in stored.adapter_rows(db, run_id)]
    rounds = [score.__dict__ for score in stored_rounds.scores(db, run_id)]
    data = {"run": stored.run_header(db, run_id), "pass_at_k": pass_at_k, "pairs": pairs,
            "training": training, "rounds": rounds,
            "ablation": stored_ablation.stored_summary(db, run_id),
            "actions": stored.actions_read(db, run_id)}
    seed_runs = stored_seeds.seed_runs(db, run_id)
    if seed_runs:
        data["seeds"] = [{"seed": seed, **collect(db, seed_run)} for seed, seed_run in seed_runs.items()]
        data["across_seeds"] = across_seeds(
            {entry["seed"]: as_table(entry["pass_at_k"]) for entry in data["seeds"] if entry["pass_at_k"]},
            untrained_by_seed(db, run_id))
    return data


def untrained_by_seed(db, run_id: int) -> dict[int, list[str]]:
    """Training seed -> the policies its evaluation left out because their training had
    nothing to train on: the run's `evaluate.policies` whose adapter a training stage of
    that seed skipped. Read from the stage rows and the config, not from the evaluate
    summary's `untrained`, so stores evaluated before it was recorded count too."""
    asked = (queries.get_run(db, run_id)["config"].get("evaluate") or {}).get("policies", ["base"])
    untrained = {}
    for seed, names in queries.skipped_adapters_by_seed(db, run_id).items():
        if seed is not None:
            untrained[seed] = [policy for policy in expand_policies(asked, label(run_id, seed))
                               if policy.startswith(ADAPTER_PREFIX) and policy[len(ADAPTER_PREFIX):] in names]
    return untrained


def as_table(rows: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """Pass@k rows as the evaluate stage's table: policy -> k -> {pass_at_k}."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for row in rows:
        table.setdefault(row["policy"], {})[str(row["k"])] = {"pass_at_k": row["pass_at_k"]}
    return table


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if not math.isnan(value) else "-"
    return str(value)


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def interval(value: float, low: float, high: float, signed: bool = False) -> str:
    form = "{:+.3f}" if signed else "{:.3f}"
    return f"{form.format(value)} [{form.format(low)}, {form.format(high)}]"


def markdown(data: dict[str, Any]) -> str:
    run = data["run"] or {}
    parts = [f"# Run {run.get('id')} {run.get('name') or ''}".rstrip(),
             f"Status {run.get('status')}, {run.get('tokens_generated') or 0} tokens generated, "
             f"{(run.get('wall_time') or 0) / 60:.1f} min of wall time."]
    if data["pass_at_k"]:
        ks = sorted({row["k"] for row in data["pass_at_k"]})
        by_policy: dict[str, dict[int, dict]] = {}
        for row in data["pass_at_k"]:
            by_policy.setdefault(row["policy"], {})[row["k"]] = row
        rows = [[policy + (" *" if any(r["overlap_tasks"] for r in cells.values()) else ""),
                 next(iter(cells.values()))["n_tasks"],
                 *(interval(cells[k]["pass_at_k"], cells[k]["ci_low"], cells[k]["ci_high"]) if k in cells else "-"
                   for k in ks)] for policy, cells in by_policy.items()]
        parts += ["## Pass@k (95% bootstrap interval over tasks)",
                  markdown_table(["policy", "tasks", *(f"pass@{k}" for k in ks)], rows)]
        if any(row[0].endswith(" *") for row in rows):
            parts.append("\\* trained on some of the evaluation tasks: not a held-out measure there.")
    elif not data.get("seeds"):
        parts.append("No evaluation in this run.")
    if data["pairs"]:
        ks = sorted({pair["k"] for pair in data["pairs"]})
        grouped: dict[tuple[str, str], dict[int, dict]] = {}
        for pair in data["pairs"]:
            grouped.setdefault((pair["policy"], pair["reference"]), {})[pair["k"]] = pair
        rows = [[policy, reference, *(interval(c[k]["diff"], c[k]["ci_low"], c[k]["ci_high"], True) if k in c else "-"
                                     for k in ks)] for (policy, reference), c in grouped.items()]
        parts += ["## Paired difference, policy - reference (95% paired bootstrap over tasks)",
                  markdown_table(["policy", "reference", *(f"pass@{k}" for k in ks)], rows)]
    if data["training"]:
        parts += ["## Budgets and training compute",
                  markdown_table(["adapter", "kind", *(column for _, column in TRAINING_COLUMNS)],
                                 [[row["adapter"], row["kind"], *(row[key] for key in TRAINING_KEYS)]
                                  for row in data["training"]])]
    if data["rounds"]:
        parts += ["## LEAFE rounds: validation Pass@1 (round 0 is the base policy)",
                  markdown_table(["round", "policy", "tasks x n", "successes", "pass@1 [95% CI]", "env steps",
                                  "examples"],
                                 [[s["round"], s["policy"], f"{s['tasks']} x {s['n']}", s["successes"],
                                   interval(s["pass_at_1"], s["ci_low"], s["ci_high"]), s["env_steps"],
                                   s["train_examples"]] for s in data["rounds"]])]
    parts += ablation_markdown(data.get("ablation")) + actions_markdown(data.get("actions") or [])
    if data.get("seeds"):
        parts += seeds_markdown(data)
    return "\n\n".join(parts) + "\n"


def ablation_markdown(summary: dict | None) -> list[str]:
    """What the note adds: LEAFE's branches against the same branches without the note, and
    LEAFE's yield of corrections per 100 environment steps."""
    if not summary:
        return []
    sides = [(label, summary.get(key) or {}) for label, key in (("with the note (LEAFE)", "with_note"),
                                                                 ("without the note (control)", "without_note"))]
    rows = [[label, side.get("branches"), side.get("successes"), side.get("mean_gain"), side.get("env_steps", "-")]
            for label, side in sides]
    parts = ["## What the note adds (ablation:no_note, same rollback points and branch seeds)",
             markdown_table(["branches", "count", "reached the goal", "mean score gain over the original path",
                             "env steps"], rows)]
    spent = summary.get("yield")
    if spent:
        parts.append(f"Yield: {spent['proposed']} proposed and {spent['approved']} approved corrections in "
                     f"{spent['env_steps']} environment steps ({spent['proposed_per_100_steps']:.2f} and "
                     f"{spent['approved_per_100_steps']:.2f} per 100 steps).")
    return parts


def actions_markdown(entries: list[dict]) -> list[str]:
    """How often the environment read each action from each policy's text: a policy that
    mostly writes prose, or one that only turns, shows here before it shows in Pass@k."""
    if not entries:
        return []
    names = sorted({name for entry in entries for name in entry["actions"]} - {"none"})
    rows = [[entry["policy"], entry["purpose"], entry["reported"],
             *(f"{100 * entry['actions'].get(name, 0) / entry['reported']:.0f}%" for name in ["none", *names])]
            for entry in entries]
    return ["## Actions the environment read, by policy and purpose (share of steps)",
            markdown_table(["policy", "purpose", "steps", "no action read", *names], rows)]


def seeds_markdown(data: dict[str, Any]) -> list[str]:
    """Each policy's Pass@k over the training seeds, then every seed's own tables."""
    parts = []
    if data["across_seeds"]:
        parts += ["## Pass@k over training seeds (mean ± sample standard deviation, min, max)",
                  markdown_table(["policy", "k", "seeds", "mean ± std", "min", "max"],
                                 [[row["policy"], row["k"], seeds_cell(row), f"{row['mean']:.3f} ± {row['std']:.3f}",
                                   row["min"], row["max"]] for row in data["across_seeds"]])]
    for entry in data["seeds"]:
        run = entry["run"] or {}
        parts.append(f"## Training seed {entry['seed']} (seed run {run.get('id')})")
        for part in markdown(entry).strip().split("\n\n")[2:]:  # its tables, without its title and status
            parts.append("#" + part if part.startswith("## ") else part)
    return parts


def write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with path.open("w", newline="") as handle:
        # Rows may differ in their keys (each policy's actions): every key gets a column.
        fields = list(dict.fromkeys(key for row in rows for key in row))
        writer = csv.DictWriter(handle, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)


# -- plots -----------------------------------------------------------------------------

WIDTH, HEIGHT, MARGIN = 480, 320, 50
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def svg_plot(title: str, x_label: str, series: dict[str, list[tuple[float, float]]], *, log_x: bool,
             x_ticks: list[float]) -> str:
    """A line plot (y from 0 to 1) with one line and legend entry per series."""
    xs = [math.log2(x) if log_x else x for x in x_ticks]
    low, high = min(xs), max(xs)
    span = (high - low) or 1.0

    def px(x: float) -> float:
        x = math.log2(x) if log_x else x
        return MARGIN + (x - low) / span * (WIDTH - 2 * MARGIN)

    def py(y: float) -> float:
        return HEIGHT - MARGIN - y * (HEIGHT - 2 * MARGIN)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" '
           'font-size="11">', f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
           f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="13">{escape(title)}</text>',
           f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" text-anchor="middle">{escape(x_label)}</text>',
           f'<line x1="{MARGIN}" y1="{py(0)}" x2="{WIDTH - MARGIN}" y2="{py(0)}" stroke="black"/>',
           f'<line x1="{MARGIN}" y1="{py(0)}" x2="{MARGIN}" y2="{py(1)}" stroke="black"/>']
    for y in (0.0, 0.25, 0.5, 0.75, 1.0):
        out.append(f'<text x="{MARGIN - 6}" y="{py(y) + 4}" text-anchor="end">{y:.2f}</text>')
    for x in x_ticks:
        out.append(f'<text x="{px(x)}" y="{py(0) + 15}" text-anchor="middle">{x:g}</text>')
    for index, (name, points) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>' for x, y in points]
        out.append(f'<text x="{MARGIN + 8}" y="{MARGIN - 12 + 14 * index}" fill="{colour}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plots(data: dict[str, Any]) -> dict[str, tuple[str, str, dict, bool, list[float]]]:
    """name -> (title, x label, series, log x, x ticks) for each plot the data supports."""
    found = {}
    # A run with training seeds keeps its evaluations and rounds in its seed runs: its
    # plots are each policy's mean Pass@k over the seeds, and one rounds curve per seed.
    seeded = bool(data.get("seeds"))
    points = ([(row["policy"], row["k"], row["mean"]) for row in data["across_seeds"]] if seeded
              else [(row["policy"], row["k"], row["pass_at_k"]) for row in data["pass_at_k"]])
    if points:
        series: dict[str, list[tuple[float, float]]] = {}
        for policy, k, value in points:
            series.setdefault(policy, []).append((k, value))
        ks = sorted({k for _, k, _ in points})
        if len(ks) > 1:
            title = (f"Pass@k, mean over {len(data['seeds'])} training seeds" if seeded
                     else "Pass@k on the evaluation tasks")
            found["pass_at_k"] = (title, "k (log scale)", {p: sorted(v) for p, v in series.items()}, True, ks)
    curves = ({f"seed {entry['seed']}": entry["rounds"] for entry in data["seeds"]} if seeded
              else {"validation pass@1": data["rounds"]})
    curves = {name: [(s["round"], s["pass_at_1"]) for s in scores] for name, scores in curves.items()
              if len(scores) > 1}
    if curves:
        rounds = sorted({float(r) for curve in curves.values() for r, _ in curve})
        found["rounds"] = ("Validation Pass@1 by LEAFE round", "round (0: base policy)", curves, False, rounds)
    return found


def write_png(path: Path, title: str, x_label: str, series: dict, log_x: bool, ticks: list[float]) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axis = plt.subplots(figsize=(5, 3.4))
    for name, points in series.items():
        axis.plot([x for x, _ in points], [y for _, y in points], marker="o", label=name)
    if log_x:
        axis.set_xscale("log", base=2)
    axis.set_xticks(ticks, [f"{tick:g}" for tick in ticks])  # k values, or whole rounds
    axis.set(title=title, xlabel=x_label, ylim=(0, 1))
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True


def write_report(db_path: str | Path, out: str | Path, run_id: int | None = None) -> list[Path]:
    """Write the report's files for `run_id` (default: the latest run); return their paths."""
    if not Path(db_path).is_file():
        raise LeafeError(f"report: store not found: {db_path}")
    db = open_store(db_path)
    run_id = run_id or stored_seeds.latest_run(db)  # a seed run is reported with its run
    if run_id is None or stored.run_header(db, run_id) is None:
        raise LeafeError(f"report: {db_path} has no run {run_id or ''}".rstrip())
    data = collect(db, run_id)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "report.md", folder / "report.json"]
    written[0].write_text(markdown(data))
    written[1].write_text(json.dumps(data, indent=1, default=str))
    tables = {name: data[name] for name in ("pass_at_k", "pairs", "training", "rounds")}
    tables["actions"] = [{"policy": e["policy"], "purpose": e["purpose"], "steps": e["reported"], **e["actions"]}
                         for e in data["actions"]]
    if data.get("seeds"):
        tables["seeds_actions"] = [{"seed": entry["seed"], "policy": e["policy"], "purpose": e["purpose"],
                                    "steps": e["reported"], **e["actions"]}
                                   for entry in data["seeds"] for e in entry["actions"]]
        tables["seeds_ablation"] = [{"seed": entry["seed"], "side": side, **entry["ablation"][side]}
                                    for entry in data["seeds"] if entry.get("ablation")
                                    for side in ("with_note", "without_note") if side in entry["ablation"]]
    if data.get("seeds"):
        tables["across_seeds"] = [{**{key: value for key, value in row.items() if key != "per_seed"},
                                   "as_base": " ".join(str(seed) for seed in row["as_base"])}
                                  for row in data["across_seeds"]]
        tables["seeds_pass_at_k"] = [{"seed": entry["seed"], **row} for entry in data["seeds"]
                                     for row in entry["pass_at_k"]]
    for name, rows in tables.items():
        if rows:
            write_csv(folder / f"{name}.csv", rows)
            written.append(folder / f"{name}.csv")
    for name, (title, x_label, series, log_x, ticks) in plots(data).items():
        (folder / f"{name}.svg").write_text(svg_plot(title, x_label, series, log_x=log_x, x_ticks=ticks))
        written.append(folder / f"{name}.svg")
        if write_png(folder / f"{name}.png", title, x_label, series, log_x, ticks):
            written.append(folder / f"{name}.png")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="the run's store")
    parser.add_argument("--run", type=int, help="run id (default: the latest)")
    parser.add_argument("--out", default="report", help="folder to write (default: ./report)")
    args = parser.parse_args(argv)
    try:
        for path in write_report(args.db, args.out, args.run):
            print(path)
    except LeafeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
