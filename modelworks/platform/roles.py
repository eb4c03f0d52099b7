"""Project roles, ordered: each role can do everything the roles below it can.

========  ==================================================================
role      can
========  ==================================================================
viewer    read the project, its members
editor    + read the audit log (and, later, upload data, submit jobs)
owner     + change members, delete the project
========  ==================================================================
"""

from __future__ import annotations

from enum import Enum


class Role(str, Enum):
    viewer = "viewer"
    editor = "editor"
    owner = "owner"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, minimum: Role) -> bool:
        """Whether a member with this role may do what needs at least ``minimum``."""
        return self.rank >= minimum.rank


_RANK = {Role.viewer: 1, Role.editor: 2, Role.owner: 3}
ROLE_NAMES = tuple(r.value for r in Role)
