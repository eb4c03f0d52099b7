"""`python -m modelworks.cli ...`, the same as `modelworks ...`."""

from modelworks.cli import main

main()
