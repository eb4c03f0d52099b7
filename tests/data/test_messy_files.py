"""Files as users have them (issue 11): BOM + CRLF + Chinese, GBK, cp1252 smart quotes, TSV, empty labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelworks.config.load import validate
from modelworks.config.schema import DataConfig
from modelworks.data.encoding import detect_encoding, sniff_delimiter
from modelworks.data.sources import read_source
from modelworks.errors import UserError

ROWS = [
    ("足球比赛球队进球，冠军！", "体育"),
    ("股票市场投资银行，利率上调", "财经"),
    ("手机电脑软件，芯片与数据", "科技"),
    ("教练和球员在联赛中获胜", "体育"),
    ("公司基金经济新闻", "财经"),
    ("", "科技"),
    ("没有标签的文本", ""),
]


def _text(sep: str = ",") -> str:
    return f"text{sep}label\r\n" + "".join(f"{t}{sep}{label}\r\n" for t, label in ROWS)


def read(path: Path, **data) -> object:
    return read_source(DataConfig(source=str(path), target="label", **data), path.parent)


def test_utf8_with_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "zh.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _text().encode("utf-8"))
    loaded = read(path)
    assert list(loaded.frame.columns) == ["text", "label"]
    assert loaded.frame["text"].iloc[0] == "足球比赛球队进球，冠军！" and loaded.encoding == "utf-8"


@pytest.mark.parametrize("given", ["gbk", "gb18030", "auto"])
def test_gbk_file_read_with_its_encoding_or_detected(tmp_path: Path, given: str) -> None:
    path = tmp_path / "zh.csv"
    path.write_bytes(_text().encode("gbk"))
    loaded = read(path, encoding=given)
    assert loaded.frame["label"].tolist()[:3] == ["体育", "财经", "科技"]
    assert loaded.encoding == ("gb18030" if given == "auto" else given)


def test_gbk_file_read_as_utf8_names_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "zh.csv"
    path.write_bytes(_text().encode("gbk"))
    with pytest.raises(UserError, match=r"zh\.csv is not UTF-8 text \(line 2.*data\.encoding.*auto"):
        read(path)


@pytest.mark.parametrize("given", ["cp1252", "auto"])
def test_cp1252_smart_quotes(tmp_path: Path, given: str) -> None:
    path = tmp_path / "quotes.csv"
    lines = [
        f"\u201cIt\u2019s {w} caf\u00e9\u201d \u2014 said {i};{'pos' if i % 2 else 'neg'}"
        for i, w in enumerate(["great", "awful"] * 10)
    ]
    path.write_bytes(("text;label\r\n" + "\r\n".join(lines) + "\r\n").encode("cp1252"))
    loaded = read(path, encoding=given)  # the delimiter is sniffed: the header has no comma
    assert loaded.frame["text"].iloc[0] == "\u201cIt\u2019s great caf\u00e9\u201d \u2014 said 0"
    assert detect_encoding(path) == "cp1252"


def test_tsv_is_tab_separated_and_empty_labels_are_dropped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "zh.tsv"
    path.write_bytes(_text("\t").encode("utf-8"))
    loaded = read(path)
    assert sniff_delimiter(path, "utf-8") == "\t"
    assert len(loaded.frame) == len(ROWS) - 1 and loaded.dropped == {"missing target": 1}
    assert "nan" not in set(loaded.frame["label"].astype(str))


def test_tab_typed_as_backslash_t_on_a_command_line_or_in_yaml(tmp_path: Path) -> None:
    path = tmp_path / "zh.txt"
    path.write_bytes(_text("\t").encode("utf-8"))
    for typed in ("\\t", "\t", "tab"):
        assert DataConfig(source="x", csv_delimiter=typed).csv_delimiter == "\t"
        assert len(read(path, csv_delimiter=typed).frame) == len(ROWS) - 1
    with pytest.raises(UserError, match="csv_delimiter"):
        validate({"data": {"source": "x", "csv_delimiter": ";;"}, "model": {"type": "mlp"}}, "config")
    with pytest.raises(UserError, match="unknown encoding"):
        validate({"data": {"source": "x", "encoding": "klingon"}, "model": {"type": "mlp"}}, "config")


def test_missing_target_as_an_error_names_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "zh.csv"
    path.write_bytes(_text().encode("utf-8"))
    with pytest.raises(
        UserError, match=r"1 row\(s\) of .*zh\.csv have no value in the target column 'label' \(rows 6\)"
    ):
        read(path, missing_target="error")


@pytest.mark.parametrize("given", ["big5", "auto"])
def test_big5_traditional_chinese_read_with_its_encoding_or_detected(tmp_path: Path, given: str) -> None:
    rows = [
        ("足球比賽球隊進球，冠軍！", "體育"),
        ("股票市場投資銀行，利率上調", "財經"),
        ("手機電腦軟體，晶片與資料", "科技"),
    ]
    path = tmp_path / "zh-tw.csv"
    path.write_bytes(("text,label\r\n" + "".join(f"{t},{y}\r\n" for t, y in rows * 4)).encode("big5"))
    loaded = read(path, encoding=given)
    assert loaded.frame["label"].tolist()[:3] == ["體育", "財經", "科技"]
    assert loaded.encoding.startswith("big5")  # auto: charset-normalizer's big5hkscs, a superset of Big5
