#!/usr/bin/env bash
# The GPU path's checks in phases that each fit one device call (10 minutes), results in $OUT:
#   bash scripts/gpu_check.sh quick       # ~6-8 min: the tests that failed on GPUs and the equality tests of the
#                                         # packed update; the update, SFT and train-step benchmarks at GPU sizes
#                                         # (auto batches), and the same on that machine's CPU at CPU sizes
#   bash scripts/gpu_check.sh tests       # the whole suite, the GPU as MLX's default device (pytest -n 8)
#   bash scripts/gpu_check.sh bench-gpu   # python -m scripts.benchmark all on the GPU (one JSON file)
#   bash scripts/gpu_check.sh bench-cpu   # the same benchmarks on that machine's CPU, for the side-by-side
#   bash scripts/gpu_check.sh recipe      # python -m scripts.recipe with config/recipe_gpu_*.json (SFT, GRPO, both
#                                         # players on all 315 eval words); the runs stay in RECIPE_DIR, what ships
#                                         # (adapters, reports, plots, metrics, summary) comes back in $OUT/recipe
# Run it after the packed parts are installed (../shared/gpu/README.md: the last part's call installs);
# every phase also writes machine.txt (GPU name, doctor). OUT defaults to gpu-results/ (the device tool sets it).
set -u
case "${1:-}" in quick|tests|bench-gpu|bench-cpu|recipe) ;; *) echo "usage: bash scripts/gpu_check.sh quick|tests|bench-gpu|bench-cpu|recipe" >&2; exit 2 ;; esac
OUT=${OUT:-gpu-results}
PY=${PY:-python3}
export WORDLE_MLX_HOME=${WORDLE_MLX_HOME:-/tmp/wordle_mlx_home}
mkdir -p "$OUT"
{ date -u; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null; $PY -m scripts.doctor; } \
  > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"
# bench DEVICE JSON LOG SECONDS [--only ...]: python -m scripts.benchmark all on DEVICE, figures and log in $OUT
bench() {
  local device=$1 json=$2 log=$3 seconds=$4; shift 4
  timeout "$seconds" $PY -m scripts.benchmark all "$@" --device "$device" --json "$OUT/$json" 2>&1 | tee "$OUT/$log"
}
case "${1:-}" in
  quick)
    # The tests that failed on the H100/H200 (precision, memory estimate, Ctrl-C under load) and the
    # equality tests of the packed GRPO update (several groups per forward, sliding-window Gemma).
    PYTHONUNBUFFERED=1 timeout "${TESTS_S:-200}" $PY -m unittest \
      tests.test_integration_default_model.TestDefaultModel.test_fused_equals_unfused_and_stays_sensible \
      tests.test_lora.TestSaveLoadFuse tests.test_memory tests.test_logprobs tests.test_architectures \
      tests.test_grpo.TestBatchedSampling.test_forked_batched_rollout_matches_per_row_teacher_forcing \
      tests.test_cli.TestInterrupt.test_ctrl_c_at_any_moment_is_one_line \
      tests.test_patterns tests.test_cli.TestDoctor > "$OUT/quick-tests.log" 2>&1
    echo "quick tests rc=$?"; grep -E "^(FAIL|ERROR):" "$OUT/quick-tests.log"; tail -n 3 "$OUT/quick-tests.log"
    for device in gpu cpu; do
      bench "$device" "quick-$device.json" "quick-bench-$device.log" "${BENCH_S:-150}" --only update,sft,train_step
    done ;;
  tests)
    PYTHONUNBUFFERED=1 timeout "${LIMIT_S:-540}" $PY -m pytest -q -n "${WORKERS:-8}" tests \
      --junitxml="$OUT/tests.xml" > "$OUT/tests.log" 2>&1
    echo "tests rc=$?"; grep -E "^(FAILED|ERROR)" "$OUT/tests.log"; tail -n 3 "$OUT/tests.log" ;;
  recipe)
    dir=${RECIPE_DIR:-/tmp/wm-recipe}
    PYTHONUNBUFFERED=1 timeout "${LIMIT_S:-560}" $PY -m scripts.recipe --out "$dir" > "$OUT/recipe.log" 2>&1
    echo "recipe rc=$?"; tail -n 8 "$OUT/recipe.log"
    mkdir -p "$OUT/recipe"  # not the 50 MB of SFT data nor the optimizer state
    cp -r "$dir"/adapters "$dir"/adapters_sft "$dir"/*.json "$dir"/*.png "$OUT/recipe/" 2>/dev/null
    for run in sft grpo; do cp "$dir/$run/metrics.jsonl" "$OUT/recipe/$run-metrics.jsonl" 2>/dev/null
      cp "$dir/$run/config.json" "$OUT/recipe/$run-config.json" 2>/dev/null; done ;;
  bench-gpu|bench-cpu)
    device=${1#bench-}
    bench "$device" "benchmarks-$device.json" "bench-$device.log" "${LIMIT_S:-540}" ;;
esac
