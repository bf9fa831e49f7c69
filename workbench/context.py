"""What every stage receives: the store, the run, the config, the environment suite, lazily
created models, a progress reporter and a cancel flag.

Models are created on first use and shared between stages of one run, so a run that only
curates never loads torch.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import sqlite_utils
from sqlite_utils.db import NotFoundError

from store import queries
from store.db import LOCK_RETRIES, open_store, transaction
from workbench.config import Config, ModelConfig, config_from_dict
from workbench.errors import Cancelled, LeafeError

if TYPE_CHECKING:
    from workbench.envs import Suite
    from workbench.models.base import Generator


class Progress(Protocol):
    """How stages report progress: Rich bars on the command line, messages in the TUI."""

    def start(self, stage: str, total: int | None, description: str) -> None: ...

    def advance(self, amount: int = 1, **fields: Any) -> None: ...

    def finish(self) -> None: ...

    def event(self, kind: str, **data: Any) -> None:
        """Something a viewer may show at once: `node` (a new step), `message` (a line),
        `episode` (an episode of `stage` ended), `run_started` (`run_id` is the run's) ... A viewer ignores kinds it does not know."""
        ...


class SilentProgress:
    """The default: report nothing."""

    def start(self, stage: str, total: int | None, description: str) -> None:
        pass

    def advance(self, amount: int = 1, **fields: Any) -> None:
        pass

    def finish(self) -> None:
        pass

    def event(self, kind: str, **data: Any) -> None:
        pass


def model_key(config: ModelConfig) -> tuple:
    return (config.backend, config.name, config.script, config.adapter, config.dtype, config.device)


@dataclass
class StageContext:
    db: sqlite_utils.Database
    run_id: int
    config: Config
    suite: Suite
    progress: Progress = field(default_factory=SilentProgress)
    cancel: threading.Event = field(default_factory=threading.Event)
    generators: dict[tuple, Generator] = field(default_factory=dict)
    snapshots: OrderedDict[int, Any] = field(default_factory=OrderedDict)
    messages: list[str] = field(default_factory=list)
    snapshot_capacity: int = 4096
    usage_since: float = field(default_factory=time.monotonic)
    """When the wall time stored for the run was last brought up to date."""
    tally: dict[str, Any] = field(default_factory=dict)
    """The running stage's counts. The pipeline stores them with the stage when it stops
    early and hands them back when it resumes, so a resumed stage's summary counts what
    every part of it did, not only the last (`counts`)."""

    def counts(self, **zeros: Any) -> dict[str, Any]:
        """The stage's tally, starting from `zeros` where nothing was counted before a stop."""
        for key, value in zeros.items():
            self.tally.setdefault(key, value)
        return self.tally

    @classmethod
    @contextmanager
    def for_run(
        cls,
        db_path: str | Path,
        run_id: int,
        *,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[StageContext]:
        """The context a stage of stored run `run_id` gets, outside the pipeline (a branch
        by hand, a job of the TUI): the run's own config and suite, on a store opened here.
        The store, the suite and any model are closed when the block ends."""
        from workbench.envs import open_suite

        db = open_store(db_path)
        try:
            try:
                run = queries.get_run(db, run_id)
            except NotFoundError:
                raise LeafeError(f"no run {run_id} in {db_path}") from None
            config = config_from_dict(run["config"])
            suite = open_suite(config.env)
            context = cls(db=db, run_id=run_id, config=config, suite=suite,
                          progress=progress or SilentProgress(), cancel=cancel or threading.Event())
            try:
                yield context
            finally:
                context.close()
                suite.close()
        finally:
            db.close()

    def generator(self, config: ModelConfig | None = None) -> Generator:
        """The model for `config` (default: the policy), created once per run."""
        from workbench.models import make_generator

        config = config or self.config.model
        if config.adapter:
            # `[model] adapter` may name an adapter in this store; the backends take folders.
            from workbench.distill.adapters import resolve_adapter

            config = dataclasses.replace(config, adapter=resolve_adapter(self.db, config.adapter))
            if config.backend not in ("hf", "scripted"):
                from workbench.distill.adapters import is_full_model_folder

                if is_full_model_folder(config.adapter):
                    # A full fine-tune is a model of its own: backends that serve LoRA on
                    # shared base weights (vllm, openai) load it as the model instead.
                    config = dataclasses.replace(config, name=config.adapter, adapter="")
        key = model_key(config)
        if key not in self.generators:
            start_counts = (
                queries.actions_per_task(self.db, self.run_id) if config.backend == "scripted" else None
            )
            label = config.script if config.backend == "scripted" else config.name
            self.progress.event("message", text=f"loading model {label} ({config.backend})")
            generator = make_generator(config, start_counts=start_counts)
            if hasattr(generator, "stop_event"):  # hf: a stop ends a batch mid-decode
                generator.stop_event = self.cancel
            self.generators[key] = generator
        return self.generators[key]

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()

    def say(self, text: str) -> None:
        """A line for the person running the stage (warnings, decisions)."""
        self.messages.append(text)
        self.progress.event("message", text=text)

    def remember_snapshot(self, node_id: int, state: Any) -> None:
        # Bounded: a soak run of thousands of episodes must not grow without limit; a
        # forgotten snapshot only costs a deterministic replay.
        self.snapshots[node_id] = state
        self.snapshots.move_to_end(node_id)
        while len(self.snapshots) > self.snapshot_capacity:
            self.snapshots.popitem(last=False)

    def record_usage(self, tokens: int = 0, *, retries: int = LOCK_RETRIES) -> None:
        """Add `tokens` and the wall time since the last call to the run's provenance.

        Every stage's time counts (training, curation, export, not only rollouts), and a
        resumed run adds to what it had. The clock moves on only once the store has it, so
        a write that gives up (a locked store) loses nothing a later call could add.
        """
        moment = time.monotonic()
        with transaction(self.db, retries=retries):
            queries.add_run_usage(self.db, self.run_id, tokens=tokens, seconds=moment - self.usage_since)
        self.usage_since = moment

    def close(self) -> None:
        for generator in self.generators.values():
            generator.close()
        self.generators.clear()


class Stopwatch:
    """Counts the tokens a stage generates and stores them (with the time so far) when
    its rollouts end; each token is counted once, by the stopwatch of the call that made it."""

    def __init__(self, context: StageContext) -> None:
        self.context = context
        self.tokens = 0

    def add_tokens(self, count: int) -> None:
        self.tokens += count

    def flush(self) -> None:
        self.context.record_usage(tokens=self.tokens)
        self.tokens = 0
