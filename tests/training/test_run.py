"""``python -m gpt2course train``: tiny runs end to end, checkpoints, exact resume, refusals,
generation from a trained checkpoint, and data parallelism under torchrun (2 CPU processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO
from gpt2course import cli
from gpt2course.reference import GPT, configure_optimizer, estimate_loss, generate, get_batch, get_lr, train_step
from gpt2course.tokenizer import gpt2_encoding
from gpt2course.training import devices, presets, run
from gpt2course.training.checkpoints import CHECKPOINT_NAME, FORMAT, load_model, read_checkpoint
from gpt2course.training.presets import PRESETS, TrainConfig, gpt_config, padded_vocab_size
from gpt2course.weights import read_metadata

# A model small enough to train a step in milliseconds: byte tokens (vocab 256), 2 x 32.
TINY = ["--n-layer", "2", "--n-head", "2", "--n-embd", "32", "--block-size", "16", "--vocab-size", "256",
        "--batch-size", "8", "--micro-batch-size", "2", "--warmup-steps", "2", "--eval-interval", "3",
        "--eval-iters", "2", "--device", "cpu", "--no-progress", "--sample-tokens", "0"]


pytestmark = pytest.mark.usefixtures("no_network")


def run_train(out, *args, capsys=None):
    """``train`` in this process; returns (exit status, stdout, stderr)."""
    status = cli.main(["train", "--out", str(out), *TINY, *args])
    captured = capsys.readouterr() if capsys else None
    return status, (captured.out if captured else ""), (captured.err if captured else "")


def run_cli(*args, timeout=120, env=None):
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})}
    return subprocess.run([sys.executable, "-m", "gpt2course", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=timeout)


def main_in_process(capsys, *args):
    """``cli.main(args)`` here, as a finished process: (returncode, stdout, stderr)."""
    try:
        status = cli.main(list(args))
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, status, captured.out, captured.err)


def one_line_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def losses(log_path):
    """(step, train_loss, val_loss, lr) of every row of a run's log."""
    return [(r["step"], r["train_loss"], r["val_loss"], r["lr"]) for r in run.read_log(log_path)]


# --------------------------------------------------------------------------------------------
# A run and what it writes


