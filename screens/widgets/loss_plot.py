"""A live training-loss curve (plotext through textual-plotext)."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from screens.plain_text import visible_line


class LossPlot(PlotextPlot):
    """Training loss by optimiser step; `set_points` redraws with the whole curve."""

    DEFAULT_CSS = """
    LossPlot {
        height: 1fr;
        min-height: 8;
    }
    """

    def __init__(self, title: str = "training loss", **kwargs) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.points: list[tuple[float, float]] = []

    def on_mount(self) -> None:
        self.draw()

    def set_points(self, points: list[tuple[float, float]]) -> None:
        self.points = list(points)
        self.draw()

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.title(self.title)
        plt.xlabel("step")
        plt.ylabel("loss")
        if self.points:
            xs, ys = zip(*self.points, strict=True)
            plt.plot(list(xs), list(ys), marker="braille")
        self.refresh()


class PassAtKPlot(PlotextPlot):
    """Pass@k against k, one line per policy."""

    DEFAULT_CSS = """
    PassAtKPlot {
        height: 1fr;
        min-height: 8;
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.curves: dict[str, list[tuple[int, float]]] = {}

    def on_mount(self) -> None:
        self.draw()

    def set_curves(self, curves: dict[str, list[tuple[int, float]]]) -> None:
        self.curves = dict(curves)
        self.draw()

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.title("Pass@k")
        plt.xlabel("k")
        plt.ylim(0, 1)
        ks = sorted({k for points in self.curves.values() for k, _ in points})
        if ks:
            plt.xticks(ks)
        for label, points in self.curves.items():
            xs = [k for k, _ in points]
            ys = [value for _, value in points]
            # A policy's name comes from a config or the store; plotext's output is read
            # back as ANSI, so an escape sequence in a label would be obeyed.
            plt.plot(xs, ys, label=visible_line(label), marker="braille")
        self.refresh()
