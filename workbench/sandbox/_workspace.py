"""The folder a sandbox server gives each submission as cwd and HOME.

Layout: <server folder>/run-*/home/sandbox/work. cwd sits a few levels down so relative
escapes such as ../../escape.txt land inside the server's own folder, which is emptied
after every submission. When submissions run as a uid of their own (the workbench runs
as root), the server's folder and the skeleton belong to that uid and everything above
them to root (0700), so `../` can climb no further than the server's folder. Absolute
paths are as protected as the user submissions run as. The skeleton is emptied and reused rather than recreated: removing folders
costs milliseconds on some disks (ext4 with discard), a fifth of a submission.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile

PARTS = ("home", "sandbox", "work")


class Workspace:
    def __init__(self, base: str, owner: int | None = None) -> None:
        """`owner`: the uid (and gid) submissions run as, when not the server's own."""
        self.base = base
        self.owner = owner
        self.scratch: list[tuple[str, set[str]]] = []
        """The server's private /tmp and the like, emptied after every submission but for
        the names the server keeps there."""
        self.workdir: str | None = None
        self.levels: list[str] = []

    def ready(self) -> str:
        """An empty private folder for the next submission."""
        if self.workdir is None:
            path = tempfile.mkdtemp(prefix="run-", dir=self.base)
            self.levels = [path]
            for part in PARTS:
                path = os.path.join(path, part)
                os.mkdir(path, 0o700)
                self.levels.append(path)
            if self.owner is not None:
                for level in self.levels:
                    os.chown(level, self.owner, self.owner)
            self.workdir = path
        return self.workdir

    def clean(self) -> None:
        """Remove everything the submission created anywhere under the server's folder."""
        if self.workdir is None:
            return
        intact = True
        for level, keep in zip([self.base, *self.levels], [*self.levels, None], strict=True):
            try:
                entries = list(os.scandir(level))
            except OSError:
                entries, intact = [], False
            for entry in entries:
                if entry.path != keep:
                    remove(entry)
            if level != self.base and not is_plain_directory(level):
                intact = False
        if not intact or os.listdir(self.workdir):
            # Something resisted cleaning, or the folders were replaced: start a new skeleton;
            # the old one goes when the server exits.
            self.workdir = None
        for folder, keep in self.scratch:
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                if entry.name not in keep:
                    remove(entry)


def remove(entry: os.DirEntry) -> None:
    try:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            os.unlink(entry.path)
    except OSError:
        pass


def is_plain_directory(path: str) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
