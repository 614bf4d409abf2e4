# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller half of fleetpatch.rollout.health: take the probes, thresholds and soak from the patch manifest."""

from __future__ import annotations

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._action import ManifestAction


class ActionModule(ManifestAction):
    """Fill the module's arguments from O(manifest), then run it: one round trip."""

    MODULE = "fleetpatch.rollout.health"
    OPERATION = "health"
