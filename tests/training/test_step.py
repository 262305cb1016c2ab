"""One optimizer step (gpt2course.training.step.TrainStep): accumulation, loss scaling,
clipping and zeroing, each on a model small enough to know the gradient it must produce."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from gpt2course.reference import GPT, GPTConfig
from gpt2course.training.step import TrainStep


class Recorder(torch.optim.SGD):
    """SGD that keeps a copy of the gradients it was asked to step with (None stays None)."""

    def __init__(self, params, lr=0.0):
        super().__init__(params, lr=lr)
        self.seen = []

    def step(self, closure=None):
        self.seen.append([None if p.grad is None else p.grad.clone()
                          for group in self.param_groups for p in group["params"]])
        return super().step(closure)


class Dot(nn.Module):
    """loss = w . x, so the gradient of w is x itself; ``unused`` never gets a gradient."""

    def __init__(self, n=3):
        super().__init__()
        self.w = nn.Parameter(torch.ones(n))
        self.unused = nn.Parameter(torch.zeros(n))
        self.autocast = []  # (enabled, dtype) seen in each forward

    def forward(self, x, y=None):
        self.autocast.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return None, (self.w * x).sum()


def _batch(x):
    """A micro-batch for ``Dot``: the inputs, and targets it ignores."""
    return torch.tensor(x), torch.zeros(0)


def _tiny_gpt():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=37, block_size=8, n_layer=2, n_head=2, n_embd=16))


def test_accumulated_micro_batches_give_one_big_batchs_gradient():
    torch.manual_seed(1)
    x = torch.randint(37, (8, 8))
    y = torch.randint(37, (8, 8))
    results = {}
    for parts in (1, 4):
        model = _tiny_gpt()
        optimizer = Recorder(model.parameters())
        result = TrainStep(model, optimizer)(list(zip(x.chunk(parts), y.chunk(parts))))
        results[parts] = (result, optimizer.seen[0])
    (whole, whole_grads), (micro, micro_grads) = results[1], results[4]
    assert micro.loss.dtype == torch.float64 and micro.loss.shape == ()
    assert micro.loss.item() == pytest.approx(whole.loss.item(), rel=1e-6)
    assert whole.loss.item() == pytest.approx(_tiny_gpt()(x, y)[1].item(), rel=1e-6)
    for a, b in zip(whole_grads, micro_grads):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-7)  # the mean, not the sum, of 4


def test_stale_gradients_are_dropped_and_set_to_none():
    model = Dot()
    model.w.grad = torch.full((3,), 100.0)      # left over from something else
    model.unused.grad = torch.ones(3)
    optimizer = Recorder(model.parameters())
    TrainStep(model, optimizer)([_batch([1.0, 2.0, 3.0])])
    w_grad, unused_grad = optimizer.seen[0]
    assert torch.equal(w_grad, torch.tensor([1.0, 2.0, 3.0]))
    assert unused_grad is None  # zero_grad(set_to_none=True): None, not a tensor of zeros
    assert model.unused.grad is None


def test_clipping_scales_the_gradient_to_the_norm_and_reports_the_norm_before():
    model = Dot()
    optimizer = Recorder(model.parameters())
    result = TrainStep(model, optimizer, grad_clip=1.0)([_batch([1.0, 2.0, 2.0])])
    assert result.grad_norm.item() == pytest.approx(3.0)
    torch.testing.assert_close(optimizer.seen[0][0], torch.tensor([1.0, 2.0, 2.0]) / 3.0)


def test_no_clipping_when_grad_clip_is_zero():
    model = Dot()
    optimizer = Recorder(model.parameters())
    result = TrainStep(model, optimizer, grad_clip=0.0)([_batch([30.0, 40.0, 0.0])])
    assert result.grad_norm is None
    assert torch.equal(optimizer.seen[0][0], torch.tensor([30.0, 40.0, 0.0]))


def test_the_optimizer_steps_the_parameters():
    model = Dot()
    TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.5))([_batch([1.0, 2.0, 3.0])])
    assert torch.equal(model.w.detach(), torch.tensor([0.5, 0.0, -0.5]))


@pytest.mark.parametrize("grad_clip", [0.0, 10.0])
def test_float16_scales_the_loss_and_the_optimizer_sees_true_gradients(grad_clip):
    model = Dot()
    optimizer = Recorder(model.parameters())
    step = TrainStep(model, optimizer, dtype=torch.float16, grad_clip=grad_clip)
    assert step.scaler.is_enabled() and step.scaler.get_scale() == 2.0 ** 16
    seen_by_backward = []
    model.w.register_hook(lambda g: seen_by_backward.append(g.clone()))
    result = step([_batch([1.0, 2.0, 3.0])])
    assert torch.equal(seen_by_backward[0], torch.tensor([1.0, 2.0, 3.0]) * 2.0 ** 16)  # scaled
    assert torch.equal(optimizer.seen[0][0], torch.tensor([1.0, 2.0, 3.0]))           # unscaled
    assert model.autocast == [(True, torch.float16)]
    assert result.loss.item() == 6.0
    assert step.scaler.state_dict()["_growth_tracker"] == 1


def test_float16_overflow_skips_the_step_and_lowers_the_scale():
    model = Dot()
    optimizer = Recorder(model.parameters(), lr=1.0)
    step = TrainStep(model, optimizer, dtype=torch.float16, grad_clip=1.0)
    step([_batch([1.0, float("inf"), 3.0])])
    assert optimizer.seen == []  # the scaler found inf gradients and did not call step()
    assert torch.equal(model.w.detach(), torch.ones(3))
    assert step.scaler.get_scale() == 2.0 ** 15


@pytest.mark.parametrize("dtype, autocast", [
    (None, (False, None)), (torch.float32, (False, None)), (torch.bfloat16, (True, torch.bfloat16)),
])
def test_autocast_only_below_float32_and_the_scaler_only_for_float16(dtype, autocast):
    model = Dot()
    step = TrainStep(model, Recorder(model.parameters()), dtype=dtype)
    assert not step.scaler.is_enabled()
    step([_batch([1.0, 1.0, 1.0])])
    enabled, seen = model.autocast[0]
    assert (enabled, seen if enabled else None) == autocast


def test_gradients_are_synchronised_once_under_ddp():
    """With ``forward`` a DistributedDataParallel-like wrapper, every micro-batch's backward but
    the last runs inside its ``no_sync()``."""
    model = Dot()
    inside = []

    class Wrapper:
        syncing = True

        @contextlib.contextmanager
        def no_sync(self):
            Wrapper.syncing = False
            yield
            Wrapper.syncing = True

        def __call__(self, x, y):
            inside.append(Wrapper.syncing)
            return model(x, y)

    in_backward = []
    model.w.register_hook(lambda grad: in_backward.append(Wrapper.syncing))
    TrainStep(model, Recorder(model.parameters()), forward=Wrapper())([_batch([1.0, 1.0, 1.0])] * 3)
    assert inside == [False, False, True] and in_backward == [False, False, True]


def test_a_step_needs_a_micro_batch():
    model = Dot()
    with pytest.raises(ValueError, match="at least one micro-batch"):
        TrainStep(model, Recorder(model.parameters()))([])
