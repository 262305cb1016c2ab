# Run by bench/notebook_as_script.py --then after notebook 10: the same preset with seeds 1 and 2
# (the notebook's run is seed 0), for the published band. Prints one JSON line per run.
runs = [{"seed": settings.seed, "final_val": final_val, "tokens_per_s": tokens_per_s, "wall_s": wall}]
for seed in (1, 2):
    more = dataclasses.replace(settings, seed=seed)
    torch.manual_seed(seed)
    model = fuse(GPT(gpt_config(more)), head=device.type == "cpu").to(device)
    t0 = time.perf_counter()
    more_plot, more_speed = train_run(model, more, None, title=f"seed {seed}")
    runs.append({"seed": seed, "final_val": more_plot.val_losses[-1], "tokens_per_s": more_speed,
                 "wall_s": time.perf_counter() - t0})
for run in runs:
    print("RESULT", json.dumps({"device": device_name(device), "preset": preset, "dtype": str(dtype),
                                "compile": COMPILE, "torch": torch.__version__, **run}))
