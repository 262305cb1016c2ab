#!/usr/bin/env bash
# Notebook 10's GPU path on a machine that has PyTorch and a GPU but no Jupyter: the notebook's
# code cells as one program (bench/notebook_as_script.py; the grader's check cells left out),
# then seeds 1 and 2 of the same run (bench/nb10_seeds.py, SEEDS="1 2"), then the command line's
# matching preset. Writes gpu.txt, nb10.log, cli.log, cli_log.csv and the figures to $OUT
# (default runs/gpu_run_10). Usage: bash bench/gpu_run_10.sh [PRESET_FOR_CLI [MORE CLI FLAGS]]
# BEFORE=bench/emulate_t4.py runs the notebook on its T4 path; CHECKS=1 keeps the check cells
# (they need numpy only); MORE_SEEDS=0 leaves out seeds 1 and 2.
set -u
OUT=${OUT:-runs/gpu_run_10}
mkdir -p "$OUT/nb10"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
PY=${PYTHON:-python3}
export SEEDS=${SEEDS:-1 2}   # the notebook's own run is seed 0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
$PY -c "import torch, platform; print('python', platform.python_version(), 'torch', torch.__version__, torch.cuda.get_device_name(), torch.cuda.get_device_capability())" | tee -a "$OUT/gpu.txt"
start=$(date +%s)
timeout "${NB_TIMEOUT:-450}" $PY bench/notebook_as_script.py solutions/10_full_training_run.ipynb --out "$OUT/nb10" \
    $([ "${CHECKS:-0}" = 1 ] || echo --skip-checks) ${BEFORE:+--before "$BEFORE"} \
    $([ "${MORE_SEEDS:-1}" = 1 ] && echo --then bench/nb10_seeds.py) > "$OUT/nb10.log" 2>&1
echo "notebook rc $? in $(( $(date +%s) - start )) s" | tee -a "$OUT/nb10.log"
grep -v "rung/s\|step/s" "$OUT/nb10.log" | tail -60
rm -f "$OUT"/nb10/figure_0[4-9].png   # the extra seeds' loss plots
start=$(date +%s)
timeout "${CLI_TIMEOUT:-120}" $PY -m gpt2course train --preset "${1:-a100}" "${@:2}" --out /tmp/gpu_run_10_cli > "$OUT/cli.log" 2>&1
echo "cli rc $? in $(( $(date +%s) - start )) s" | tee -a "$OUT/cli.log"
grep -v "step/s" "$OUT/cli.log" | tail -12
cp /tmp/gpu_run_10_cli/log.csv "$OUT/cli_log.csv" 2>/dev/null
ls -la "$OUT" "$OUT/nb10"
