"""The records a submission's child sends on its result pipe, read as untrusted input.

The child runs the submitted program in its own process, so the program can write
anything to that pipe: a bare `5`, fifty forged passing checks, a nesting deep enough to
break a JSON parser, or gigabytes. Only well-formed records count: a check record names
its check by `index` (one of the checks that were sent, the latest record for an index
wins), a final record has a status the child can report, every field has its type and a
bounded length, and anything else is dropped. So `passed` never exceeds the number of
checks sent and a forged record can at worst claim what the real checks could.
"""

from __future__ import annotations

import json
from typing import Any

FINAL_STATUSES = ("ok", "syntax_error", "exception", "memory", "file_size", "exited")
"""What the child's own final record may say; the server's verdicts (timeout ...) are its own."""
TEXT_LIMIT = 2000
"""Characters kept of a record's short texts (the child cuts its own at 500)."""
TRACE_LIMIT = 20000
LINE_LIMIT = 1 << 20
"""Bytes of one record line; a longer line is dropped whole."""
CHECK_TEXTS = ("expected", "actual", "error", "assert", "actual_of", "input", "verdict")
"""`input` and `verdict`: a stdin/stdout test's (see _stdio)."""
ERROR_TEXTS = ("type", "message", "text")
ERROR_NUMBERS = ("line", "offset")


class Records:
    """What one submission reported, as far as it is well formed."""

    def __init__(self, total: int, byte_limit: int) -> None:
        """`total`: checks sent; `byte_limit`: bytes of records read before the
        submission counts as flooding its result pipe."""
        self.total = total
        self.byte_limit = byte_limit
        self.checks: dict[int, dict[str, Any]] = {}
        self.final: dict[str, Any] | None = None
        self.bytes_read = 0
        self.dropped = 0
        self._pending = bytearray()
        self._skipping = False  # inside a line longer than LINE_LIMIT

    @property
    def flooded(self) -> bool:
        return self.bytes_read > self.byte_limit

    def feed(self, chunk: bytes) -> None:
        """Take bytes as they arrive; complete lines become records."""
        self.bytes_read += len(chunk)
        if self.flooded:
            return
        *lines, rest = chunk.split(b"\n")
        for line in lines:
            if self._skipping:
                self._skipping = False
                self._pending.clear()
                self.dropped += 1
                continue
            self.add_line(bytes(self._pending) + line)
            self._pending.clear()
        if not self._skipping:
            self._pending += rest
            if len(self._pending) > LINE_LIMIT:
                self._pending.clear()
                self._skipping = True

    def add_line(self, line: bytes) -> None:
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, or nested deep enough to break the parser
            self.dropped += 1
            return
        record = well_formed(value, self.total)
        if record is None:
            self.dropped += 1
        elif record.pop("kind") == "check":
            self.checks[record.pop("index")] = record
        else:
            self.final = record

    def ran(self) -> list[dict[str, Any]]:
        """Check records in order, as far as they ran: 0, 1, ... up to the first missing one."""
        found = []
        for index in range(self.total):
            if index not in self.checks:
                break
            found.append(dict(self.checks[index]))
        return found


def well_formed(value: Any, total: int) -> dict[str, Any] | None:
    """The record with only its known fields, each checked and cut; None if it is not one."""
    if not isinstance(value, dict):
        return None
    kind = value.get("kind")
    if kind == "check":
        return check_record(value, total)
    if kind == "final":
        return final_record(value)
    return None


def check_record(value: dict[str, Any], total: int) -> dict[str, Any] | None:
    index, passed = value.get("index"), value.get("passed")
    if type(index) is not int or not 0 <= index < total or type(passed) is not bool:
        return None
    record: dict[str, Any] = {"kind": "check", "index": index, "passed": passed}
    for key in CHECK_TEXTS:
        text = value.get(key)
        if text is not None and not isinstance(text, str):
            return None
        if text is not None or key in ("expected", "actual", "error"):
            record[key] = cut(text, TEXT_LIMIT)
    return record


def final_record(value: dict[str, Any]) -> dict[str, Any] | None:
    status = value.get("status", "ok")
    if status not in FINAL_STATUSES:
        return None
    record: dict[str, Any] = {"kind": "final", "status": status}
    for key, limit in (("message", TEXT_LIMIT), ("trace", TRACE_LIMIT)):
        text = value.get(key)
        if text is not None and not isinstance(text, str):
            return None
        if text is not None:
            record[key] = cut(text, limit)
    exit_code = value.get("exit_code")
    if exit_code is not None:
        if type(exit_code) is not int:
            return None
        record["exit_code"] = exit_code
    error = value.get("error")
    if error is not None:
        error = error_fields(error)
        if error is None:
            return None
        record["error"] = error
    return record


def error_fields(value: Any) -> dict[str, Any] | None:
    """{type, message, line, ...} of a syntax error or exception, or None if malformed."""
    if not isinstance(value, dict):
        return None
    error: dict[str, Any] = {}
    for key in ERROR_TEXTS:
        text = value.get(key)
        if text is not None and not isinstance(text, str):
            return None
        if key in value:
            error[key] = cut(text, TEXT_LIMIT)
    for key in ERROR_NUMBERS:
        number = value.get(key)
        if number is not None and type(number) is not int:
            return None
        if key in value:
            error[key] = number
    return error


def cut(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 3] + "..."
