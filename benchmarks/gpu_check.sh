#!/usr/bin/env bash
# GPU check for issues #2, #3, #5 and #11: under 8 minutes on one GPU (never run on the 2-core CPU machine).
#
# In order of importance, each step skipped when the time left (BUDGET seconds in all) is too short:
# 1. tests/trainers/test_cuda.py: training, seeding and bf16 on CUDA, 2 workers on one GPU, export of
#    GPU-trained weights loaded on the CPU, the fused engine on CUDA against the single engine there, a
#    diverging fused slot, and a search whose `engine = "auto"` trains fused on the GPU.
# 2. benchmarks/trainer_step.py --part fused on CUDA: the fused engine (issue #11) at K = 1, 16, 64, 256,
#    512 slots against the single engine, with torch's peak GPU memory.
# 3. The same search (teacher, 50,000 rows x 64 features x 10 classes; TRIALS trials x EPOCHS epochs)
#    on the single engine with 1 trial per GPU, with `engine = "auto"` (fused on a GPU), then single with
#    4 trials per GPU (`--trials-per-gpu K`). Prints trials per minute, the GPU's peak memory
#    (nvidia-smi, sampled every 0.5 s), the engines used and whether every trial trained on CUDA.
# 4. benchmarks/trainer_step.py --part plain on CUDA: per-epoch time against the DataLoader loop.
# 5. benchmarks/vs_optuna_example.py on CUDA for teacher (50,000 rows; one seed), reference and
#    archsearch alternating.
#
# Installs nothing. Run from the repository root, in an environment where archsearch is installed:
#     bash benchmarks/gpu_check.sh     # PYTHON=..., ARCHSEARCH=..., BUDGET=seconds, TRIALS, EPOCHS to override
#     STEPS="1 3" SEARCHES="1:auto" bash benchmarks/gpu_check.sh     # some steps only (see the variables below)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python}"
ARCHSEARCH="${ARCHSEARCH:-archsearch}"
TRIALS="${TRIALS:-30}"
BUDGET="${BUDGET:-470}"
finish_by=$(( $(date +%s) + BUDGET ))
EPOCHS="${EPOCHS:-10}"
GPU="${GPU:-0}"
STEPS="${STEPS:-1 2 3 4 5}"                            # which numbered steps to run
SEARCHES="${SEARCHES:-1:single 1:auto 4:single}"      # step 3's searches, trials-per-GPU:engine
CASES="${CASES:-digits|digits, mixed depths|teacher|digits, pl 16}"  # step 2's trainer_step.py cases, '|'-separated

command -v "$ARCHSEARCH" >/dev/null || { echo "gpu_check: '$ARCHSEARCH' not found; set ARCHSEARCH=/path/to/archsearch" >&2; exit 2; }
"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || { echo "gpu_check: PyTorch sees no CUDA device; nothing to check" >&2; exit 2; }

