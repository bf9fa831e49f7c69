"""The project's own error types: each carries a one-line message meant for a person.

The errors the store raises (`LeafeError`, the base of all, `StoreError`, `StoreLocked`,
`LeakageError`) live in `store.errors`, below the core, and are re-exported here so the
core and the screens import every error from one place.
"""

from store.errors import LeafeError, LeakageError, StoreError, StoreLocked

__all__ = [
    "ActionParseError",
    "ConfigError",
    "EnvironmentSetupError",
    "LeafeError",
    "LeakageError",
    "ModelNotFoundError",
    "NothingToTrain",
    "StoreError",
    "StoreLocked",
]


class ConfigError(LeafeError):
    """A config file is missing, malformed, or holds an unknown key or a wrong type."""


class ModelNotFoundError(LeafeError):
    """A model name is neither the embedded model, a local folder, nor a cached Hugging Face id."""


class EnvironmentSetupError(LeafeError):
    """An environment or its task list cannot be loaded."""


class ActionParseError(LeafeError):
    """A model's text could not be read as an action; the step is recorded as failed."""


class NothingToTrain(LeafeError):
    """A training stage found no examples (no approved correction, no successful episode).

    The pipeline records the stage as skipped with this message instead of failing the
    run, and evaluation leaves out the adapter that was never trained.
    """

    def __init__(self, message: str, adapter: str = "") -> None:
        super().__init__(message)
        self.adapter = adapter


class Cancelled(Exception):
    """Raised inside a stage (or a model's generate) when the user asked to stop; finished
    steps are already committed."""