def test_tiny_run_writes_checkpoint_log_and_sample(tmp_path, capsys):
    out = tmp_path / "run"
    status, stdout, _ = run_train(out, "--max-steps", "6", "--checkpoint-interval", "4",
                                  "--sample-tokens", "12", "--sample-prompt", "ROMEO:", capsys=capsys)
    assert status == 0
    rows = run.read_log(out / run.LOG_NAME)
    assert [r["step"] for r in rows] == list(range(7))
    assert [r["step"] for r in rows if r["val_loss"] is not None] == [0, 3, 6]  # step 0, every 3, the end
    assert rows[0]["train_loss"] is None and all(r["train_loss"] > 0 for r in rows[1:])
    assert [r["lr"] for r in rows[1:]] == [get_lr(s, 1e-3, 1e-4, 2, 6) for s in range(6)]
    assert all(r["tokens_per_s"] > 0 for r in rows[1:])
    elapsed = [r["elapsed_s"] for r in rows]
    assert elapsed == sorted(elapsed)
    assert rows[-1]["val_loss"] < rows[0]["val_loss"]  # it learns (byte frequencies at least)

    checkpoint = read_checkpoint(out)
    assert checkpoint.step == 6 and checkpoint.preset == "cpu"
    assert checkpoint.config.n_layer == 2 and checkpoint.config.max_steps == 6
    assert read_metadata(out / CHECKPOINT_NAME)["format"] == FORMAT
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left
    # AdamW's state for every parameter the optimiser holds (the tied head once).
    assert len(checkpoint.optimizer_state) == len(list(GPT(gpt_config(checkpoint.config)).parameters()))
    assert set(checkpoint.optimizer_state[0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert float(checkpoint.optimizer_state[0]["step"]) == 6

    assert f"final val loss {rows[-1]['val_loss']:.4f} after 6 steps" in stdout
    model, _ = load_model(out)
    ids = [gpt2_encoding().encode_single_token(bytes([b])) for b in b"ROMEO:"]
    expected = generate(model, torch.tensor([ids]), 12, temperature=1.0, top_k=50,
                        generator=torch.Generator().manual_seed(TrainConfig.seed))
    sample = cli.printable(cli.decode_tokens(gpt2_encoding(), expected[0, len(ids):].tolist()))
    assert stdout.endswith("ROMEO:" + sample + "\n")


def test_training_is_notebook_08s_loop(tmp_path, capsys):
    """The logged losses are those of notebook 08's loop: reference.train_step on get_batch's
    batches from one generator seeded with the seed, get_lr's rates, configure_optimizer's
    groups, estimate_loss on batches of a generator seeded with seed + 1. Four
    accumulated micro-batches of 2 make one batch of 8 (the gradient norms, 1.4 to 2.2, stay
    under the clipping threshold of 3 only when the accumulated gradient is their mean)."""
    out = tmp_path / "run"
    status, _, _ = run_train(out, "--max-steps", "5", "--micro-batch-size", "2", "--grad-clip", "3",
                             capsys=capsys)
    assert status == 0
    config = read_checkpoint(out).config
    train_ids, val_ids = run.load_tokens(config)
    torch.manual_seed(config.seed)
    model = GPT(gpt_config(config))
    optimizer = configure_optimizer(model, 0.1, 1e-3, (0.9, 0.95))
    batches = torch.Generator().manual_seed(config.seed)
    expected = []
    for step in range(5):
        for group in optimizer.param_groups:
            group["lr"] = get_lr(step, 1e-3, 1e-4, 2, 5)
        x, y = get_batch(train_ids, 16, 8, generator=batches)
        expected.append(train_step(model, x, y, optimizer, 3.0))
    val_loss = estimate_loss(model, val_ids, 16, 8, 2, generator=torch.Generator().manual_seed(config.seed + 1))
    log = run.read_log(out / run.LOG_NAME)
    # The command line trains the fused model (gpt2course.training.fused): float32 rounding apart, the same.
    assert [r["train_loss"] for r in log[1:]] == pytest.approx(expected, rel=1e-5)
    assert log[-1]["val_loss"] == pytest.approx(val_loss, rel=1e-5)
    trained = load_model(out)[0].state_dict()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(trained[name], value, rtol=1e-4, atol=1e-5)


def test_own_text_file(tmp_path, capsys):
    text = tmp_path / "poem.txt"
    text.write_text("the cat sat on the mat. " * 40 + "é\n", encoding="utf-8")
    status, stdout, _ = run_train(tmp_path / "run", "--data", str(text), "--max-steps", "3",
                                  capsys=capsys)
    assert status == 0
    config = read_checkpoint(tmp_path / "run").config
    assert config.data == str(text.resolve())
    train_ids, val_ids = run.load_tokens(config)
    assert len(train_ids) + len(val_ids) == len(text.read_text(encoding="utf-8").encode())
    assert f"{len(train_ids):,} training tokens" in stdout


# --------------------------------------------------------------------------------------------
# Resume


def _stop_at(monkeypatch, step, how):
    """Make the run receive SIGINT (how="signal") or crash (how="crash") when its log row for
    ``step`` is written."""
    real = run.append_log

    def append(path, **row):
        real(path, **row)
        if row.get("step") == step:
            if how == "signal":
                os.kill(os.getpid(), signal.SIGINT)
            else:
                raise RuntimeError("simulated crash")

    monkeypatch.setattr(run, "append_log", append)


def test_ctrl_c_saves_and_resume_gives_the_same_losses(tmp_path, capsys, monkeypatch):
    args = ["--max-steps", "10", "--checkpoint-interval", "4"]
    assert run_train(tmp_path / "whole", *args, capsys=capsys)[0] == 0
    whole = losses(tmp_path / "whole" / run.LOG_NAME)

    before = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN in a background job
    with monkeypatch.context() as m:
        _stop_at(m, 5, "signal")
        status, stdout, stderr = run_train(tmp_path / "cut", *args, capsys=capsys)
    assert status == 130
    assert signal.getsignal(signal.SIGINT) is before  # handler restored
    assert "stopping after this step" in stdout
    # The step in flight when Ctrl-C came (6) finishes and is saved.
    assert read_checkpoint(tmp_path / "cut").step == 6
    assert "interrupted after step 6 of 10" in stderr and "--resume" in stderr
    assert losses(tmp_path / "cut" / run.LOG_NAME) == whole[:7]

    status, stdout, _ = run_train(tmp_path / "cut", *args, "--resume", capsys=capsys)
    assert status == 0 and "resuming at step 6" in stdout
    assert losses(tmp_path / "cut" / run.LOG_NAME) == whole
    resumed, uninterrupted = read_checkpoint(tmp_path / "cut"), read_checkpoint(tmp_path / "whole")
    for name, value in uninterrupted.model_state.items():
        assert torch.equal(resumed.model_state[name], value), name


def test_crash_loses_at_most_one_checkpoint_interval(tmp_path, capsys, monkeypatch):
    args = ["--max-steps", "9", "--checkpoint-interval", "4", "--seed", "5", "--dropout", "0.2"]
    assert run_train(tmp_path / "whole", *args, capsys=capsys)[0] == 0
    whole = losses(tmp_path / "whole" / run.LOG_NAME)

    with monkeypatch.context() as m:
        _stop_at(m, 7, "crash")
        with pytest.raises(RuntimeError, match="simulated crash"):
            run_train(tmp_path / "cut", *args, capsys=capsys)
    assert read_checkpoint(tmp_path / "cut").step == 4
    assert len(losses(tmp_path / "cut" / run.LOG_NAME)) == 8  # rows 0..7 were written

    status, stdout, _ = run_train(tmp_path / "cut", "--resume", "--out", str(tmp_path / "cut"), capsys=capsys)
    assert status == 0 and "resuming at step 4" in stdout
    assert losses(tmp_path / "cut" / run.LOG_NAME) == whole  # rows 5..7 replaced, not repeated


def test_float16_resume_keeps_the_loss_scaler(tmp_path, capsys, monkeypatch):
    """float16 autocast trains with a loss scaler (on a CPU here, as on a T4): its state is
    saved and restored with the checkpoint."""
    args = ["--max-steps", "8", "--checkpoint-interval", "100", "--dtype", "float16"]
    assert run_train(tmp_path / "whole", *args, capsys=capsys)[0] == 0
    with monkeypatch.context() as m:
        _stop_at(m, 2, "signal")
        assert run_train(tmp_path / "cut", *args, capsys=capsys)[0] == 130
    assert read_checkpoint(tmp_path / "cut").scaler_state["_growth_tracker"] == 3  # steps without overflow
    assert run_train(tmp_path / "cut", *args, "--resume", capsys=capsys)[0] == 0
    assert losses(tmp_path / "cut" / run.LOG_NAME) == losses(tmp_path / "whole" / run.LOG_NAME)
    whole, resumed = read_checkpoint(tmp_path / "whole"), read_checkpoint(tmp_path / "cut")
    assert resumed.scaler_state == whole.scaler_state and whole.scaler_state["_growth_tracker"] == 8


def test_resume_can_extend_a_finished_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_train(out, "--max-steps", "3", capsys=capsys)[0] == 0
    status, stdout, _ = run_train(out, "--max-steps", "3", "--resume", capsys=capsys)
    assert status == 0 and "already done its 3 steps" in stdout
    status, _, stderr = run_train(out, "--max-steps", "5", "--resume", capsys=capsys)
    assert status == 0
    assert "--max-steps 5 (the run had 3)" in stderr
    assert [r[0] for r in losses(out / run.LOG_NAME)] == [0, 1, 2, 3, 4, 5]
    assert read_checkpoint(out).step == 5 and read_checkpoint(out).config.max_steps == 5


# --------------------------------------------------------------------------------------------
# Refusals


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    assert cli.main(["train", "--out", str(out), *TINY, "--max-steps", "2"]) == 0
    return out


@pytest.mark.parametrize("args, fragments", [
    (["--n-layer", "3"], ["n_layer=2", "--n-layer 3", "different model"]),
    (["--n-embd", "64", "--n-head", "4"], ["n_embd=32", "--n-embd 64"]),
    (["--vocab-size", "300"], ["vocab_size=256"]),
    (["--preset", "t4"], ["--preset cpu", "not t4"]),
], ids=["layers", "width", "vocab", "preset"])
def test_resume_refuses_another_model(finished_run, args, fragments, capsys):
    before = (finished_run / CHECKPOINT_NAME).read_bytes()
    one_line_error(main_in_process(capsys, "train", "--out", str(finished_run), "--resume", *args), *fragments)
    assert (finished_run / CHECKPOINT_NAME).read_bytes() == before


def test_run_folder_refusals(finished_run, tmp_path, capsys):
    line = one_line_error(run_cli("train", "--out", str(finished_run), *TINY), "already holds a training run")
    assert "--resume" in line and "--overwrite" in line
    one_line_error(main_in_process(capsys, "train", "--out", str(tmp_path / "empty"), "--resume"),
                   "no checkpoint to resume", "empty")
    one_line_error(main_in_process(capsys, "train", "--out", str(finished_run), "--resume", "--overwrite"),
                   "not allowed with")
    (tmp_path / "early").mkdir()
    (tmp_path / "early" / run.LOG_NAME).write_text("step,train_loss\n0,\n")
    one_line_error(main_in_process(capsys, "train", "--out", str(tmp_path / "early"), "--resume"),
                   "before its first checkpoint", "--overwrite")
    (tmp_path / "file").write_text("x")
    one_line_error(main_in_process(capsys, "train", "--out", str(tmp_path / "file")), "not a folder")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / CHECKPOINT_NAME).write_text("not safetensors")
    one_line_error(main_in_process(capsys, "train", "--out", str(broken), "--resume"),
                   "not a readable safetensors file")

    # --overwrite starts again: a fresh log, the old checkpoint replaced.
    out = tmp_path / "again"
    assert run_train(out, "--max-steps", "4", capsys=capsys)[0] == 0
    assert run_train(out, "--max-steps", "2", "--overwrite", capsys=capsys)[0] == 0
    assert [r[0] for r in losses(out / run.LOG_NAME)] == [0, 1, 2]
    assert read_checkpoint(out).step == 2


@pytest.mark.parametrize("args, fragment", [
    (["--max-steps", "0"], "--max-steps: must be at least 1"),
    (["--batch-size", "two"], "--batch-size: expected a whole number"),
    (["--lr", "0"], "--lr: must be more than 0"),
    (["--lr", "nan"], "--lr: expected a finite number"),
    (["--min-lr", "0.01"], "--min-lr 0.01 is above the peak learning rate --lr 0.001"),
    (["--warmup-steps", "50", "--max-steps", "10"], "--warmup-steps 50 is more than --max-steps 10"),
    (["--batch-size", "10", "--micro-batch-size", "4"],
     "--batch-size 10 is not a multiple of --micro-batch-size 4"),
    (["--n-head", "3"], "--n-embd 32 is not a multiple of --n-head 3"),
    (["--dropout", "1"], "--dropout: must be at least 0 and below 1"),
    (["--beta2", "-0.1"], "--beta2"),
    (["--vocab-size", "100"], "at least GPT-2's 256 byte tokens"),
    (["--block-size", "4000", "--data", "data/SOURCES.md"], "too short for --block-size 4000"),  # a few KB
    (["--data", "no/such.txt"], "--data no/such.txt: no such file"),
    (["--preset", "h100"], "invalid choice"),
    (["--device", "tpu"], "--device"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_arguments(tmp_path, args, fragment, capsys):
    result = main_in_process(capsys, "train", "--out", str(tmp_path / "run"), *TINY, "--max-steps", "10", *args)
    one_line_error(result, fragment)
    assert not (tmp_path / "run" / CHECKPOINT_NAME).exists()


def test_help_is_complete_and_true():
    result = run_cli("train", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for name in ("preset", "out", "resume", "overwrite", "data", "device", "dtype", "compile", "seed",
                 "sample-tokens", "sample-prompt", "no-progress"):
        assert f"--{name}" in text, name
    for name in TrainConfig.__dataclass_fields__:
        if name in ("dtype", "compile", "seed", "data"):
            continue
        option = presets.flag(name)
        assert option in text, option
        values = ", ".join(f"{p} {getattr(c, name):g}" if isinstance(getattr(c, name), float)
                           else f"{p} {getattr(c, name)}" for p, c in PRESETS.items())
        assert f"(presets: {values})" in text, name
    assert "train" in run_cli("--help").stdout


# --------------------------------------------------------------------------------------------
# Presets


def test_cpu_preset_is_notebook_08s_run():
    cpu = PRESETS["cpu"]
    assert (cpu.n_layer, cpu.n_head, cpu.n_embd, cpu.block_size, cpu.vocab_size) == (4, 4, 128, 128, 50257)
    assert (cpu.batch_size, cpu.warmup_steps, cpu.min_lr, cpu.weight_decay) == (16, 20, 1e-4, 0.1)
    assert (cpu.beta1, cpu.beta2, cpu.grad_clip, cpu.dropout) == (0.9, 0.95, 1.0, 0.0)
    assert (cpu.eval_interval, cpu.eval_iters, cpu.seed) == (25, 4, 0)
    assert (cpu.vocab_multiple, cpu.micro_batch_size, cpu.dtype) == (1, 0, "auto")
    parser = cli.build_parser()
    args = parser.parse_args(["train"])
    plan = run.plan_run(preset=args.preset, overrides=cli._train_overrides(args), out="unused")
    assert plan.config == cpu and plan.preset == "cpu"


@pytest.mark.parametrize("name", ["t4", "a100"])
def test_gpu_presets_are_consistent(name):
    config = PRESETS[name]
    presets.check_config(config, world_size=1)
    assert padded_vocab_size(config) == 50304 and gpt_config(config).vocab_size == 50304
    assert config.dropout > 0 and config.micro_batch_size
    # Not a model that just memorises 302k tokens: at most 30 passes over the training text (on
    # an H200 the a100 preset's validation loss still fell at 27 passes with dropout 0.2 and
    # turned up at about 28-32, bench/RESULTS.md).
    assert config.max_steps * config.batch_size * config.block_size < 30 * 301_966


def test_autocast_choice():
    assert devices.autocast_dtype(torch.device("cpu")) == torch.float32
    assert devices.autocast_dtype(torch.device("cpu"), "bfloat16") == torch.bfloat16
    assert devices.autocast_dtype(torch.device("cpu"), "float16") == torch.float16
    with pytest.raises(presets.RunError, match="--dtype must be one of"):
        devices.autocast_dtype(torch.device("cpu"), "float8")


# --------------------------------------------------------------------------------------------
# Generating from a trained checkpoint


def test_generate_from_a_checkpoint(finished_run, capsys):
    model, config = load_model(finished_run)
    assert config.vocab_size == 256 and config.n_layer == 2
    prompt = "To be"
    ids = [gpt2_encoding().encode_single_token(bytes([b])) for b in prompt.encode()]
    expected = generate(model, torch.tensor([ids]), 8, temperature=0)[0, len(ids):].tolist()
    text = prompt + cli.printable(cli.decode_tokens(gpt2_encoding(), expected)) + "\n"
    for source in (["--checkpoint", str(finished_run)], ["--checkpoint", str(finished_run / CHECKPOINT_NAME)],
                   ["--weights", str(finished_run / CHECKPOINT_NAME)]):
        assert cli.main(["generate", *source, "--prompt", prompt, "--max-new-tokens", "8",
                         "--temperature", "0", "--device", "cpu"]) == 0
        out, _ = capsys.readouterr()
        assert out == text, source
    assert cli.main(["generate", "--checkpoint", str(finished_run.parent), "--prompt", "a"]) == 2
    assert "no checkpoint.safetensors in that folder" in capsys.readouterr().err


def test_padded_vocabulary_is_cut_back(tmp_path, capsys):
    out = tmp_path / "run"
    status, _, _ = run_train(out, "--vocab-size", "300", "--vocab-multiple", "64", "--max-steps", "2",
                             capsys=capsys)
    assert status == 0
    saved = read_checkpoint(out)
    assert saved.model_state["transformer.wte.weight"].shape == (320, 32)
    model, config = load_model(out)
    assert config.vocab_size == 300 and model.transformer.wte.weight.shape == (300, 32)
    full = GPT(gpt_config(saved.config))
    full.load_state_dict(saved.model_state)
    idx = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(model(idx)[0], full.eval()(idx)[0][..., :300])


# --------------------------------------------------------------------------------------------
# Data parallel: torchrun with 2 CPU processes (gloo) against 1 process with accumulation


def _run_group(cmd, timeout):
    """Run ``cmd`` in its own process group; kill the whole group when it overstays."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, stdout, stderr


def test_two_processes_equal_one_with_accumulation(tmp_path):
    args = ["train", *TINY, "--max-steps", "6", "--checkpoint-interval", "3"]
    # One process: micro-batches of 2, 4 accumulated; two processes: 2 micro-batches each.
    status, _, stderr = _run_group([sys.executable, "-m", "gpt2course", *args, "--out", str(tmp_path / "one")],
                                   120)
    assert status == 0, stderr
    status, stdout, stderr = _run_group(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "gpt2course", *args, "--out", str(tmp_path / "two")], 120)
    assert status == 0, stderr
    assert "2 processes x 2 micro-batches" in stdout and stdout.count("final val loss") == 1

    one, two = run.read_log(tmp_path / "one" / run.LOG_NAME), run.read_log(tmp_path / "two" / run.LOG_NAME)
    assert [r["step"] for r in two] == list(range(7))
    for a, b in zip(one, two):
        for key in ("train_loss", "val_loss", "lr"):
            assert (a[key] is None) == (b[key] is None), (a, b)
            if a[key] is not None:
                assert b[key] == pytest.approx(a[key], rel=1e-5, abs=0), (key, a, b)
    # Adam moves a parameter by about lr wherever its gradient is tiny, whatever the gradient's
    # rounding: a different summation order can shift such a parameter by a small fraction of
    # lr (1e-3). atol is 1% of it; a wrong batch split moves parameters by whole steps.
    first, second = read_checkpoint(tmp_path / "one"), read_checkpoint(tmp_path / "two")
    for name, value in first.model_state.items():
        torch.testing.assert_close(second.model_state[name], value, rtol=1e-4, atol=1e-5)


def test_ctrl_c_under_torchrun_saves_once_and_leaves_no_process(tmp_path):
    """Ctrl-C reaches every process (and torchrun passes it on once more): all stop after the
    same step, rank 0 saves it, nobody is left running."""
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "gpt2course", "train", *TINY, "--max-steps", "1000000", "--eval-interval", "1000000",
         "--checkpoint-interval", "1000000", "--out", str(out)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            log = out / run.LOG_NAME
            if log.exists() and len(log.read_text().splitlines()) > 4:  # header, step 0, steps 1..3
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode != 0
    step = read_checkpoint(out).step
    assert step >= 3 and run.read_log(out / run.LOG_NAME)[-1]["step"] == step
    assert stderr.count(f"interrupted after step {step} of 1000000") == 1, stderr
    assert stdout.count("stopping after this step") == 1
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)
