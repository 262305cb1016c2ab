"""gpt2course.heads: reading a model's attention, the repeated random sequences, the per-position
loss, and the small trained model shipped in data/trained/ (its checksum, its record, and the
previous-token and induction heads notebooks 07 and 10 say it has)."""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

from gpt2course import heads
from gpt2course.datafiles import CHECKSUMS, DataFileError, sha256, verified_path
from gpt2course.reference import GPT, GPTConfig, induction_scores, previous_token_scores
from gpt2course.reference import multi_head
from gpt2course.training.fused import fuse


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    config = dict(vocab_size=97, block_size=24, n_layer=3, n_head=4, n_embd=32)
    config.update(kw)
    return GPT(GPTConfig(**config))


def _weights_seen_by_attention(model, idx, monkeypatch):
    """The weights the reference attention itself computes, layer by layer (captured)."""
    seen = []
    original = multi_head.attention

    def capturing(q, k, v, mask=None):
        out, w = original(q, k, v, mask)
        seen.append(w.detach().clone())
        return out, w

    monkeypatch.setattr(multi_head, "attention", capturing)
    with torch.no_grad():
        model(idx)
    return torch.stack(seen, dim=1)


def test_attention_weights_are_the_weights_the_model_computes(monkeypatch):
    model = _model()
    with torch.no_grad():  # weights that are not all alike: a model that has "learned" something
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    idx = torch.randint(0, 97, (3, 17), generator=torch.Generator().manual_seed(1))
    got = heads.attention_weights(model, idx)
    expected = _weights_seen_by_attention(model, idx, monkeypatch)
    assert got.shape == (3, 3, 4, 17, 17)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert torch.all(got.triu(diagonal=1) == 0)
    torch.testing.assert_close(got.sum(-1), torch.ones(3, 3, 4, 17))


def test_attention_weights_of_a_fused_model_and_modes_restored():
    model = _model(seed=3)
    idx = torch.randint(0, 97, (2, 11), generator=torch.Generator().manual_seed(2))
    plain = heads.attention_weights(model, idx)
    model.train()
    fuse(model, head=False)   # SDPA attention keeps no weights: they must be recomputed
    fused = heads.attention_weights(model, idx)
    assert model.training, "the model's mode is restored"
    torch.testing.assert_close(fused, plain)
    assert all(not m._forward_pre_hooks for m in model.modules()), "no hook is left behind"


