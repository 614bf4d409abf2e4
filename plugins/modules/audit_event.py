#!/usr/bin/python
# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: audit_event
short_description: Record a rollout event in the audit trail, and stop the rollout when the trail cannot be written
version_added: 0.1.0
description:
  - Appends one record (an approval, the plan, a wave's start or end, a gate decision, a rollback, a verification, a note)
    to the audit log of the run, through the same hash chain, lock and head file as the
    P(fleetpatch.rollout.audit#callback) callback.
  - The log, its head file, the HMAC key and the run id are those of the run's
    P(fleetpatch.rollout.audit#callback) callback, configured once (its C(log), C(head_file) and
    C(hmac_key_file) options); this action has no log option of its own, so the trail cannot split in two.
  - B(Fails) when the callback is not enabled in the run, when the record cannot be written (missing directory,
    permissions, an immutable or full file, a lock held too long, a damaged last record), and when the callback
    failed to write any record of the run before. A callback cannot stop a run; this task can, so a rollout
    runs it at every gate, with C(any_errors_fatal), and stops there.
  - With O(kind=approval) it enforces the two-person rule before anything changes. O(approved_by) and
    O(implemented_by) are required and must be two people (compared trimmed and case-insensitively), except
    for an O(urgency=emergency) patch with a written O(justification), which is recorded. A refused approval
    is recorded too, and then the task fails naming the field and value.
  - When AWX or Automation Controller runs the job (its C(awx_user_name) is set), the implementer is the user who
    launched it. O(implemented_by) may be left out; a different name is refused, and the approver must be someone
    else. The approval records C(platform), the launching user with C(awx_job_id) and, when the job runs inside a
    workflow, C(awx_workflow_job_id), so the decision of the workflow's approval node can be traced in AWX (the
    workflow job's nodes list its approval, whose C(approved_or_denied_by) names who approved it).
  - The actors, patch and wave the record names come from the options, or else from the variables
    C(fleetpatch_approved_by), C(fleetpatch_implemented_by), C(fleetpatch_verified_by), C(fleetpatch_urgency),
    C(fleetpatch_justification), C(fleetpatch_patch_id), C(fleetpatch_artifact_sha256) and C(fleetpatch_wave),
    and AWX's C(awx_user_name) and C(awx_job_id). The callback names them in the records that follow.
  - Runs on the controller only; it never contacts the host.
author:
  - fleetpatch maintainers (@fleetpatch)
extends_documentation_fragment:
  - fleetpatch.rollout.attributes
attributes:
  action:
    support: full
    description: Everything happens on the controller.
  check_mode:
    support: full
    details:
      - The record is written in check mode too, marked C(check_mode), so that a dry run checks the audit sink.
  diff_mode:
    support: none
  idempotent:
    support: none
    details:
      - Every run appends a record. It never reports a change, as it changes nothing on the fleet.
options:
  kind:
    description:
      - What happened.
      - V(plan) records the wave plan before the first wave, with the windows it overrides (and on whose
        decision) and the hosts it defers; pass them in O(data).
      - V(lock) records host locks taken from other runs (M(fleetpatch.rollout.lock)); the fleet lock's own
        records are written by M(fleetpatch.rollout.fleet_lock).
      - V(rollback) records hosts rolled back (a halted wave's, or a round of a fleet-wide rollback with each
        host's outcome in O(data)); V(rollback_start) and V(rollback_end) open and close a fleet-wide rollback
        (P(fleetpatch.rollout.rollback#role)).
      - V(notification) records a customer told of a patch, or a notice that failed (P(fleetpatch.rollout.notify#role)).
    type: str
    required: true
    choices: [approval, plan, wave_start, wave_end, gate, rollback, rollback_start, rollback_end, verified, lock, note, notification]
  approved_by:
    description:
      - Who approved the patch. Required with O(kind=approval), given here or by C(fleetpatch_approved_by).
    type: str
  implemented_by:
    description:
      - Who runs the rollout. Required with O(kind=approval), given here or by C(fleetpatch_implemented_by), except
        under AWX, where it is the user who launched the job (C(awx_user_name)) and may only repeat that name.
    type: str
  urgency:
    description:
      - The patch's urgency, as in its manifest. Only V(emergency) lets one person approve and implement.
      - Defaults to C(fleetpatch_urgency), then V(routine).
    type: str
    choices: [routine, urgent, emergency]
  justification:
    description:
      - Why one person approves and implements an emergency patch. Recorded with the approval.
      - Defaults to C(fleetpatch_justification).
    type: str
  verified_by:
    description:
      - Who verified the patch after it was applied. Required with O(kind=verified), given here or by
        C(fleetpatch_verified_by).
    type: str
  patch_id:
    description:
      - The patch, when C(fleetpatch_patch_id) does not name it.
    type: str
  artifact_sha256:
    description:
      - The sha256 of the patch's artifact, when C(fleetpatch_artifact_sha256) does not give it.
    type: str
  wave:
    description:
      - The wave this event belongs to. Required with O(kind=wave_start) and O(kind=wave_end).
    type: str
  gate:
    description:
      - The gate's name. Required with O(kind=gate).
    type: str
  decision:
    description:
      - What the gate decided. Required with O(kind=gate).
    type: str
    choices: [proceed, halt]
  hosts:
    description:
      - The hosts the event concerns (a wave's hosts, the hosts rolled back).
    type: list
    elements: str
  data:
    description:
      - Further details of the event, recorded as given, except that vaulted values and every value under a key named
        like one of O(fleetpatch.rollout.audit#callback:redact_keys) (by default C(password), C(passwd), C(token), C(secret),
        C(private_key), C(api_key); C(db_password) and C(X-Api-Key) too), at any depth, are written as V(<redacted>).
    type: dict
    default: {}
notes:
  - The record names the task's host, unless the task is C(run_once), which records one event for the play.
seealso:
  - plugin: fleetpatch.rollout.audit
    plugin_type: callback
  - plugin: fleetpatch.rollout.audit_verify
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: Preflight - two people, recorded, before anything changes
  fleetpatch.rollout.audit_event:
    kind: approval
    approved_by: "{{ fleetpatch_approved_by }}"
    implemented_by: "{{ fleetpatch_implemented_by }}"
    urgency: routine
  run_once: true
  any_errors_fatal: true

- name: Gate after the canary wave - stops the rollout when the audit log cannot be written
  fleetpatch.rollout.audit_event:
    kind: gate
    gate: canary-health
    decision: proceed
    wave: canary
    data:
      healthy: 3
      unhealthy: 0
  run_once: true
  any_errors_fatal: true

- name: Record who verified the patch
  fleetpatch.rollout.audit_event:
    kind: verified
    verified_by: carol
  run_once: true
"""

RETURN = r"""
audit:
  description: The record written.
  returned: success
  type: dict
  contains:
    log:
      description: The audit log.
      type: str
      sample: /var/log/fleetpatch/audit.jsonl
    seq:
      description: The record's sequence number.
      type: int
      sample: 42
    hash:
      description: The record's sha256, which the next record chains onto.
      type: str
      sample: 5f2b0d7c4f6a4d8e0b61d8c2b3a9f1e07d6c5b4a392817160f5e4d3c2b1a0918
    event:
      description: The kind of event.
      type: str
      sample: approval
    run_id:
      description: The run's id, the same in every record of the run.
      type: str
      sample: 0c6f8f1d2a3b4c5d6e7f809112233445
    context:
      description: The actors, patch and wave this event set, which the callback names in later records.
      type: dict
      sample: {"actors": {"approved_by": "alice", "implemented_by": "bob"}}
approval:
  description: The approval as recorded.
  returned: O(kind=approval) and it was accepted
  type: dict
  sample: {"approved_by": "alice", "implemented_by": "bob", "urgency": "routine", "two_person": true}
"""
