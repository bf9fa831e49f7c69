"""The project's own error types: each carries a one-line message meant for a person."""


class LeafeError(Exception):
    """Base of every error the project raises on purpose; the CLI prints it in one line."""


class ConfigError(LeafeError):
    """A config file is missing, malformed, or holds an unknown key or a wrong type."""


class ModelNotFoundError(LeafeError):
    """A model name is neither the embedded model, a local folder, nor a cached Hugging Face id."""


class StoreError(LeafeError):
    """A store is not SQLite, is corrupt, is from a newer schema, or stays locked."""


class StoreLocked(StoreError):
    """Another writer held the store's lock through every retry; nothing was half-written,
    so a run stopped by it resumes with `--resume` once the other writer is done."""

    def __init__(self, path: str, tries: int) -> None:
        super().__init__(f"store {path} is locked by another writer; gave up after {tries} tries")
        self.path = path
        self.tries = tries


class EnvironmentSetupError(LeafeError):
    """An environment or its task list cannot be loaded."""


class ActionParseError(LeafeError):
    """A model's text could not be read as an action; the step is recorded as failed."""


class LeakageError(LeafeError):
    """A correction's trained action would copy a run of words from its experience note
    (the leakage check); the change that caused it was refused and nothing was saved."""


class NothingToTrain(LeafeError):
    """A training stage found no examples (no approved correction, no successful episode).

    The pipeline records the stage as skipped with this message instead of failing the
    run, and evaluation leaves out the adapter that was never trained.
    """

    def __init__(self, message: str, adapter: str = "") -> None:
        super().__init__(message)
        self.adapter = adapter