def test_repeated_random_tokens():
    pool = torch.tensor([5, 9, 11, 40, 41, 42, 77])
    idx = heads.repeated_random_tokens(pool, 5, batch=4, generator=torch.Generator().manual_seed(0))
    assert idx.shape == (4, 10) and idx.dtype == torch.long
    assert torch.equal(idx[:, :5], idx[:, 5:])
    for row in idx[:, :5]:
        assert len(set(row.tolist())) == 5 and set(row.tolist()) <= set(pool.tolist())
    again = heads.repeated_random_tokens(pool, 5, batch=4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(idx, again)
    assert not torch.equal(idx[0], idx[1]) or not torch.equal(idx[1], idx[2])
    with pytest.raises(ValueError, match="period"):
        heads.repeated_random_tokens(pool, 8)


def test_per_position_loss_matches_the_mean_loss():
    model = _model(seed=4)
    idx = torch.randint(0, 97, (5, 13), generator=torch.Generator().manual_seed(3))
    loss = heads.per_position_loss(model, idx)
    assert loss.shape == (12,)
    with torch.no_grad():
        logits, mean = model(idx[:, :-1], idx[:, 1:])
    torch.testing.assert_close(loss.mean(), mean, rtol=1e-5, atol=1e-6)
    first = F.cross_entropy(logits[:, 0], idx[:, 1])
    torch.testing.assert_close(loss[0], first, rtol=1e-5, atol=1e-6)


def test_text_token_pool_reads_bytes_or_gpt2_tokens():
    assert heads.text_token_pool(256, "abca").tolist() == sorted({64, 65, 66})  # GPT-2's byte ids
    bpe = heads.text_token_pool(50257, "Hello world Hello")
    assert bpe.tolist() == [995, 15496, 18435]


# ---- the shipped model ---------------------------------------------------------------------

def test_the_shipped_model_is_verified_and_loads():
    path = verified_path(heads.TRAINED_MODEL)
    assert sha256(path) == CHECKSUMS[heads.TRAINED_MODEL]
    assert path.stat().st_size < 8 * 2**20
    model, record = heads.load_trained_model()
    assert not model.training
    assert model.config.n_layer >= 2
    assert model.lm_head.weight is model.transformer.wte.weight
    assert record["format"] == "gpt2course-trained-model-1"
    assert "python -m gpt2course train " in record["command"]
    assert int(record["steps"]) == record["train_config"]["max_steps"]
    for flag, field in (("--n-layer", "n_layer"), ("--n-head", "n_head"), ("--n-embd", "n_embd"),
                        ("--vocab-size", "vocab_size"), ("--max-steps", "max_steps")):
        assert f"{flag} {record['train_config'][field]}" in record["command"], flag


def test_a_corrupt_shipped_model_is_refused(tmp_path, monkeypatch):
    (tmp_path / "trained").mkdir()
    original = verified_path(heads.TRAINED_MODEL).read_bytes()
    (tmp_path / heads.TRAINED_MODEL).write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    monkeypatch.setenv("GPT2COURSE_DATA", str(tmp_path))
    with pytest.raises(DataFileError, match="corrupt"):
        heads.load_trained_model()


def test_the_shipped_model_has_a_previous_token_head_and_an_induction_head():
    """What data/trained/README.md reports, measured as notebooks 07 and 10 measure it (the scores
    by hand here, head_summary must agree)."""
    model, record = heads.load_trained_model()
    pool = heads.text_token_pool(model.config.vocab_size)
    period = 50
    idx = heads.repeated_random_tokens(pool, period, 8, torch.Generator().manual_seed(0))
    mean = heads.attention_weights(model, idx).mean(0)
    previous, induction = previous_token_scores(mean), induction_scores(mean, period)
    T = 2 * period
    even = torch.ones(T, T).tril()
    even = (even / even.sum(-1, keepdim=True)).expand(1, 1, T, T)
    even_previous, even_induction = previous_token_scores(even).item(), induction_scores(even, period).item()
    assert divmod(int(previous.argmax()), 4) == (0, 3) and previous[0, 3] > 7 * even_previous, previous
    assert divmod(int(induction.argmax()), 4) == (1, 2) and induction[1, 2] > 25 * even_induction, induction
    assert induction[0].max() < 2 * even_induction, "an induction head needs a layer before it"
    loss = heads.per_position_loss(model, idx)
    first, second = loss[: period - 1].mean().item(), loss[period:].mean().item()
    assert second < first - 3, (first, second)
    summary = heads.head_summary(model)
    assert summary["previous"][:2] == (0, 3) and summary["induction"][:2] == (1, 2)
    assert summary["previous"][2] == pytest.approx(previous[0, 3].item())
    assert summary["induction"][2] == pytest.approx(induction[1, 2].item())
    assert summary["loss_first"] == pytest.approx(first) and summary["loss_second"] == pytest.approx(second)
    assert summary["even_induction"] == pytest.approx(even_induction)
    assert "--data runs/shakespeare_doubled.txt" in record["command"]
    assert record["train_config"]["data"] == "shakespeare_doubled.txt", "no folder of the training machine"


def test_the_recorded_head_scores_end_at_the_shipped_model():
    """The CSV of the run's head scores (every 250 steps) ends with what the shipped model scores
    (float32 checkpoints then, float16 weights now: within 0.005), and shows the induction head
    forming: absent at the start, present at the end."""
    import csv

    model, record = heads.load_trained_model()
    with open(verified_path(heads.TRAINED_MODEL_HEADS)) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(250, int(record["steps"]) + 1, 250))
    last, summary = rows[-1], heads.head_summary(model)
    assert (int(last["induction_layer"]), int(last["induction_head"])) == summary["induction"][:2]
    assert (int(last["previous_layer"]), int(last["previous_head"])) == summary["previous"][:2]
    for column, value in (("previous_score", summary["previous"][2]), ("induction_score", summary["induction"][2]),
                          ("loss_first", summary["loss_first"]), ("loss_second", summary["loss_second"])):
        assert float(last[column]) == pytest.approx(value, abs=0.005), column
    assert float(rows[0]["induction_score"]) < 1.5 * summary["even_induction"] < float(rows[-1]["induction_score"])


