"""The live loss plot of notebook 08: it records what it is given, redraws through its display
handle, fits its y range to the data and refuses a diverged run with a clear message."""

from __future__ import annotations

import math

import pytest

from gpt2course.widgets.loss_plot import LossPlot


class FakeHandle:
    def __init__(self):
        self.updates = 0

    def update(self, fig):
        self.updates += 1


def make_plot(**kwargs):
    plot = LossPlot(display=False, **kwargs)
    plot._handle = FakeHandle()
    return plot


def test_records_curves_and_redraws_on_validation_points_and_every_n_steps():
    plot = make_plot(max_steps=100, landmarks={"ln V": math.log(50257)}, every=10)
    for step in range(25):
        plot.add(step, train_loss=10.0 - 0.1 * step, val_loss=9.5 if step == 13 else None)
    assert plot.train_steps == list(range(25))
    assert plot.val_steps == [13] and plot.val_losses == [9.5]
    # steps 0, 10, 20 by the interval, 13 for the validation point
    assert plot._handle.updates == 4
    plot.finish()
    assert plot._handle.updates == 5
    xs, ys = plot._train_line.get_data()
    assert list(xs) == list(range(25)) and ys[-1] == pytest.approx(7.6)
    assert list(plot._val_line.get_data()[0]) == [13]


def test_y_range_covers_the_data_and_the_landmarks():
    plot = make_plot(max_steps=50, landmarks={"uniform": 10.8, "unigram": 6.3})
    plot.add(0, train_loss=9.0)
    plot.add(1, train_loss=7.0, val_loss=7.2)
    low, high = plot.ax.get_ylim()
    assert low < 6.3 and high > 10.8
    assert plot.ax.get_xlim() == (0, 50)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_diverged_loss_is_named(bad):
    plot = make_plot(max_steps=10)
    with pytest.raises(ValueError, match="diverged"):
        plot.add(3, train_loss=bad)


def test_displays_through_an_updatable_handle_in_a_kernel_free_process():
    plot = LossPlot(max_steps=5)          # display=True outside a notebook: must not fail
    plot.add(0, train_loss=1.0, val_loss=1.0)
    plot.finish()


def test_rejects_an_empty_run():
    with pytest.raises(ValueError, match="max_steps"):
        LossPlot(max_steps=0, display=False)
