# Run by bench/notebook_as_script.py --then after notebook 10's cells (all of them, or up to
# --until "def train_run("): the notebook's run (its preset for this device, its train_run loop,
# the model built as the notebook builds it) for the seeds in $SEEDS (default "0 1 2"), with
# $MAX_STEPS overriding the preset's steps when set. Prints one RESULT line (JSON) per run, the
# notebook's own run first when the whole notebook ran: for measuring a preset's band.
import os


def _result(seed, steps, plot, speed, seconds):
    print("RESULT", json.dumps({"device": device_name(device), "preset": preset, "max_steps": steps,
                                "dtype": str(dtype), "compile": COMPILE, "torch": torch.__version__,
                                "seed": seed, "final_val": plot.val_losses[-1],
                                "best_val": min(plot.val_losses), "tokens_per_s": speed,
                                "wall_s": seconds}))


if "final_val" in globals():  # the notebook's run happened
    _result(settings.seed, settings.max_steps, plot, tokens_per_s, wall)
steps = int(os.environ.get("MAX_STEPS", 0)) or settings.max_steps
for seed in [int(s) for s in os.environ.get("SEEDS", "0 1 2").split()]:
    run_settings = dataclasses.replace(settings, seed=seed, max_steps=steps)
    torch.manual_seed(seed)
    model = fuse(GPT(gpt_config(run_settings)), head=device.type == "cpu").to(device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    t0 = time.perf_counter()
    band_plot, band_speed = train_run(model, run_settings, None, title=f"seed {seed}")
    _result(seed, steps, band_plot, band_speed, time.perf_counter() - t0)
