"""Encryption at rest for datasets: AES-256-GCM in chunks, with a keyring for rotation.

File format (all integers big-endian)::

    header  = MAGIC (8 bytes "MWENC\\x00\\x00\\x01") | key id (16 ASCII hex) | file id (16 random bytes)
              | chunk size (uint32)
    chunk i = nonce (12 random bytes) | AES-GCM(plaintext chunk i) with its 16-byte tag

Every chunk holds ``chunk size`` plaintext bytes except the last, which holds fewer (possibly
none). Each chunk is authenticated with the associated data ``header | i (uint64) | final
(1 byte)``, so a changed header, a flipped byte, chunks swapped or moved between files (the
file id), a dropped tail (the new last chunk was not sealed as final) or appended chunks all
fail the tag check: a reader yields only authenticated plaintext, or raises `TamperedData`.

Keys are 32 random bytes, written as base64. A key's id is the start of its SHA-256, so the id
stored with a file always names the key that sealed it; the `Keyring`'s first key encrypts,
every key decrypts.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from modelworks.errors import UserError
from modelworks.platform.errors import StoredDataError

MAGIC = b"MWENC\x00\x00\x01"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_ID_CHARS = 16
HEADER = struct.Struct(f">8s{KEY_ID_CHARS}s16sI")
DEFAULT_CHUNK = 1 << 20  # 1 MiB of plaintext per chunk
MAX_CHUNK = 64 << 20


class TamperedData(StoredDataError):
    """Encrypted data failed authentication: changed, truncated, reordered, or not ours."""


class UnknownKey(StoredDataError):
    """Data was encrypted with a key that is not in the keyring."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:KEY_ID_CHARS]


def new_key() -> str:
    """A fresh key, as the base64 text MODELWORKS_DATA_KEY and key files hold."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def parse_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise UserError(
            f"{where} must hold base64 keys of {KEY_BYTES} bytes each (make one with: openssl rand -base64 32)"
        )
    return key


@dataclass(frozen=True)
class Keyring:
    """Keys by id; ``current`` encrypts new data, every key decrypts."""

    keys: dict[str, bytes]
    current: str

    @classmethod
    def of(cls, *keys: bytes) -> Keyring:
        """A keyring whose first key is current."""
        if not keys:
            raise UserError("a keyring needs at least one key")
        return cls(keys={key_id(k): k for k in keys}, current=key_id(keys[0]))

    @classmethod
    def from_text(cls, text: str, where: str) -> Keyring:
        """Keys separated by commas or lines; blank lines and ``#`` comments are skipped."""
        parts = [
            p for line in text.splitlines() if not line.strip().startswith("#") for p in line.split(",") if p.strip()
        ]
        if not parts:
            raise UserError(f"{where} holds no key")
        return cls.of(*(parse_key(p, where) for p in parts))

    @classmethod
    def load(cls, data_key: str | None, data_key_file: Path | None, home: Path) -> Keyring:
        """From MODELWORKS_DATA_KEY, else the key file; with neither, ``<home>/data.key``,
        created (mode 0600) with a new random key on first use."""
        if data_key:
            return cls.from_text(data_key, "MODELWORKS_DATA_KEY")
        path = data_key_file or home / "data.key"
        if data_key_file is None and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(new_key() + "\n")
        try:
            text = path.read_text()
        except OSError as e:
            raise UserError(f"cannot read the data key file {path}: {e.strerror}") from e
        return cls.from_text(text, f"the data key file {path}")

    def get(self, kid: str) -> bytes:
        if kid not in self.keys:
            raise UnknownKey(
                f"the data was encrypted with key {kid}, which is not in the keyring; "
                "add that key (MODELWORKS_DATA_KEY or the key file) to read it"
            )
        return self.keys[kid]


def _aad(header: bytes, index: int, final: bool) -> bytes:
    return header + struct.pack(">QB", index, final)


