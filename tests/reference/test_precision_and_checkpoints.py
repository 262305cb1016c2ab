"""Notebook 10's graded helpers (gpt2course.reference.precision and reference.checkpoints): the
autocast dtype per device, tested on a CPU with a stand-in compute capability, and a checkpoint
round trip that resumes the same run (the step after loading equals the step of a run that
never stopped)."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from gpt2course import reference
from gpt2course.reference import (GPT, GPTConfig, autocast_dtype, configure_optimizer, load_checkpoint,
                                  save_checkpoint)
from gpt2course.training import devices
from gpt2course.training.checkpoints import checkpoint_folder
from gpt2course.training.fused import fuse

# --------------------------------------------------------------------------------------------
# autocast_dtype


@pytest.mark.parametrize("capability, expected", [
    ((7, 0), torch.float16),    # V100
    ((7, 5), torch.float16),    # T4: is_bf16_supported() may say True, but it only emulates
    ((8, 0), torch.bfloat16),   # A100
    ((8, 6), torch.bfloat16),   # A10, RTX 30xx
    ((8, 9), torch.bfloat16),   # L4
    ((9, 0), torch.bfloat16),   # H100
    ((10, 0), torch.bfloat16),  # B200
])
def test_dtype_by_compute_capability(capability, expected):
    assert autocast_dtype(torch.device("cuda"), capability=capability) == expected
    assert autocast_dtype("cuda:0", capability) == expected


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu"), "mps"])
def test_no_autocast_off_cuda(device):
    assert autocast_dtype(device) is None
    assert autocast_dtype(device, capability=(9, 0)) is None


@pytest.mark.parametrize("capability, expected", [((7, 5), torch.float16), ((8, 0), torch.bfloat16),
                                                  ((9, 0), torch.bfloat16)])
def test_asks_the_gpu_it_is_given(monkeypatch, capability, expected):
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: asked.append(d) or capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # a T4's answer too
    assert autocast_dtype("cuda:1") == expected
    assert asked == [torch.device("cuda:1")]
    # The training command's "auto" follows the same rule (float32 where this says None).
    assert devices.autocast_dtype(torch.device("cuda:1")) == expected
    assert devices.autocast_dtype(torch.device("cpu")) == torch.float32


def test_exported_as_exercises():
    for name in ("autocast_dtype", "save_checkpoint", "load_checkpoint"):
        assert name in reference.__all__ and getattr(reference, name) is globals()[name]


# --------------------------------------------------------------------------------------------
# Checkpoint round trip

CONFIG = GPTConfig(vocab_size=96, block_size=8, n_layer=2, n_head=2, n_embd=16)


def batches(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(CONFIG.vocab_size, (n, 4, CONFIG.block_size + 1), generator=g)
    return [(d[:, :-1], d[:, 1:]) for d in data]


def new_run(seed, fused):
    torch.manual_seed(seed)
    model = GPT(CONFIG)
    if fused:
        fuse(model)
    return model, configure_optimizer(model, weight_decay=0.1, learning_rate=3e-3, betas=(0.9, 0.95))


def step(model, optimizer, x, y):
    optimizer.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss.item()


def optimizer_tensors(optimizer):
    return {(i, k): v for i, s in optimizer.state_dict()["state"].items() for k, v in s.items()}


@pytest.mark.parametrize("fused", [False, True], ids=["as-written", "fused"])
def test_resume_continues_the_same_run(tmp_path, fused):
    data = batches(6)
    model, optimizer = new_run(0, fused)
    for x, y in data[:3]:
        step(model, optimizer, x, y)
    path = tmp_path / "run" / "checkpoint.safetensors"
    save_checkpoint(path, model, optimizer, step=3)
    # The uninterrupted run goes on ...
    expected_losses = [step(model, optimizer, x, y) for x, y in data[3:]]

    # ... and a new session (other initial weights, a fresh optimizer) loads the checkpoint.
    resumed, resumed_opt = new_run(1, fused)
    params_before = [id(p) for p in resumed.parameters()]
    assert load_checkpoint(path, resumed, resumed_opt) == 3
    assert [id(p) for p in resumed.parameters()] == params_before, "parameters must be loaded in place"
    assert resumed.lm_head.weight is resumed.transformer.wte.weight
    reloaded, _ = new_run(2, fused)
    fresh_opt = configure_optimizer(reloaded, 0.1, 3e-3, (0.9, 0.95))
    load_checkpoint(path, reloaded, fresh_opt)
    state = optimizer_tensors(fresh_opt)
    assert len(state) == 3 * len(list(reloaded.parameters()))  # step, exp_avg, exp_avg_sq each
    for (i, key), value in state.items():
        assert value.dtype == torch.float32, (i, key)

    losses = [step(resumed, resumed_opt, x, y) for x, y in data[3:]]
    assert losses == expected_losses
    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    expected_state = optimizer_tensors(optimizer)
    for key, value in optimizer_tensors(resumed_opt).items():
        assert torch.equal(value, expected_state[key]), key


def test_file_is_plain_safetensors_with_the_step(tmp_path):
    model, optimizer = new_run(0, False)
    step(model, optimizer, *batches(1)[0])
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model, optimizer, step=1)
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        assert f.metadata()["step"] == "1"
    assert "model.transformer.wte.weight" in keys and "model.lm_head.weight" not in keys  # tied: once
    assert "optimizer.0.exp_avg_sq" in keys


def test_untied_head_and_loss_scaler_survive(tmp_path):
    model, _ = new_run(0, False)
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach() * 2)  # untied
    optimizer = configure_optimizer(model, 0.1, 3e-3, (0.9, 0.95))
    step(model, optimizer, *batches(1)[0])
    scaler = torch.amp.GradScaler("cpu", init_scale=512.0, growth_interval=7)
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model, optimizer, step=1, scaler=scaler)

    other, _ = new_run(1, False)
    other.lm_head.weight = torch.nn.Parameter(torch.zeros_like(other.lm_head.weight))
    other_opt = configure_optimizer(other, 0.1, 3e-3, (0.9, 0.95))
    other_scaler = torch.amp.GradScaler("cpu")
    assert load_checkpoint(path, other, other_opt, scaler=other_scaler) == 1
    assert torch.equal(other.lm_head.weight, model.lm_head.weight)
    assert not torch.equal(other.lm_head.weight, other.transformer.wte.weight)
    assert other_scaler.state_dict() == scaler.state_dict()


def test_checkpoint_that_does_not_fit_is_refused(tmp_path):
    model, optimizer = new_run(0, False)
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model, optimizer, step=0)
    bigger = GPT(GPTConfig(vocab_size=96, block_size=8, n_layer=3, n_head=2, n_embd=16))
    with pytest.raises(KeyError, match="does not fit"):
        load_checkpoint(path, bigger, configure_optimizer(bigger, 0.1, 3e-3, (0.9, 0.95)))


def test_checkpoint_folder_prefers_a_mounted_drive(tmp_path):
    drive, local = tmp_path / "drive", tmp_path / "local"
    assert checkpoint_folder("run1", drive=drive, local=local) == local / "run1"
    drive.mkdir()
    assert checkpoint_folder("run1", drive=drive, local=local) == drive / "run1"
    assert (drive / "run1").is_dir()
