"""Training seeds: `[experiment] seeds = [0, 1, 2]` repeats a run's stages (data collection,
training, evaluation) once per seed, and reports each policy's mean and spread over seeds.

Each seed's episodes, corrections, adapters and results live in a seed run of its own
(store/seeds.py: a `runs` row whose parent is the run a person started), so every stage
works on it exactly as on a single run. The parent's stage rows carry their seed, so
`--resume` skips the finished stages of finished seeds. Seed s sees the run's config with
every sampling and training seed shifted by `s * SEED_STRIDE` (seed 0 is the configured
run itself) and its names suffixed `-seed<s>`: adapter `leafe-run-<run>-seed<s>` (and
`-round<r>` after it in LEAFE rounds), dataset likewise, baselines `rft-run-<run>-seed<s>`;
`{run}` in `evaluate.policies` stands for `<run>-seed<s>`. One seed is today's run: no seed
run, no suffix.

Across seeds, a policy is its name with the seed suffix taken out (`adapter:leafe-run-3`
for `adapter:leafe-run-3-seed1`), and its Pass@k over seeds is summarised by mean, sample
standard deviation (0 for one seed), min and max. A seed where a method had nothing to
train on counts the base model's score for it (the model it left unchanged), and says so.
Paired statistics stay per seed.
"""

from __future__ import annotations

import dataclasses
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from store import seeds as stored_seeds
from workbench.config import Config
from workbench.context import StageContext
from workbench.outputs import suffixed_path

SEED_STRIDE = 1_000_003  # seed s samples far from seed 0's waves and levels (explore.seed + w, + 1000 * level)
SEED_SPAN = 2**32  # numpy's seeds stop here; shifted seeds wrap around inside it


def training_seeds(config: Config) -> list[int | None]:
    """The seeds a run repeats its stages for; [None] for one seed (no seed runs)."""
    seeds = config.experiment.seeds
    return [None] if len(seeds) == 1 else list(seeds)


def shifted(value: int, seed: int) -> int:
    return (value + seed * SEED_STRIDE) % SEED_SPAN


def with_seed(name: str, seed: int) -> str:
    return f"{name}-seed{seed}"


def with_seed_path(path: str, seed: int) -> str:
    return suffixed_path(path, f"-seed{seed}")


def shift_seeds(config: Config, seed: int) -> Config:
    """The config with every sampling and training seed shifted by training seed `seed`."""
    return dataclasses.replace(
        config,
        explore=dataclasses.replace(config.explore, seed=shifted(config.explore.seed, seed)),
        distill=dataclasses.replace(config.distill, seed=shifted(config.distill.seed, seed)),
        evaluate=dataclasses.replace(config.evaluate, seed=shifted(config.evaluate.seed, seed)),
    )


def seeded_config(config: Config, run_id: int, seed: int) -> Config:
    """The config seed `seed` of run `run_id` runs with: its seeds shifted, its dataset and
    adapter names (and their paths, when set) suffixed `-seed<s>`, one seed of its own."""
    config = shift_seeds(config, seed)
    stem = f"leafe-run-{run_id}"
    export = dataclasses.replace(
        config.export, name=with_seed(config.export.name or stem, seed), path=with_seed_path(config.export.path, seed)
    )
    distill = dataclasses.replace(
        config.distill, name=with_seed(config.distill.name or stem, seed),
        output=with_seed_path(config.distill.output, seed),
    )
    experiment = dataclasses.replace(config.experiment, seeds=[seed])
    return dataclasses.replace(config, export=export, distill=distill, experiment=experiment)


def run_config(config: Config) -> Config:
    """The config a one-seed run's stages see: its seeds shifted by that seed (0: unchanged)."""
    seeds = config.experiment.seeds
    return shift_seeds(config, seeds[0]) if len(seeds) == 1 and seeds[0] else config


def label(run_id: int, seed: int | None) -> str:
    """What `{run}` and the default names say for a run: `3`, or `3-seed1` for its seed 1."""
    return str(run_id) if seed is None else f"{run_id}-seed{seed}"


