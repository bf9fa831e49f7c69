"""Where a run will write, checked against what it must never overwrite, before anything
is written.

`[export] path = "s.db"` once turned the store into a JSONL file and every run in it was
lost. A run's inputs (the store and its side files, the config file, the task file, the
script) are protected: an output path that resolves to one of them, or a folder output
that holds one, is refused in one line naming the key. Output *names* (export.name,
distill.name) are plain names, checked when the config loads (workbench/config.py), so
they never leave the folders they are made in. `protected_inputs` is also what the run
hands to `workbench.files.protected_files`, the second guard every atomic write obeys.
"""

from __future__ import annotations

from pathlib import Path

from workbench.config import Config, ModelConfig
from workbench.errors import ConfigError
from workbench.files import SQLITE_SIDE_FILES, clash


def protected_inputs(config: Config, *, db_path: str | Path, config_path: str | Path = "") -> dict[Path, str]:
    """Every file the run reads or keeps and must never replace -> what it is, in words."""
    store = Path(db_path)
    protected = {store: f"the store ({store})"}
    for suffix in SQLITE_SIDE_FILES:
        side = store.with_name(store.name + suffix)
        protected[side] = f"the store's {suffix[1:]} file ({side})"
    if config_path:
        protected[Path(config_path)] = f"the config file ({config_path})"
    if config.env.suite and Path(config.env.suite).is_file():
        protected[Path(config.env.suite)] = f"the task file env.suite ({config.env.suite})"
    models: list[tuple[str, ModelConfig | None]] = [("model", config.model), ("reflect.model", config.reflect.model)]
    for key, model in models:
        if model is not None and model.script:
            protected[Path(model.script)] = f"the script {key}.script ({model.script})"
    return protected


def check_output_paths(config: Config, *, db_path: str | Path, config_path: str | Path = "") -> None:
    """Raise `ConfigError` (one line naming the key) if an output path would replace a
    protected input, a folder holding one, or a SQLite database in use."""
    protected = [(path.resolve(), what) for path, what in protected_inputs(
        config, db_path=db_path, config_path=config_path
    ).items()]
    outputs = [("export.path", config.export.path, False), ("distill.output", config.distill.output, True)]
    for key, value, folder in outputs:
        if not value:
            continue
        # As the writers take them: export.path as written, distill.output with ~ expanded.
        path = Path(value).expanduser() if folder else Path(value)
        what = clash(path, protected, folder=folder)
        if what:
            raise ConfigError(f"config: {key} = {value!r} would overwrite {what}; choose another path")
        if not folder and path.is_dir():
            raise ConfigError(f"config: {key} = {value!r} is a folder; give the JSONL file to write")


def suffixed_path(path: str, suffix: str) -> str:
    """`out/data.jsonl` as `out/data<suffix>.jsonl`, so each round or seed writes a file of its
    own beside the configured one; an empty path stays empty (the default path follows the
    name, which carries the suffix already)."""
    if not path:
        return path
    file = Path(path)
    return str(file.with_name(f"{file.stem}{suffix}{file.suffix}"))
