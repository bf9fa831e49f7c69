"""leafe-tui's core: configs, models, environments and the LEAFE stages.

Nothing in this package imports Textual or Rich's live widgets at import time; the
interface lives in `screens/` and talks to the core through plain functions.
"""

__version__ = "0.1.0"
