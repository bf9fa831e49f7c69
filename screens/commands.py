"""The command palette (ctrl+p): every action of the current screen, then the workbench's
screens, then the few of Textual's own commands a person wants (Screenshot, Theme). It is
the app's only provider, so Textual's widget-help panel and its internals stay out."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

NAVIGATION = (
    ("Runs: the home screen", "app.go_home", "List every run in the store"),
    ("New run", "app.new_run", "Start exploration on a config file or a form"),
    ("Live run", "app.live", "Open the run that is running now"),
    ("Curate corrections", "app.curation", "Review the current run's corrections"),
    ("Distill an adapter", "app.distill", "Train LoRA on approved corrections"),
    ("Pass@k results", "app.results", "Compare policies and launch an evaluation"),
    ("Show keys", "app.help", "Every key of the current screen"),
    ("Quit", "app.quit", "Leave leafe-tui"),
)

# Last in the list: not the workbench's work, but handy.
APPEARANCE = (
    ("Screenshot", "app.screenshot", "Save an SVG of this screen beside the store (or in the current folder)"),
    ("Theme", "app.change_theme", "Change the colours"),
)


class WorkbenchCommands(Provider):
    """Commands from the screen's bindings, then the workbench's screens."""

    def commands(self) -> list[tuple[str, Callable[[], object], str]]:
        screen = self.screen
        found: dict[str, tuple[str, Callable[[], object], str]] = {}
        # The workbench's own bindings (each has an id; built-in widgets' have none), the
        # screen's before its widgets'; the app's keys are in NAVIGATION, said in full.
        bindings = sorted(screen.active_bindings.values(), key=lambda active: active.node is not screen)
        for active in bindings:
            binding = active.binding
            if not binding.id or not binding.description or binding.action.startswith("app.") or binding.system:
                continue
            if not active.enabled or active.node is self.app:
                continue
            node = active.node
            label = f"{binding.description} ({self.app.get_key_display(binding)})"
            found.setdefault(label, (label, partial(node.run_action, binding.action), binding.tooltip or ""))
        for title, action, help_text in NAVIGATION:
            found.setdefault(title, (title, partial(self.app.run_action, action), help_text))
        for title, action, help_text in APPEARANCE:
            # A moment after the palette has closed, so a screenshot shows the screen under it.
            later = partial(self.app.set_timer, 0.1, partial(self.app.run_action, action))
            found.setdefault(title, (title, later, help_text))
        return list(found.values())

    async def discover(self) -> Hits:
        for title, command, help_text in self.commands():
            yield DiscoveryHit(title, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, command, help_text in self.commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), command, help=help_text)
