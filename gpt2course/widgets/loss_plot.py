"""A loss curve that redraws in place while a training loop runs (notebook 08 and the GPU run).

Plain matplotlib shown through an IPython display handle, so it works in Colab, JupyterLab
and VS Code alike, and headless (tests, nbclient) it costs one small PNG per redraw.
"""

from __future__ import annotations

import math


class LossPlot:
    """Training loss per step and validation loss per evaluation, with horizontal landmarks.

    >>> plot = LossPlot(max_steps=200, landmarks={"uniform guess, ln V": 10.82})
    >>> plot.add(0, train_loss=10.9, val_loss=10.8)   # redraws every ``every`` steps and on
    ...                                                # every validation point
    >>> plot.finish()                                 # final redraw
    """

    def __init__(self, max_steps: int, landmarks: dict[str, float] | None = None, every: int = 10,
                 title: str | None = None, display: bool = True):
        import matplotlib.pyplot as plt

        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        self.every = max(1, int(every))
        self.landmarks = dict(landmarks or {})
        self.train_steps: list[int] = []
        self.train_losses: list[float] = []
        self.val_steps: list[int] = []
        self.val_losses: list[float] = []
        self.fig, self.ax = plt.subplots(figsize=(7.5, 3.8))
        plt.close(self.fig)  # shown only through the handle: no second copy at the cell's end
        ax = self.ax
        (self._train_line,) = ax.plot([], [], lw=1, alpha=0.55, color="#1f77b4",
                                      label="train loss (one batch)")
        (self._val_line,) = ax.plot([], [], "o-", ms=4, color="#d62728",
                                    label="validation loss (estimate_loss)")
        for i, (label, value) in enumerate(self.landmarks.items()):
            ax.axhline(value, ls="--", lw=1, color=["#555555", "#2ca02c", "#9467bd"][i % 3])
            ax.annotate(f"{label} = {value:.2f}", (1.0, value), xycoords=("axes fraction", "data"),
                        xytext=(-4, 3), textcoords="offset points", ha="right", va="bottom",
                        fontsize=8, color="#333333")
        ax.set_xlim(0, max_steps)
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy loss (nats)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
        if title:
            ax.set_title(title)
        self._handle = None
        if display:
            from IPython.display import display as show

            self._handle = show(self.fig, display_id=True)

    def add(self, step: int, train_loss: float | None = None, val_loss: float | None = None) -> None:
        """Record the losses of ``step``; redraw on validation points and every ``every`` steps."""
        for value, name in ((train_loss, "train_loss"), (val_loss, "val_loss")):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} at step {step} is {value}: the run has diverged "
                                 "(try a smaller learning rate or check the gradient clipping)")
        if train_loss is not None:
            self.train_steps.append(step)
            self.train_losses.append(float(train_loss))
        if val_loss is not None:
            self.val_steps.append(step)
            self.val_losses.append(float(val_loss))
        if val_loss is not None or step % self.every == 0:
            self.draw()

    def draw(self) -> None:
        """Redraw the curves with y limits that fit the data and the landmarks."""
        self._train_line.set_data(self.train_steps, self.train_losses)
        self._val_line.set_data(self.val_steps, self.val_losses)
        values = self.train_losses + self.val_losses + list(self.landmarks.values())
        if values:
            low, high = min(values), max(values)
            pad = 0.05 * (high - low) + 0.1
            self.ax.set_ylim(low - pad, high + pad)
        if self._handle is not None:
            self._handle.update(self.fig)

    def finish(self) -> None:
        """The final redraw, after the loop."""
        self.draw()
