"""The comparison table shows every run's values, the union of metrics, and the model rows."""

from rich.console import Console

from modelworks.evaluate.compare import compare_table


def _render(table) -> str:
    console = Console(record=True, width=200)
    console.print(table)
    return console.export_text()


def test_compare_table_renders_both_runs():
    runs = [
        ("run-a", {"summary": {"accuracy": 0.91, "log_loss": 0.25}, "extra": {"model": "mlp", "parameters": 1200}}),
        ("run-b", {"summary": {"accuracy": 0.87, "log_loss": 0.31, "roc_auc": 0.95}, "extra": {"model_type": "[tab]"}}),
    ]
    table = compare_table(runs)
    text = _render(table)
    assert "run-a" in text and "run-b" in text
    for value in ("0.91", "0.87", "0.25", "0.31", "0.95", "1,200", "mlp", "[tab]"):
        assert value in text
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]
    rows = {row[0]: row[1:] for row in cells}
    assert rows["roc_auc"] == ["-", "0.95"]
    assert rows["params"] == ["1,200", "-"]
    assert rows["model"] == ["mlp", "[tab]"]  # shown as text, not read as rich markup


def test_best_value_per_row_is_highlighted():
    runs = [("a", {"summary": {"accuracy": 0.9, "rmse": 2.0}}), ("b", {"summary": {"accuracy": 0.8, "rmse": 1.0}})]
    table = compare_table(runs)
    accuracy = [table.columns[i]._cells[0] for i in (1, 2)]
    rmse = [table.columns[i]._cells[1] for i in (1, 2)]
    assert [str(c.style) for c in accuracy] == ["bold green", ""]  # higher accuracy wins
    assert [str(c.style) for c in rmse] == ["", "bold green"]  # lower rmse wins
    assert "model" not in _render(table)


def test_summary_falls_back_to_metrics():
    text = _render(compare_table([("only", {"metrics": {"mse": 4.0, "per_class": {}, "notes": []}})]))
    assert "mse" in text and "4" in text
