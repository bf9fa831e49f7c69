"""The errors the store raises, at the bottom of the project so the store imports nothing
above it. Each carries a one-line message meant for a person; `workbench.errors` re-exports
them beside the core's own."""


class LeafeError(Exception):
    """Base of every error the project raises on purpose; the CLI prints it in one line."""


class StoreError(LeafeError):
    """A store is not SQLite, is corrupt, is from a newer schema or another application,
    cannot be written, or stays locked."""


class StoreLocked(StoreError):
    """Another writer held the store's lock through every retry; nothing was half-written,
    so a run stopped by it resumes with `--resume` once the other writer is done."""

    def __init__(self, path: str, tries: int) -> None:
        super().__init__(f"store {path} is locked by another writer; gave up after {tries} tries")
        self.path = path
        self.tries = tries


class LeakageError(LeafeError):
    """A correction's trained action would copy a run of words from its experience note
    (the leakage check); the change that caused it was refused and nothing was saved."""
