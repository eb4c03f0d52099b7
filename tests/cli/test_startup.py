"""Start-up stays light: each command imports only what it uses (issue 14).

Each check runs in a fresh interpreter and lists the heavy modules it ended up importing; times
are measured by `bench/end_to_end.py`, not here.
"""

import json
import subprocess
import sys
from pathlib import Path

# Never needed by --help, init, or a training run on a table.
NOT_FOR_TABLES = (
    "transformers", "tokenizers", "peft", "optuna", "onnx", "onnxruntime", "fastapi", "uvicorn", "matplotlib",
    "modelworks.server", "modelworks.platform", "modelworks.jobs", "modelworks.tuning.study",
    "modelworks.compression.compress", "modelworks.exporting.export",
    "sklearn.feature_extraction", "sklearn.ensemble", "sklearn.cluster", "sklearn.neighbors",
)  # fmt: skip
# Not needed to print help or a starter config either.
NOT_FOR_HELP = (*NOT_FOR_TABLES, "torch", "numpy", "pandas", "sklearn")

PROBE = """
import json, sys
from modelworks.cli import app
for args in json.loads(sys.argv[1]):
    try:
        app(args, prog_name="modelworks")
    except SystemExit as e:
        assert not e.code, (args, e.code)
print(json.dumps(sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)), file=sys.stderr)
"""


def _imported(commands: list[list[str]], watched: tuple[str, ...], cwd: Path) -> list[str]:
    """The `watched` modules imported by running `commands` in one fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(commands), json.dumps(watched)],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stderr.strip().splitlines()[-1])


def test_help_and_init_import_no_heavy_library(tmp_path: Path) -> None:
    commands = [["--help"], ["init", "--help"], ["init", "tabular-classification"], ["train", "--help"]]
    assert _imported(commands, NOT_FOR_HELP, tmp_path) == []


def test_training_on_a_table_imports_only_what_it_uses(tmp_path: Path) -> None:
    source = "rows.csv"
    lines = ["x,y,colour,label"] + [f"{i % 7},{(i * 3) % 5},{'rgb'[i % 3]},{'ab'[i % 2]}" for i in range(48)]
    (tmp_path / source).write_text("\n".join(lines) + "\n")
    (tmp_path / "exp.yaml").write_text(
        f"data: {{source: {source}, target: label}}\nmodel: {{type: mlp, hidden: [4]}}\n"
        "train: {epochs: 2, batch_size: 16, progress: false}\n"
    )
    assert _imported([["train", "exp.yaml"]], NOT_FOR_TABLES, tmp_path) == []
    report = (next((tmp_path / "runs").iterdir()) / "report.html").read_text(encoding="utf-8")
    assert report.count('<figure role="img"') == 5  # the report still draws every chart
