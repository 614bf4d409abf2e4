# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: audit_verify
short_description: Check a fleetpatch audit log and say where it was tampered with
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
extends_documentation_fragment:
  - fleetpatch.rollout.audit
description:
  - Checks each audit log written by the P(fleetpatch.rollout.audit#callback) callback and
    M(fleetpatch.rollout.audit_event) the way C(fleetpatch-audit verify) does (the hash chain, the HMAC of every
    record when O(hmac_key_file) is set, and the head file), or a trail in PostgreSQL given as a V(postgresql://)
    URI (its rows, and its head row; psycopg 3 needed).
  - With O(witness), also that each log reaches every head a run published to the witness and holds the same
    record there; a log cut back to an older head, or rewritten after it, fails even when its head file was put
    back with it.
  - Returns one result per log. A tampered log is not an error here; its result says RV(_value[].ok=false) and
    lists the first bad record of each kind of damage. A log that cannot be read is an error.
options:
  _terms:
    description:
      - Paths of audit logs on the controller, or V(postgresql://) URIs of databases that hold the trail O(trail)
        (without a password; libpq reads it from E(PGPASSWORD) or a pgpass file).
    type: list
    elements: path
    required: true
  head_file:
    description:
      - The head file to check the log against. Defaults to the log's path followed by V(.head).
      - With several logs, each uses its own default; set this only with one log.
    type: path
  check_head:
    description:
      - Check the head file (the head row of a trail in PostgreSQL). Without it a cut-off tail goes unnoticed.
    type: bool
    default: true
  trail:
    description:
      - The name of the trail, as the callback's O(fleetpatch.rollout.audit#callback:trail) gives it; the table
        read from a database, and the witnessed heads compared with each log.
    type: str
    default: main
    version_added: 0.1.0
  witness:
    description:
      - Where runs published their heads (the callback's O(fleetpatch.rollout.audit#callback:witness)), either a
        V(postgresql://) URI, whose C(fleetpatch_audit.witness) table is read, or the path of a syslog file.
    type: list
    elements: str
    default: []
    version_added: 0.1.0
"""

EXAMPLES = r"""
- name: Check the audit trail after the rollout
  ansible.builtin.assert:
    that: audit.ok
    fail_msg: "{{ audit.problems }}"
  vars:
    audit: "{{ lookup('fleetpatch.rollout.audit_verify', '/var/log/fleetpatch/audit.jsonl', hmac_key_file='/etc/fleetpatch/audit.key') }}"

- name: Check a trail in PostgreSQL against the heads the runs published to syslog
  ansible.builtin.assert:
    that: audit.ok
    fail_msg: "{{ audit.problems }}"
  vars:
    audit: >-
      {{ lookup('fleetpatch.rollout.audit_verify', 'postgresql://auditor@db.example.com/audit', trail='prod',
                hmac_key_file='/etc/fleetpatch/audit.key', witness=['/var/log/fleetpatch-witness.log']) }}
"""

RETURN = r"""
_value:
  description: One result per log.
  type: list
  elements: dict
  contains:
    ok:
      description: Whether the log is intact.
      type: bool
    records:
      description: How many records the log holds.
      type: int
    last_seq:
      description: The sequence number of the last record.
      type: int
    witness_checked:
      description: How many witnessed heads were compared with the log (only with O(witness)).
      type: int
    problems:
      description:
        - The first bad record of each kind of damage, by line; empty when the log is intact.
        - Each has C(kind) (V(unparseable), V(edited), V(forged), V(deleted), V(reordered), V(truncated),
          V(head), V(witness)), C(line) (1-based, the row of a trail in PostgreSQL; none for the head file), C(seq)
          and C(message).
        - V(head) also means a head file more than one write behind the log; a writer that stops between writing
          records and moving the head on leaves it one record, or one group of records, behind.
      type: list
      elements: dict
    notes:
      description: What was not checked, a head file one write behind the log, and every repair on record.
      type: list
      elements: str
    repairs:
      description:
        - Every record that says the log was cut, in order, so a repaired log never reads as a plain intact one.
        - Each has C(event) (V(torn_tail), an unfinished write a crash cut short and the next writer cut off; V(repair),
          a torn committed record an operator cut off with C(fleetpatch-audit repair)), C(line), C(seq), C(ts) and
          C(data) (what was cut, its sha256, the head file's seq then, and for a repair who ran it).
      type: list
      elements: dict
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit_pg
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._audit import AuditError, read_key, verify


class LookupModule(LookupBase):
    """fleetpatch.rollout.audit_verify."""

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        key_file = self.get_option("hmac_key_file")
        head_file = self.get_option("head_file")
        if head_file and len(terms) > 1:
            raise AnsibleLookupError("fleetpatch.rollout.audit_verify: head_file names one head file, but several logs were given")
        results = []
        try:
            key = read_key(key_file) if key_file else None
            trail = _audit_pg.check_name(self.get_option("trail"))
            sources = self.get_option("witness") or []
            witness = [seen for source in sources for seen in _audit_pg.read_witness(source, trail)] if sources else None
            for path in terms:
                if _audit_pg.is_dsn(path):
                    results.append(_audit_pg.verify_trail(path, trail, key=key, check_head=self.get_option("check_head"), witness=witness))
                    continue
                head = (head_file or f"{path}.head") if self.get_option("check_head") else None
                results.append(verify(path, key=key, head=head, witness=witness))
        except AuditError as exc:
            raise AnsibleLookupError(f"fleetpatch.rollout.audit_verify: {exc}") from None
        return results
