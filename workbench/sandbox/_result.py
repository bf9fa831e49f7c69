"""What one submission did, as the workbench sees it: `SandboxResult` and its statuses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = (
    "ok", "syntax_error", "exception", "timeout", "memory", "cpu", "output_limit",
    "file_size", "process_limit", "exited", "killed", "server_died",
)


@dataclass
class SandboxResult:
    """What one submission did. `checks`: one dict per check, in order, as far as they ran:
    {source, passed, expected, actual, error} (expected/actual are short reprs or None)."""

    status: str
    message: str
    stdout: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)
    passed: int = 0
    total: int = 0
    trace: str = ""
    duration: float = 0.0
    error: dict[str, Any] | None = None
    """{type, message, line} of a syntax error or of the first exception, line in the program."""

    @property
    def succeeded(self) -> bool:
        """Ran to the end and every check passed."""
        return self.status == "ok" and self.passed == self.total

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_answer(cls, answer: Any, sources: list[str], duration: float) -> SandboxResult | None:
        """The result a server answered, with each check's source; None if the answer is not
        one (a server a submission tampered with is then treated as dead)."""
        if not isinstance(answer, dict) or answer.get("status") not in STATUSES:
            return None
        raw_checks = answer.get("checks")
        checks = [dict(check) for check in raw_checks[: len(sources)] if isinstance(check, dict)] \
            if isinstance(raw_checks, list) else []
        for check, source in zip(checks, sources, strict=False):
            check["source"] = source
        error = answer.get("error")
        return cls(
            status=answer["status"], message=text(answer.get("message")), stdout=text(answer.get("stdout")),
            checks=checks, passed=min(sum(1 for c in checks if c.get("passed") is True), len(sources)),
            total=len(sources), trace=text(answer.get("trace")),
            duration=answer["duration"] if isinstance(answer.get("duration"), float | int) else duration,
            error=error if isinstance(error, dict) else None,
        )


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""
