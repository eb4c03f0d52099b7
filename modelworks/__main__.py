"""`python -m modelworks ...` (what `torchrun -m modelworks train exp.yaml` runs on each rank)."""

from modelworks.cli import main

main()
