#!/usr/bin/env bash
# Train the chest X-ray family at 256 px directly on ONE GPU in one short run and bring the
# weights back (issue 18: a GPU is lent rarely, for minutes). Stages, each timed into
# DEST/timings.tsv: the 256-px corpus (unless CORPUS names a built one), the VAE
# (configs/vae-cxr-256-gpu.yaml), the LDM on its latents (configs/ldm-cxr-256-gpu.yaml), then
# the LDM shipped in float16 to DEST/ldm (weights + card, under 16 MB) with the run logs.
# Back here: compare it with the 128-px family + x2 SR on the same rows
#   .venv/bin/python benchmarks/cxr.py          (and ship it only where it is better)
#
#   bash scripts/gpu_cxr_256.sh [DEST]      DEST defaults to $OUT (the lent machine's return
#                                           folder), else runs/gpu-cxr-256
#   SMOKE=1 bash scripts/gpu_cxr_256.sh D   every stage for 2 steps of batch 2 on the CPU:
#                                           checks the script end to end (tests/train/test_gpu_script.py)
# Environment: CORPUS (a built corpus folder; else runs/cxr-256, built from CXR_ROOT, the
# datasets' folder, default ../shared/data), RADSYNTH and PY (the CLI and the Python that holds
# radsynth; default .venv's, else radsynth and python3 on PATH).
# On a machine without the project's venv (a lent GPU holds PyTorch but not MONAI, pydicom,
# nibabel, ...): carry those as wheels and `pip install --no-index --no-deps --target`, and
# carry a built corpus (runs/cxr-256 is 125 MB; pass the training split only where the
# transfer is limited). Not yet run on a GPU: no session of this project has been lent one.
set -euo pipefail
cd "$(dirname "$0")/.."

dest=$(realpath -m "${1:-${OUT:-runs/gpu-cxr-256}}")
if [ -x .venv/bin/radsynth ]; then radsynth=${RADSYNTH:-.venv/bin/radsynth}; else radsynth=${RADSYNTH:-radsynth}; fi
if [ -x .venv/bin/python ]; then py=${PY:-.venv/bin/python}; else py=${PY:-python3}; fi
work="$dest/work"
mkdir -p "$dest" "$work"
device=(--device cuda)
steps=()
if [ -n "${SMOKE:-}" ]; then device=(--device cpu); steps=(--steps 2); fi

timings="$dest/timings.tsv"
printf 'stage\tseconds\n' > "$timings"
stage() {  # stage NAME COMMAND...: run it, append its wall time
    local name=$1 start
    shift
    start=$EPOCHREALTIME
    echo "== $name: $*"
    "$@"
    awk -v n="$name" -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%s\t%.1f\n", n, b - a }' >> "$timings"
}

corpus=$(realpath -m "${CORPUS:-runs/cxr-256}")
if [ ! -f "$corpus/manifest.jsonl" ]; then
    stage corpus "$radsynth" data cxr --size 256 ${CXR_ROOT:+--root "$CXR_ROOT"} -o "$corpus"
fi

# The recipes name runs/...: point them at this corpus and this run's VAE.
sed "s|runs/cxr-256/manifest.jsonl|$corpus/manifest.jsonl|" configs/vae-cxr-256-gpu.yaml > "$work/vae.yaml"
sed -e "s|runs/cxr-256/manifest.jsonl|$corpus/manifest.jsonl|" \
    -e "s|runs/vae-cxr-256/model|$work/vae/model|" configs/ldm-cxr-256-gpu.yaml > "$work/ldm.yaml"
if [ -n "${SMOKE:-}" ]; then  # the recipes as they are, at a batch a CPU takes in seconds
    sed -i -e 's/^batch_size: .*/batch_size: 2/' -e 's/^  workers: .*/  workers: 0/' "$work/vae.yaml" "$work/ldm.yaml"
fi

stage vae "$radsynth" train "$work/vae.yaml" "${device[@]}" "${steps[@]}" --out "$work/vae" --no-progress
stage ldm "$radsynth" train "$work/ldm.yaml" "${device[@]}" "${steps[@]}" --out "$work/ldm" --no-progress
stage ship "$py" scripts/ship_model.py "$work/ldm/model" "$dest/ldm" --float16
cp "$work/vae/log.jsonl" "$dest/vae-log.jsonl"
cp "$work/ldm/log.jsonl" "$dest/ldm-log.jsonl"
[ -n "${KEEP_WORK:-}" ] || rm -rf "$work"
cat "$timings"
echo "shipped: $dest/ldm (copy it to src/radsynth/weights/<family>/ldm only where benchmarks/cxr.py finds it better)"
