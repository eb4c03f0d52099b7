"""Dataset previews at rest: an encrypted version's preview (its first rows) is sealed too.

A sealed preview is stored in the version's ``preview`` column as ``{"sealed": BASE64}``, the
preview's JSON in the encrypted format of `modelworks.platform.crypto` under the keyring's current
key; `preview_of` opens it for a caller allowed to read the version. Previews of public and
built-in versions stay plain. Encrypted versions stored before previews were sealed have theirs
sealed when the server starts (`seal_plain_previews`, from `modelworks.platform.bootstrap`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelworks.platform.crypto import Keyring, seal, unseal
from modelworks.platform.db.models import DatasetVersion

SEALED = "sealed"


def seal_preview(preview: dict[str, Any], keyring: Keyring) -> dict[str, Any]:
    """The stored form of an encrypted version's preview."""
    return {SEALED: base64.b64encode(seal(json.dumps(preview).encode(), keyring)).decode("ascii")}


def is_sealed(preview: dict[str, Any]) -> bool:
    return set(preview) == {SEALED}


def preview_of(row: DatasetVersion, keyring: Keyring) -> dict[str, Any]:
    """A version's preview as its readers see it (opened when sealed)."""
    if not is_sealed(row.preview):
        return row.preview
    return json.loads(unseal(base64.b64decode(row.preview[SEALED]), keyring))


def reseal_preview(row: DatasetVersion, keyring: Keyring) -> None:
    """Seal an encrypted version's preview again under the keyring's current key (key rotation)."""
    if row.encrypted:
        row.preview = seal_preview(preview_of(row, keyring), keyring)


def seal_plain_previews(session: Session, keyring: Callable[[], Keyring]) -> int:
    """Seal the plaintext previews of encrypted versions; returns how many. Commits. The keyring
    is loaded only when there is one to seal."""
    encrypted = session.scalars(select(DatasetVersion).where(DatasetVersion.encrypted.is_(True)))
    rows = [row for row in encrypted if not is_sealed(row.preview)]
    if rows:
        keys = keyring()
        for row in rows:
            row.preview = seal_preview(row.preview, keys)
        session.commit()
    return len(rows)
