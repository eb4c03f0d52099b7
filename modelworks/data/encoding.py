"""Text files as users have them: an encoding (named, or detected) and a delimiter (named, or sniffed).

``data.encoding`` is a Python codec name (utf-8, gb18030, gbk, big5, cp1252, ...) or "auto": the
file's first MiB is tried as UTF-8 (a byte order mark is fine) and otherwise handed to
charset-normalizer (Chinese code pages widened to gb18030, Latin ones read as cp1252 where the
file decodes in it). ``data.csv_delimiter`` is one character, ``\\t``/``tab`` for a tab, or "auto":
a tab for .tsv/.tab files; otherwise a comma when the header line has one, else sniffed from the
first lines among tab, semicolon and pipe.
"""

from __future__ import annotations

import codecs
import csv
from pathlib import Path

from modelworks.errors import UserError

SAMPLE_BYTES = 1 << 20  # how much of a file detection reads
TAB_NAMES = ("\\t", "tab", "TAB")
TAB_EXTENSIONS = (".tsv", ".tab")
SNIFFED = "\t;|"
# single-byte Latin code pages detection cannot tell apart on short text; cp1252 (Windows, Western
# Europe and the Americas) is preferred whenever the file decodes in it
LATIN = {"cp1250", "cp1252", "cp1254", "cp1257", "latin_1", "iso8859_2", "iso8859_9", "iso8859_15", "mac_roman"}
WIDER = {"gb2312": "gb18030", "gbk": "gb18030", "big5": "big5hkscs", "ascii": "utf-8"}  # supersets, for detection


def check_encoding(name: str) -> str:
    """``data.encoding``: "auto" or a codec Python knows (a ValueError otherwise, for pydantic)."""
    if name != "auto":
        try:
            codecs.lookup(name)
        except LookupError as e:
            raise ValueError(f"unknown encoding {name!r}; use e.g. utf-8, gb18030, gbk, big5, cp1252, or auto") from e
    return name


def check_delimiter(value: str) -> str:
    """``data.csv_delimiter``: "auto", one character, or ``\\t``/``tab`` (as typed on a command line) for a tab."""
    value = "\t" if value in TAB_NAMES else value
    if value != "auto" and len(value) != 1:
        raise ValueError(f"give one character, \\t for a tab, or auto; got {value!r}")
    return value


def python_codec(encoding: str) -> str:
    """The codec to read with: UTF-8 reads with or without a byte order mark."""
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def detect_encoding(path: Path) -> str:
    """The encoding of a text file, from its first MiB; a UserError when it does not look like text."""
    with open(path, "rb") as f:
        sample = f.read(SAMPLE_BYTES)
    try:
        codecs.getincrementaldecoder("utf-8-sig")().decode(sample, final=False)  # a cut last character is fine
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes  # imported here to keep start-up light: only "auto" needs it

    best = from_bytes(sample).best()
    if best is None:
        raise UserError(f"cannot tell the encoding of {path}; set data.encoding (e.g. gb18030, big5, cp1252)")
    name = codecs.lookup(best.encoding).name
    if name in LATIN:
        try:
            sample.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:
            pass
    return WIDER.get(name, name)


def sniff_delimiter(path: Path, encoding: str) -> str:
    """The delimiter of a delimited text file (see the module docstring)."""
    if path.suffix.lower() in TAB_EXTENSIONS:
        return "\t"
    with open(path, encoding=python_codec(encoding), errors="replace", newline="") as f:
        head = f.read(64 * 1024)
    first = head.split("\n", 1)[0]
    if "," in first or not any(c in first for c in SNIFFED):
        return ","
    try:
        return csv.Sniffer().sniff(head, delimiters=SNIFFED + ",").delimiter
    except csv.Error:
        return next(c for c in SNIFFED if c in first)


def not_text(path: Path, encoding: str, codec: str) -> str:
    """Where the file stops being `encoding`, and what to do about it."""
    raw = path.read_bytes()
    try:
        raw.decode(codec)
        where = ""
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        where = f" (line {line}: {e.reason})"
    name = "UTF-8" if codec == "utf-8-sig" else encoding
    return (
        f"{path} is not {name} text{where}; set data.encoding to the file's encoding "
        "(e.g. gb18030, big5, cp1252) or to auto, or save it as UTF-8"
    )