work="$(mktemp -d -t archsearch-gpu-check-XXXXXX)"
sampler_pid=""
cleanup() {
    if [[ -n "$sampler_pid" ]]; then kill "$sampler_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Seconds left before the budget runs out.
left() { echo $(( finish_by - $(date +%s) )); }

# Runs "$@" if at least $1 seconds are left, capped at the time left; prints why a step is skipped.
step() {
    local need="$1"; shift
    if (( $(left) < need )); then
        echo "skipped (needs about ${need} s, $(left) s left): $*"
        return 0
    fi
    timeout "$(left)" "$@"
}

echo "# $(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname)"
"$PYTHON" - <<'EOF'
import optuna, torch
print(f"# {torch.cuda.get_device_name(0)}, torch {torch.__version__} (CUDA {torch.version.cuda}), optuna {optuna.__version__}")
EOF
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader || true
fi

# Used memory of the GPU in MiB, sampled into a file until killed; the peak is read afterwards.
start_memory_sampler() {
    local out="$1"
    if ! command -v nvidia-smi >/dev/null; then return 0; fi
    ( while true; do
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i "$GPU" >>"$out" 2>/dev/null || true
        sleep 0.5
      done ) &
    sampler_pid=$!
}

stop_memory_sampler() {
    if [[ -n "$sampler_pid" ]]; then
        kill "$sampler_pid" 2>/dev/null || true
        wait "$sampler_pid" 2>/dev/null || true
        sampler_pid=""
    fi
}

run_search() {
    local per_gpu="$1" engine="$2" dir="$work/k$1-$2"
    mkdir -p "$dir"
    cat >"$dir/search.toml" <<EOF
[study]
name = "gpu-check-k${per_gpu}"
storage = "sqlite:///${dir}/study.db"
n_trials = ${TRIALS}
sampler = "tpe"
pruner = "median"
seed = 0

[data]
dataset = "teacher"

[data.teacher]
rows = 50000
features = 64
classes = 10

[space]
layers = [1, 3]
width = [4, 128]
width_log = true
dropout = [0.2, 0.5]
dropout_step = 0.001
activation = ["relu"]
lr = [1e-5, 1e-1]
weight_decay = [0.0, 0.0]
batch_size = [128]
optimizer = ["adam"]
embedding = ["none"]  # as in the figures of 2026-12-04 (BENCHMARKS.md section 8), so that runs compare

[train]
epochs = ${EPOCHS}
patience = ${EPOCHS}  # never stops early within the epoch budget
device = "cuda"
engine = "${engine}"
EOF
    local idle
    idle="$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i "$GPU" 2>/dev/null || echo "")"
    start_memory_sampler "$dir/memory.txt"
    local started ended
    started="$(date +%s.%N)"
    if (( $(left) < 60 )); then
        echo "trials per GPU ${per_gpu}, engine ${engine}: skipped ($(left) s left)"; return 0
    fi
    if ! timeout "$(left)" "$ARCHSEARCH" search "$dir/search.toml" --gpus "$GPU" --trials-per-gpu "$per_gpu" --quiet >"$dir/out.txt"; then
        stop_memory_sampler
        echo "trials per GPU ${per_gpu}, engine ${engine}: the search failed or ran out of time; worker logs:" >&2
        tail -n 20 "$dir"/study_logs/*.log >&2 || true
        return 1
    fi
    ended="$(date +%s.%N)"
    stop_memory_sampler
    "$PYTHON" - "$dir" "$per_gpu" "$started" "$ended" "$idle" "$engine" <<'EOF'
import sys
from pathlib import Path

import optuna
from optuna.trial import TrialState

directory, per_gpu, started, ended, idle, engine = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name=f"gpu-check-k{per_gpu}", storage=f"sqlite:///{directory}/study.db")
finished = [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
devices = sorted({str(t.user_attrs.get("device")) for t in finished})
engines = sorted({str(t.user_attrs.get("engine")) for t in finished})
wall = ended - started
samples = [int(line) for line in Path(directory, "memory.txt").read_text().split() if line.strip().isdigit()] if Path(directory, "memory.txt").exists() else []
peak = f"{max(samples)} MiB used at peak ({idle.strip() or '?'} MiB before)" if samples else "n/a (no nvidia-smi)"
on_cuda = bool(finished) and all(d.startswith("cuda") for d in devices)
best = study.best_trial
print(
    f"trials per GPU {per_gpu}, engine {engine}: {len(finished)} trials in {wall:.1f} s = {60 * len(finished) / wall:.1f} trials/min; "
    f"GPU memory {peak}; devices {devices}; engines {engines}; every trial on CUDA: {'yes' if on_cuda else 'NO'}; "
    f"best val accuracy {best.value:.4f} (test {best.user_attrs.get('test_accuracy', float('nan')):.4f})"
)
sys.exit(0 if on_cuda else 1)
EOF
}

wanted() { [[ " $STEPS " == *" $1 "* ]]; }

status=0
if wanted 1; then
    echo
    echo "## 1. CUDA tests: pytest tests/trainers/test_cuda.py"
    step 60 "$PYTHON" -m pytest -q -p no:cacheprovider "$here/../tests/trainers/test_cuda.py" || status=1
fi

if wanted 2; then
    echo
    echo "## 2. trainer_step.py --device cuda --part fused: the fused engine at K = 1..512 against the single engine"
    IFS='|' read -r -a cases <<<"$CASES"
    CUDA_VISIBLE_DEVICES="$GPU" step 90 "$PYTHON" "$here/trainer_step.py" --device cuda --part fused \
        --cases "${cases[@]}" --slots 1 16 64 256 512 || status=1
fi

if wanted 3; then
    echo
    echo "## 3. archsearch search, ${TRIALS} trials x ${EPOCHS} epochs, teacher 50,000 rows, GPU ${GPU}"
    for search in $SEARCHES; do
        run_search "${search%%:*}" "${search##*:}" || status=1
    done
fi

if wanted 4; then
    echo
    echo "## 4. trainer_step.py --device cuda --part plain: the single engine against the DataLoader loop"
    CUDA_VISIBLE_DEVICES="$GPU" step 90 "$PYTHON" "$here/trainer_step.py" --device cuda --part plain --repeats 2 || status=1
fi

if wanted 5; then
    echo
    echo "## 5. vs_optuna_example.py --device cuda --datasets teacher --seeds 1"
    CUDA_VISIBLE_DEVICES="$GPU" step 150 "$PYTHON" "$here/vs_optuna_example.py" --device cuda --datasets teacher \
        --seeds 1 --child-timeout 200 || status=1
fi
echo
echo "# done with $(left) s of the ${BUDGET} s budget left"
exit "$status"
