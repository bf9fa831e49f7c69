"""The Textual interface of leafe-tui. The core (workbench/, store/) never imports it.

Importing this package first keeps start-up under two seconds: sqlite_utils imports
pandas (about a second on a small machine) only to map pandas values in inserts, which
the interface never makes. So pandas is kept out while sqlite_utils loads; anything that
needs pandas later (a training worker's `datasets`) imports it as usual.
"""

from __future__ import annotations

import importlib
import sys
from importlib.abc import MetaPathFinder


class _PandasLater(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):  # noqa: ANN001
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("pandas is imported later, when something needs it", name=name)
        return None


def _load_sqlite_utils_without_pandas() -> None:
    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        return
    finder = _PandasLater()
    sys.meta_path.insert(0, finder)
    try:
        importlib.import_module("sqlite_utils")
    finally:
        sys.meta_path.remove(finder)


_load_sqlite_utils_without_pandas()