class EncryptingWriter:
    """A binary sink that encrypts what is written to ``out`` chunk by chunk; `close` seals
    the final chunk (without it the file reads as truncated). Does not close ``out``."""

    def __init__(self, out: BinaryIO, keyring: Keyring, chunk_size: int = DEFAULT_CHUNK) -> None:
        if not 1 <= chunk_size <= MAX_CHUNK:
            raise ValueError(f"chunk_size must be between 1 and {MAX_CHUNK}; got {chunk_size}")
        self._out = out
        self._aes = AESGCM(keyring.get(keyring.current))
        self._header = HEADER.pack(MAGIC, keyring.current.encode(), os.urandom(16), chunk_size)
        self._chunk = chunk_size
        self._buffer = bytearray()
        self._index = 0
        self.closed = False
        out.write(self._header)

    def write(self, data: bytes) -> int:
        self._buffer += data
        # Strictly more than a chunk: the last full chunk may turn out to be the final one.
        while len(self._buffer) > self._chunk:
            self._seal(bytes(self._buffer[: self._chunk]), final=False)
            del self._buffer[: self._chunk]
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._seal(bytes(self._buffer), final=True)  # empty only for an empty file
            self._buffer.clear()
            self.closed = True

    def _seal(self, plaintext: bytes, final: bool) -> None:
        nonce = os.urandom(NONCE_BYTES)
        self._out.write(nonce + self._aes.encrypt(nonce, plaintext, _aad(self._header, self._index, final)))
        self._index += 1


def read_header(src: BinaryIO) -> tuple[bytes, str, int]:
    """The raw header, the key id and the chunk size of an encrypted stream."""
    header = src.read(HEADER.size)
    if len(header) != HEADER.size:
        raise TamperedData("the encrypted data is truncated: its header is incomplete")
    magic, kid, _file_id, chunk_size = HEADER.unpack(header)
    if magic != MAGIC:
        raise TamperedData("the data is not in modelworks' encrypted format (bad header)")
    if not 1 <= chunk_size <= MAX_CHUNK:
        raise TamperedData("the encrypted data's header is damaged (chunk size)")
    return header, kid.decode("ascii", "replace"), chunk_size


def decrypt_chunks(src: BinaryIO, keyring: Keyring) -> Iterator[bytes]:
    """The plaintext of an encrypted stream, one authenticated chunk at a time. Raises
    `TamperedData` at the first chunk that fails (nothing unauthenticated is ever yielded)."""
    header, kid, chunk_size = read_header(src)
    aes = AESGCM(keyring.get(kid))
    record = NONCE_BYTES + chunk_size + TAG_BYTES
    current = src.read(record)
    index = 0
    while True:
        following = src.read(record) if len(current) == record else b""
        final = not following
        if len(current) < NONCE_BYTES + TAG_BYTES:
            raise TamperedData(f"the encrypted data is truncated (chunk {index})")
        try:
            plaintext = aes.decrypt(current[:NONCE_BYTES], current[NONCE_BYTES:], _aad(header, index, final))
        except InvalidTag as e:  # only a failed tag means tampering; any other error is a bug, and propagates as one
            raise TamperedData(
                f"the encrypted data failed its integrity check at chunk {index}: "
                "it was changed, truncated or reordered"
            ) from e
        yield plaintext
        if final:
            return
        current, index = following, index + 1


def seal(plaintext: bytes, keyring: Keyring) -> bytes:
    """`plaintext` in the encrypted format, in memory (for small values such as a preview)."""
    out = io.BytesIO()
    writer = EncryptingWriter(out, keyring)
    writer.write(plaintext)
    writer.close()
    return out.getvalue()


def unseal(sealed: bytes, keyring: Keyring) -> bytes:
    """The plaintext of `seal`'s output; `TamperedData` when it was changed."""
    return b"".join(decrypt_chunks(io.BytesIO(sealed), keyring))
