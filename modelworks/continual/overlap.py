"""Rows a continuation must not train on: those of its parent's holdout, found by their content.

A dataset versioned cumulatively holds every row so far, so the candidate's own random split of a
new version can put rows of the parent's holdout (the old data's evaluation split, on which the
gate measures forgetting) into its training split: the forgetting check would then test on rows
the candidate learnt. `row_hashes` names each row by its content (the model's columns only, numbers
compared as numbers), and `without` removes a multiset of them: each hash as often as it is held
out, its first occurrences, so identical rows (common in small categorical tables) are only
removed as many times as the holdout holds them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
import pandas as pd


def row_hashes(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """One hex content hash per row of ``frame`` over ``columns`` (missing ones count as empty)."""
    part = pd.DataFrame(index=range(len(frame)))
    for name in columns:
        column = frame[name] if name in frame.columns else pd.Series([None] * len(frame))
        column = column.reset_index(drop=True)
        numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        part[name] = column.astype("float64") if numeric else column.astype(object).map(str, na_action="ignore")
    hashed = pd.util.hash_pandas_object(part, index=False).to_numpy()
    return [f"{h:016x}" for h in hashed]


def without(hashes: list[str], held_out: Iterable[str]) -> np.ndarray:
    """A keep-mask over rows named by ``hashes``: False for the first occurrences of each hash of
    ``held_out``, as many as it holds of it."""
    left = Counter(held_out)
    keep = np.ones(len(hashes), dtype=bool)
    for i, h in enumerate(hashes):
        if left.get(h, 0) > 0:
            keep[i] = False
            left[h] -= 1
    return keep
