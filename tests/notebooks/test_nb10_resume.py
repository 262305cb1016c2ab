"""Notebook 10's own training loop (``train_run`` in solutions/10_full_training_run.ipynb) resumes
a run exactly: stopped at a checkpoint and resumed into a model with other weights, it gives the
same losses and parameters as the run that never stopped (dropout on, gradient accumulation on,
batches and dropout seeded by step, the reference save/load as the learner's answers)."""

from __future__ import annotations

import dataclasses
import shutil

import nbformat
import pytest
import torch

from conftest import SOLUTIONS


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    """The namespace of notebook 10's code cells, up to the one defining train_run, in fast mode."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GPT2COURSE_FAST", "1")
    mp.chdir(tmp_path_factory.mktemp("nb10"))  # its checkpoint folder is runs/ in the current folder
    import matplotlib
    matplotlib.use("Agg")
    nb = nbformat.read(SOLUTIONS / "10_full_training_run.ipynb", as_version=4)
    ns: dict = {}
    try:
        for cell in nb.cells:
            if cell.cell_type != "code" or "check(" in cell.source:
                continue
            exec(compile(cell.source, f"<cell {cell.id}>", "exec"), ns)
            if "def train_run(" in cell.source:
                break
        else:
            pytest.fail("notebook 10 has no cell defining train_run")
        yield ns
    finally:
        mp.undo()


def test_a_resumed_run_is_the_same_run(notebook, tmp_path):
    ns = notebook
    assert ns["device"].type == "cpu" and ns["dtype"] is None and not ns["COMPILE"]
    s = dataclasses.replace(ns["settings"], max_steps=6, checkpoint_interval=3, eval_interval=3,
                            dropout=0.1, batch_size=4, micro_batch_size=2)
    saved = ns["save_checkpoint"]

    def save_and_keep_step_3(path, model, optimizer, step, scaler=None):
        saved(path, model, optimizer, step, scaler)
        if step == 3:  # what a run stopped after step 3 would have left behind
            (tmp_path / "b").mkdir(exist_ok=True)
            shutil.copy(path, tmp_path / "b" / "checkpoint.safetensors")

    ns["save_checkpoint"] = save_and_keep_step_3
    try:
        torch.manual_seed(0)
        straight = ns["fuse"](ns["GPT"](ns["gpt_config"](s)), head=True)
        plot_a, _ = ns["train_run"](straight, s, tmp_path / "a")
    finally:
        ns["save_checkpoint"] = saved
    torch.manual_seed(1)  # other weights: the checkpoint must replace them all
    resumed = ns["fuse"](ns["GPT"](ns["gpt_config"](s)), head=True)
    plot_b, _ = ns["train_run"](resumed, s, tmp_path / "b", resume=True)

    assert plot_a.train_steps == [1, 2, 3, 4, 5, 6] and plot_b.train_steps == [4, 5, 6]
    assert plot_b.train_losses == plot_a.train_losses[3:]
    assert plot_b.val_losses == plot_a.val_losses[-1:]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_dropout_and_batches_depend_on_the_step_not_on_history(notebook, tmp_path):
    # Without the per-step seeds a resumed run would draw other batches: the same settings with
    # another seed must give other losses (the test above would pass trivially otherwise).
    ns = notebook
    s = dataclasses.replace(ns["settings"], max_steps=3, dropout=0.1, checkpoint_interval=3, eval_interval=3)
    losses = []
    for seed in (0, 1):
        torch.manual_seed(0)
        model = ns["GPT"](ns["gpt_config"](s))
        plot, _ = ns["train_run"](model, dataclasses.replace(s, seed=seed), tmp_path / str(seed))
        losses.append(plot.train_losses)
    assert losses[0] != losses[1]
