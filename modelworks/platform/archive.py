"""Safe names and safe zip extraction: nothing a user sends can name a place outside its folder.

`check_member_name` is the rule for every relative path that comes from outside (file names,
archive entries): forward-slash separated, no empty, ``.`` or ``..`` part, no absolute path,
drive letter, backslash, NUL or other control character. `safe_extract` checks every entry of
a zip before writing anything (names, symlinks, entry count, declared sizes), then extracts
counting the bytes really written (declared sizes can lie) and resolving each target to be sure
it stays inside the folder; on any failure the folder is removed again. `unpack` is how the
platform opens an upload that is a zip of a folder (an image folder's classes): extract safely,
then find the folder the archive holds.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from modelworks.errors import UserError
from modelworks.platform.errors import TooLarge

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
COPY_CHUNK = 1 << 20


class UnsafeArchive(UserError):
    """An archive that would write outside its folder, or one too large to extract."""


def check_member_name(name: str, what: str = "file name") -> PurePosixPath:
    """``name`` as a relative path that cannot leave its folder, or a UserError saying why."""
    problem = None
    if not name or len(name) > 1000:
        problem = "it is empty or too long"
    elif _CONTROL.search(name):
        problem = "it holds a NUL or control character"
    elif "\\" in name:
        problem = "it holds a backslash"
    elif name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        problem = "it is an absolute path"
    elif "%" in name and re.search(r"%[0-9A-Fa-f]{2}", name):
        problem = "it holds URL-encoded characters"
    elif any(part in ("", ".", "..") for part in name.rstrip("/").split("/")):
        problem = "it holds an empty, '.' or '..' path part"
    if problem:
        raise UnsafeArchive(f"refused {what} {name!r}: {problem}")
    return PurePosixPath(name.rstrip("/"))


@dataclass(frozen=True)
class Limits:
    max_files: int = 100_000
    max_bytes: int = 10 << 30  # uncompressed, all files together


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def safe_extract(archive: Path, target: Path, limits: Limits = Limits()) -> int:
    """Extract the zip ``archive`` into the new folder ``target``; returns the files written."""
    try:
        with zipfile.ZipFile(archive) as zf:
            entries = zf.infolist()
            if len(entries) > limits.max_files:
                raise TooLarge(f"the archive holds {len(entries)} entries; at most {limits.max_files} are allowed")
            if sum(e.file_size for e in entries) > limits.max_bytes:
                raise TooLarge(f"the archive would extract to more than {limits.max_bytes} bytes")
            for e in entries:
                check_member_name(e.filename, "archive entry")
                if _is_symlink(e):
                    raise UnsafeArchive(f"refused archive entry {e.filename!r}: symbolic links are not allowed")
            target.mkdir(parents=True, exist_ok=False)
            try:
                return _extract(zf, entries, target.resolve(), limits)
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
    except zipfile.BadZipFile as e:
        raise UserError(f"not a valid zip archive: {e}") from e


def unpack(archive: Path, target: Path, limits: Limits = Limits()) -> Path:
    """Extract the zip of a folder into the new folder ``target``; returns the folder it holds."""
    safe_extract(archive, target, limits)
    return folder_root(target)


def folder_root(folder: Path) -> Path:
    """The folder an archive was made of: the extracted folder itself, or its one top-level folder
    when that holds only folders (``pets/cat/1.png`` -> ``pets``; ``cat/1.png`` -> the folder)."""
    children = [p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    if len(children) == 1 and children[0].is_dir():
        if all(c.is_dir() for c in children[0].iterdir() if not c.name.startswith(".")):
            return children[0]
    return folder


def _extract(zf: zipfile.ZipFile, entries: list[zipfile.ZipInfo], root: Path, limits: Limits) -> int:
    written, files = 0, 0
    for e in entries:
        path = (root / e.filename).resolve()
        if not path.is_relative_to(root) or path == root:
            raise UnsafeArchive(f"refused archive entry {e.filename!r}: it resolves outside the target folder")
        if e.is_dir():
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            dst = open(path, "xb")  # exclusive: never through an existing file or link
        except FileExistsError as e:
            raise UnsafeArchive(f"refused archive entry {e.filename!r}: it appears twice") from e
        with zf.open(e) as src, dst:
            while chunk := src.read(COPY_CHUNK):
                written += len(chunk)
                if written > limits.max_bytes:
                    raise TooLarge(f"the archive extracts to more than {limits.max_bytes} bytes")
                dst.write(chunk)
        files += 1
    return files
