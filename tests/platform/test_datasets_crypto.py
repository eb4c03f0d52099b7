"""The pieces under datasets, without a server: chunked AES-GCM (every kind of tampering is
caught, rotation through the keyring), safe names, and zip extraction that cannot escape."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from modelworks.errors import UserError
from modelworks.platform.archive import Limits, UnsafeArchive, check_member_name, safe_extract
from modelworks.platform.crypto import (
    HEADER,
    NONCE_BYTES,
    TAG_BYTES,
    EncryptingWriter,
    Keyring,
    TamperedData,
    UnknownKey,
    decrypt_chunks,
    new_key,
    parse_key,
)
from modelworks.platform.errors import TooLarge

KEY_A, KEY_B = new_key(), new_key()
CHUNK = 64
RECORD = NONCE_BYTES + CHUNK + TAG_BYTES


def encrypt(data: bytes, ring: Keyring, chunk: int = CHUNK) -> bytes:
    out = io.BytesIO()
    writer = EncryptingWriter(out, ring, chunk)
    for i in range(0, len(data), 50):  # writes that do not line up with chunks
        writer.write(data[i : i + 50])
    writer.close()
    return out.getvalue()


def decrypt(blob: bytes, ring: Keyring) -> bytes:
    return b"".join(decrypt_chunks(io.BytesIO(blob), ring))


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 5 * CHUNK + 7])
def test_round_trip_and_ciphertext_is_not_plaintext(size):
    ring = Keyring.from_text(KEY_A, "test")
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    blob = encrypt(data, ring)
    assert decrypt(blob, ring) == data
    if size >= 16:
        assert data[:16] not in blob


def _records(blob: bytes) -> tuple[bytes, list[bytes]]:
    body = blob[HEADER.size :]
    return blob[: HEADER.size], [body[i : i + RECORD] for i in range(0, len(body), RECORD)]


def tampered(kind: str, blob: bytes) -> bytes:
    header, records = _records(blob)
    if kind == "flip a ciphertext byte":
        b = bytearray(blob)
        b[HEADER.size + NONCE_BYTES + 5] ^= 1
        return bytes(b)
    if kind == "flip a header byte":
        b = bytearray(blob)
        b[30] ^= 1  # inside the file id
        return bytes(b)
    if kind == "truncate mid-chunk":
        return blob[:-10]
    if kind == "drop the final chunk":
        return header + b"".join(records[:-1])
    if kind == "swap two chunks":
        return header + records[1] + records[0] + b"".join(records[2:])
    if kind == "duplicate a chunk":
        return header + records[0] + b"".join(records)
    if kind == "append a chunk":
        return blob + records[0]
    if kind == "only the header":
        return header
    if kind == "chunk from another file":
        other = encrypt(b"y" * 300, Keyring.from_text(KEY_A, "test"))
        return header + _records(other)[1][0] + b"".join(records[1:])
    raise AssertionError(kind)


KINDS = [
    "flip a ciphertext byte",
    "flip a header byte",
    "truncate mid-chunk",
    "drop the final chunk",
    "swap two chunks",
    "duplicate a chunk",
    "append a chunk",
    "only the header",
    "chunk from another file",
]


@pytest.mark.parametrize("kind", KINDS)
def test_tampering_is_detected_never_garbage(kind):
    ring = Keyring.from_text(KEY_A, "test")
    data = b"".join(b"row %05d\n" % i for i in range(40))  # 400 bytes: 7 chunks
    bad = tampered(kind, encrypt(data, ring))
    got = []
    with pytest.raises(TamperedData):
        for chunk in decrypt_chunks(io.BytesIO(bad), ring):
            got.append(chunk)
    assert data.startswith(b"".join(got))  # what came out before the error was authentic


def test_keyring_rotation_and_removed_key():
    old = Keyring.from_text(KEY_A, "test")
    both = Keyring.from_text(f"{KEY_B},{KEY_A}", "test")
    new_only = Keyring.from_text(KEY_B, "test")
    sealed_old = encrypt(b"secret rows", old)
    assert decrypt(sealed_old, both) == b"secret rows"  # previous keys still decrypt
    resealed = encrypt(decrypt(sealed_old, both), both)  # current key encrypts
    assert decrypt(resealed, new_only) == b"secret rows"
    with pytest.raises(UnknownKey, match="not in the keyring"):
        decrypt(sealed_old, new_only)


def test_key_file_is_created_private_and_bad_keys_are_user_errors(tmp_path):
    ring = Keyring.load(None, None, tmp_path)
    assert stat.S_IMODE((tmp_path / "data.key").stat().st_mode) == 0o600
    assert Keyring.load(None, None, tmp_path).current == ring.current
    (tmp_path / "k").write_text(f"# rotated 2026\n{KEY_B}\n{KEY_A}\n")
    assert Keyring.load(None, tmp_path / "k", tmp_path).current == Keyring.from_text(KEY_B, "x").current
    for bad in ["", "not base64!", "c2hvcnQ="]:
        with pytest.raises(UserError, match="base64 keys of 32 bytes|holds no key"):
            Keyring.from_text(bad, "MODELWORKS_DATA_KEY")
    with pytest.raises(UserError):
        parse_key("AAAA", "x")


@pytest.mark.parametrize(
    "name",
    [
        "../evil",
        "a/../../evil",
        "/etc/passwd",
        "C:evil",
        "a\\..\\evil",
        "a\x00b",
        "..%2Fevil",
        "%2e%2e/evil",
        "./x",
        "a//b",
        "",
        "..",
    ],
)
def test_unsafe_names_are_refused(name):
    with pytest.raises(UserError, match="refused"):
        check_member_name(name)


def _zip(path: Path, entries: list[tuple[str, bytes]], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries:
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize(
    "entries,symlink",
    [
        ([("cat/a.png", b"x"), ("../evil.png", b"x")], None),
        ([("/tmp/evil.png", b"x")], None),
        ([("cat\\..\\..\\evil.png", b"x")], None),
        ([("cat/a.png", b"x")], "cat/link.png"),
    ],
    ids=["dotdot", "absolute", "backslash", "symlink"],
)
def test_zip_extraction_refuses_escapes_and_writes_nothing(tmp_path, entries, symlink):
    archive = _zip(tmp_path / "in.zip", entries, symlink)
    target = tmp_path / "box" / "out"
    with pytest.raises(UnsafeArchive):
        safe_extract(archive, target)
    assert not target.exists() and not (tmp_path / "evil.png").exists() and not (tmp_path / "box" / "evil.png").exists()


def test_zip_bombs_are_refused(tmp_path):
    archive = _zip(tmp_path / "bomb.zip", [("cat/a.png", b"\0" * 200_000)])
    with pytest.raises(TooLarge):
        safe_extract(archive, tmp_path / "out", Limits(max_bytes=100_000))
    many = _zip(tmp_path / "many.zip", [(f"cat/{i}.png", b"x") for i in range(20)])
    with pytest.raises(TooLarge):
        safe_extract(many, tmp_path / "out2", Limits(max_files=10))
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()
    assert safe_extract(many, tmp_path / "out3") == 20