def run_label(context: StageContext) -> str:
    """The label of the run a stage works in (a seed run says its parent and seed)."""
    parent = stored_seeds.parent_of(context.db, context.run_id)
    return label(*parent) if parent else str(context.run_id)


def stage_key(stage_key_in_run: str, seed: int | None) -> str:
    """A stage's key in the run's summaries (`--json` "stages"): `seed1/distill@2`."""
    return stage_key_in_run if seed is None else f"seed{seed}/{stage_key_in_run}"


# -- across seeds ---------------------------------------------------------------------


def seedless(policy: str, seed: int) -> str:
    """The policy's name across seeds: its `-seed<s>` suffix taken out."""
    return re.sub(rf"-seed{seed}(?=$|-|/)", "", policy)


def evaluations(summaries: Mapping[str, Any], seeds: Sequence[int]) -> dict[int, dict]:
    """seed -> its `evaluate` summary, for the seeds whose evaluation finished."""
    found = {}
    for seed in seeds:
        summary = summaries.get(stage_key("evaluate", seed)) or {}
        if summary.get("table"):
            found[seed] = summary
    return found


def across_seeds(
    tables: Mapping[int, Mapping[str, Mapping[str, Mapping[str, float]]]],
    untrained: Mapping[int, Iterable[str]] | None = None,
) -> list[dict[str, Any]]:
    """Each policy's Pass@k over the seeds: one row per (policy, k) with `mean`, `std`
    (sample standard deviation; 0 with one seed), `min`, `max`, `seeds` (how many),
    `per_seed` ({seed: Pass@k}) and `as_base`, in the order the policies and k first appear.

    `untrained`: seed -> the policies its evaluation left out because their training had
    nothing to train on. The method then delivered the base model unchanged (a round's
    dataset holds every earlier round's corrections, so its last round trains if any
    did), so on that seed the policy scores base's Pass@k, and `as_base` lists those
    seeds. Dropping the seed instead would average a method over the seeds it happened
    to train on."""
    values: dict[tuple[str, str], dict[int, float]] = {}
    as_base: dict[str, list[int]] = {}
    for seed, table in tables.items():
        for policy, row in table.items():
            for k, entry in row.items():
                values.setdefault((seedless(policy, seed), str(k)), {})[seed] = entry["pass_at_k"]
        base = table.get("base", {})
        for policy in (untrained or {}).get(seed, ()):
            name = seedless(policy, seed)
            if base and policy not in table:
                as_base.setdefault(name, []).append(seed)
                for k, entry in base.items():
                    values.setdefault((name, str(k)), {})[seed] = entry["pass_at_k"]
    rows = []
    for (policy, k), per_seed in values.items():
        per_seed = dict(sorted(per_seed.items()))
        scores = list(per_seed.values())
        rows.append({
            "policy": policy, "k": int(k), "mean": statistics.fmean(scores),
            "std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
            "min": min(scores), "max": max(scores), "seeds": len(scores),
            "per_seed": {str(seed): score for seed, score in per_seed.items()},
            "as_base": sorted(as_base.get(policy, [])),
        })
    return rows


def seeds_cell(row: Mapping[str, Any]) -> str:
    """The `seeds` column: how many, and which of them scored as base (nothing trained)."""
    as_base = row.get("as_base") or []
    if not as_base:
        return str(row["seeds"])
    return f"{row['seeds']} (base on {', '.join(str(seed) for seed in as_base)}: nothing to train)"


def across_seeds_table(rows: Sequence[Mapping[str, Any]]):
    """The batch's table of each policy's Pass@k over seeds (rich)."""
    from rich.table import Table

    view = Table(title="Pass@k over training seeds: mean ± standard deviation [min, max]")
    for name in ("policy", "k", "seeds", "mean ± std", "min", "max"):
        view.add_column(name, justify="left" if name == "policy" else "right")
    for row in rows:
        view.add_row(row["policy"], str(row["k"]), seeds_cell(row), f"{row['mean']:.3f} ± {row['std']:.3f}",
                     f"{row['min']:.3f}", f"{row['max']:.3f}")
    return view
