# -*- coding: utf-8 -*-
# Copyright: fleetpatch maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Shared ``attributes`` documentation of the fleetpatch.rollout modules.

A module names the base fragment once, for the descriptions, and then one
fragment per attribute for its support level::

    extends_documentation_fragment:
      - fleetpatch.rollout.attributes
      - fleetpatch.rollout.attributes.check_mode_full
      - fleetpatch.rollout.attributes.diff_mode_full
      - fleetpatch.rollout.attributes.idempotent

``fleetpatch.rollout.attributes.state_changing`` is the same three in one line.
Read-only modules use ``fleetpatch.rollout.attributes.info_module`` instead.
"""

from __future__ import annotations


class ModuleDocFragment:
    """Attribute descriptions and support levels shared by the collection's modules."""

    # The descriptions only; every module adds the support level of each attribute.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description:
      - Can run in check mode and then reports the change it would make, without making it.
  diff_mode:
    description:
      - Returns a C(before) and C(after) view of what it changes (or would change in check mode)
        when run with C(--diff).
  idempotent:
    description:
      - Running it again with the same arguments, after a successful run, changes nothing and
        reports RV(ignore:changed=false).
      - Check mode reports the same RV(ignore:changed) as the real run would.
"""

    CHECK_MODE_FULL = r"""
attributes:
  check_mode:
    support: full
    details:
      - Every side effect on the host is skipped, and RV(ignore:changed) is the same as in a real run.
"""

    DIFF_MODE_FULL = r"""
attributes:
  diff_mode:
    support: full
"""

    IDEMPOTENT = r"""
attributes:
  idempotent:
    support: full
"""

    # A module that changes hosts: full check mode, full diff mode, idempotent.
    STATE_CHANGING = r"""
attributes:
  check_mode:
    support: full
    details:
      - Every side effect on the host is skipped, and RV(ignore:changed) is the same as in a real run.
  diff_mode:
    support: full
  idempotent:
    support: full
"""

    # A module that only reads; it never changes anything, so it has no diff.
    INFO_MODULE = r"""
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
"""
