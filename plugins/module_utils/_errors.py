# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception fleetpatch's host-side code raises.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.
"""

from __future__ import annotations

__all__ = ["PatchError"]


class PatchError(Exception):
    """Something fleetpatch cannot do on this host; ``details`` go into the module's failure result."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.details = details
