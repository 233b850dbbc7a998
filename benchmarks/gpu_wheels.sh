#!/usr/bin/env bash
# Prepare .gpu_carry/ (git-ignored) for benchmarks/gpu_check.py on a device machine without network:
#   wheels/     fairmerge's pure-Python dependencies that the nvidia-h200 image lacks (its package
#               list: /work/.library/device/KINDS.md; torch, transformers, peft, pandas, pyarrow,
#               scikit-learn, scipy, accelerate, typer, rich, tqdm, pyyaml, matplotlib are there);
#   data/       the HateXplain files (3.4 MB; CC-BY-4.0 data, see ../shared/data/SOURCES.md), copied
#               from $FAIRMERGE_DATA_DIR and never committed;
#   tokenizer/  the embedded MiniLM's tokenizer files (the check's models are random-init, so the
#               90 MB of MiniLM weights stay behind).
# Usage (repository root, with network): bash benchmarks/gpu_wheels.sh
# Then name .gpu_carry in the device call's `carry` and run there:
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu_carry/wheels/*.whl \
#     && PYTHONPATH=src:/tmp/site python3 benchmarks/gpu_check.py
set -euo pipefail
cd "$(dirname "$0")/.."
carry=.gpu_carry
python=${PYTHON:-python3}
data=${FAIRMERGE_DATA_DIR:?set FAIRMERGE_DATA_DIR to the data directory}
# name==version as installed here (one version of each; pip --no-deps fetches no dependencies)
packages=(fairlearn optuna alembic sqlalchemy mako colorlog pydantic pydantic-core
  annotated-types typing-inspection)
rm -rf "$carry" && mkdir -p "$carry/wheels" "$carry/data" "$carry/tokenizer"
pins=()
for name in "${packages[@]}"; do
  version=$("$python" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name" 2>/dev/null) \
    || { echo "skipping $name: not installed here" >&2; continue; }
  pins+=("$name==$version")
done
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d "$carry/wheels" "${pins[@]}"
cp -r "$data/hatexplain" "$carry/data/"
"$python" - "$carry/tokenizer" <<'PY'
import sys
from transformers import AutoTokenizer
from fairmerge.models import embedded_model_path
AutoTokenizer.from_pretrained(embedded_model_path()).save_pretrained(sys.argv[1])
PY
du -sh "$carry"/*