def test_watch_records_each_checkpoint_and_stops_after_the_last(tmp_path):
    """`python -m gpt2course.heads watch` on a finished run: one row (its last checkpoint), the
    summary of that model, and it returns."""
    import csv

    from gpt2course.training.run import plan_run, train

    run = tmp_path / "run"
    text = tmp_path / "text.txt"
    text.write_text(heads.doubled_text("".join(f"line {i} of a tiny play\n" for i in range(400)), 1.0, 20))
    train(plan_run(overrides=dict(n_layer=1, n_head=2, n_embd=16, block_size=32, vocab_size=256, batch_size=2,
                                  max_steps=3, warmup_steps=1, eval_interval=3, eval_iters=1,
                                  checkpoint_interval=3, data=str(text)), out=run),
          device="cpu", progress=False)
    out = tmp_path / "heads.csv"
    heads.watch_run(str(run), str(out), poll_seconds=0.1)
    rows = list(csv.DictReader(open(out)))
    assert [r["step"] for r in rows] == ["3"]
    exported = tmp_path / "model.safetensors"
    heads.export_trained_model(str(run), str(exported), "python -m gpt2course train ...", "here", "float32")
    model, record = heads.load_trained_model(exported)
    summary = heads.head_summary(model)
    assert float(rows[0]["induction_score"]) == pytest.approx(summary["induction"][2], abs=1e-4)
    assert float(rows[0]["loss_second"]) == pytest.approx(summary["loss_second"], abs=1e-4)
    assert record["train_config"]["data"] == "text.txt", "the data file's name, not its folder"


def test_doubled_text_doubles_whole_passages_and_nothing_else():
    text = "".join(f"line {i:03d} of the play\n" for i in range(200))   # 21 characters a line
    assert heads.doubled_text(text, fraction=0.0) == text
    everything = heads.doubled_text(text, fraction=1.0, min_chars=40)   # passages of 2 lines
    lines = text.splitlines(keepends=True)
    assert everything == "".join(2 * (lines[i] + lines[i + 1]) for i in range(0, 200, 2))
    half = heads.doubled_text(text, fraction=0.5, min_chars=40, seed=3)
    assert half == heads.doubled_text(text, fraction=0.5, min_chars=40, seed=3), "seeded"
    assert half != heads.doubled_text(text, fraction=0.5, min_chars=40, seed=4)
    doubled = [i for i in range(0, 200, 2) if half.count(lines[i]) == 2]
    assert 0.3 < len(doubled) / 100 < 0.7
    undoubled = half
    for i in doubled:
        undoubled = undoubled.replace(lines[i] + lines[i + 1] + lines[i] + lines[i + 1], lines[i] + lines[i + 1])
    assert undoubled == text, "removing the copies gives the text back"
    assert heads.doubled_text("a short tail", fraction=1.0) == "a short tail"   # a last, short rest: once
    with pytest.raises(ValueError, match="fraction"):
        heads.doubled_text(text, fraction=1.5)


def test_command_line_writes_the_doubled_text_and_refuses_in_one_line(tmp_path, capsys):
    source = tmp_path / "play.txt"
    source.write_text("".join(f"line {i} of the play\n" for i in range(50)))
    out = tmp_path / "doubled.txt"
    assert heads.main(["doubled-text", str(out), "--text", str(source), "--fraction", "1", "--min-chars", "30"]) == 0
    assert out.read_text() == heads.doubled_text(source.read_text(), 1.0, 30)
    assert "sha256" in capsys.readouterr().out
    for argv, words in ((["doubled-text", str(out), "--fraction", "2"], "fraction must be between 0 and 1"),
                        (["doubled-text", str(out), "--text", str(tmp_path / "none.txt")], "none.txt"),
                        (["export", str(tmp_path / "no-run"), str(tmp_path / "m.safetensors"),
                          "--command", "python -m gpt2course train", "--hardware", "here"], "no-run")):
        with pytest.raises(SystemExit) as stop:
            heads.main(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"python -m gpt2course.heads {argv[0]}: ") and words in err[0], err
