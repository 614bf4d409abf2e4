# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Options shared by the plugins that write and read the audit log (the audit callback, the audit_verify lookup)."""

from __future__ import annotations


class ModuleDocFragment:
    """The audit log's HMAC key, read from the same setting by the plugin that signs and the one that checks."""

    DOCUMENTATION = r"""
options:
  hmac_key_file:
    description:
      - File whose content (without trailing white space) is the key of the HMAC-SHA256 of every record of the
        audit log and of its head file.
      - The P(fleetpatch.rollout.audit#callback) callback signs with it; without it, records are only chained,
        and anyone who can write the log can re-hash it. The P(fleetpatch.rollout.audit_verify#lookup) lookup
        checks the HMACs with it; without it, it does not check them.
    type: path
    env:
      - name: FLEETPATCH_AUDIT_HMAC_KEY_FILE
    ini:
      - section: callback_fleetpatch_audit
        key: hmac_key_file
"""
