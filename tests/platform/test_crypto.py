"""Decryption reports tampering only when the authentication tag fails: any other failure inside
it (a bug, a broken library, memory) surfaces as itself, never as "tampered data"."""

from __future__ import annotations

import io

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from modelworks.platform import crypto
from modelworks.platform.crypto import (
    HEADER,
    NONCE_BYTES,
    EncryptingWriter,
    Keyring,
    TamperedData,
    decrypt_chunks,
    new_key,
)

CHUNK = 64


@pytest.fixture
def sealed() -> tuple[bytes, Keyring, bytes]:
    ring = Keyring.from_text(new_key(), "test")
    data = bytes(range(200))
    out = io.BytesIO()
    writer = EncryptingWriter(out, ring, CHUNK)
    writer.write(data)
    writer.close()
    return out.getvalue(), ring, data


def test_a_tampered_chunk_is_reported_as_tampering_with_its_cause(sealed):
    blob, ring, data = sealed
    assert b"".join(decrypt_chunks(io.BytesIO(blob), ring)) == data
    changed = bytearray(blob)
    changed[HEADER.size + NONCE_BYTES + 3] ^= 1  # a ciphertext byte of chunk 0
    with pytest.raises(TamperedData, match="integrity check at chunk 0") as caught:
        b"".join(decrypt_chunks(io.BytesIO(bytes(changed)), ring))
    assert isinstance(caught.value.__cause__, InvalidTag)


@pytest.mark.parametrize("failure", [RuntimeError("a bug in the caller"), MemoryError(), TypeError("bad argument")])
def test_any_other_failure_during_decryption_is_not_reported_as_tampering(sealed, monkeypatch, failure):
    blob, ring, _ = sealed

    class Broken:  # the real cipher, whose decrypt fails for a reason other than the tag
        def __init__(self, key: bytes) -> None:
            self.real = AESGCM(key)

        def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes:
            raise failure

    monkeypatch.setattr(crypto, "AESGCM", Broken)
    with pytest.raises(type(failure)) as caught:
        b"".join(decrypt_chunks(io.BytesIO(blob), ring))
    assert caught.value is failure and not isinstance(caught.value, TamperedData)


def test_an_error_of_the_reader_is_not_reported_as_tampering(sealed):
    """An exception thrown into the generator at a chunk (the consumer failing) is not tampering."""
    blob, ring, _ = sealed
    chunks = decrypt_chunks(io.BytesIO(blob), ring)
    next(chunks)
    with pytest.raises(ValueError, match="consumer"):
        chunks.throw(ValueError("the consumer failed"))
