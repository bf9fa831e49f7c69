"""Atomic writes: what a killed writer left beside a file or folder is removed by the next
write of it, and nothing a live writer or the user owns is touched."""

from __future__ import annotations

import os
import stat
import subprocess

from workbench.files import atomic_directory, atomic_write_text


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_next_write_removes_what_a_killed_writer_left(tmp_path):
    gone, alive = dead_pid(), os.getppid()
    (tmp_path / f".data.jsonl.{gone}-abc123.tmp").write_text("half")
    (tmp_path / f".data.jsonl.{alive}-abc123.tmp").write_text("still being written")
    (tmp_path / ".data.jsonl.notes").write_text("the user's")
    (tmp_path / f".other.jsonl.{gone}-abc123.tmp").write_text("another file's")
    atomic_write_text(tmp_path / "data.jsonl", "{}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([
        "data.jsonl", f".data.jsonl.{alive}-abc123.tmp", ".data.jsonl.notes", f".other.jsonl.{gone}-abc123.tmp",
    ])

    for leftover in (f".adapter.{gone}-x1y2.tmp", f".adapter.{gone}-x1y2.old"):
        (tmp_path / leftover).mkdir()
        (tmp_path / leftover / "adapter_model.safetensors").write_text("half")
    with atomic_directory(tmp_path / "adapter") as staging:
        (staging / "adapter_config.json").write_text("{}")
    with atomic_directory(tmp_path / "adapter") as staging:  # replaces the folder whole
        (staging / "adapter_config.json").write_text('{"r": 4}')
    assert (tmp_path / "adapter" / "adapter_config.json").read_text() == '{"r": 4}'
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".adapter")]


def test_written_files_and_folders_get_the_mode_a_plain_write_would(tmp_path):
    # Other users of a shared machine read exported datasets and adapters as they would
    # any file the user writes: the umask decides, not the temporary name's 0600.
    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "data.jsonl", "{}\n")
        with atomic_directory(tmp_path / "adapter") as staging:
            (staging / "adapter_config.json").write_text("{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "data.jsonl").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "adapter").stat().st_mode) == 0o755
