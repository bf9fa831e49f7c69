"""What a launch of several processes shares about one distillation: the plan (which
dataset, settings, model, adapter name and folder) that the main process settles and the
others train on.

The distill stage (the main process) sends it; `workbench.distill.launch` (every other
process) receives it. Both import this module, and neither imports the other for it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from workbench.config import DistillConfig, ModelConfig

# The variables accelerate itself reads for the number of processes (torchrun, MPI).
PROCESS_COUNT_VARIABLES = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


@dataclass
class DistillPlan:
    """The arguments of `workbench.distill.stage.train_adapter` that every process trains with."""

    dataset_path: str
    dataset_id: int | None
    settings: DistillConfig
    model: ModelConfig
    name: str
    output: str
    run_id: int | None
    kind: str = "leafe"
    env_steps: int | None = None
    metrics: dict[str, Any] | None = None

    def arguments(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


_sent = False


def launched_processes() -> int:
    """How many processes this launch has (1 outside `accelerate launch` / torchrun)."""
    for name in PROCESS_COUNT_VARIABLES:
        value = os.environ.get(name, "")
        if value.strip().isdigit() and int(value) > 0:
            return int(value)
    return 1


def exchange(plan: DistillPlan | None) -> DistillPlan | None:
    """The main process's plan (None: nothing to train), sent from it and received
    everywhere else; every process of the launch must call it once."""
    global _sent
    from accelerate.utils import broadcast_object_list

    box = [plan]
    broadcast_object_list(box, from_process=0)
    _sent = True
    return box[0]


def send_plan(plan: DistillPlan) -> None:
    """The main process's distill stage, just before it trains: under a launch of several
    processes, the others train on the same plan."""
    if launched_processes() > 1:
        exchange(plan)


def sent() -> bool:
    """Whether this process has taken part in the exchange already."""
    return _sent
