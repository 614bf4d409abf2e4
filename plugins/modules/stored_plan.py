#!/usr/bin/python
# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: stored_plan
short_description: Write a rollout's plan to a file, or read a stored plan back once the audit trail vouches for it
version_added: 0.1.0
description:
  - A rollout planned once and run wave by wave as separate jobs (AWX job templates, job slicing) keeps its plan in a
    JSON file on the controller. It holds the manifest's path and sha256, each host's detected version, the policy,
    the planning time and the plan of P(fleetpatch.rollout.wave_plan#filter).
  - With O(state=written) it writes O(plan) to O(path) and returns the file's sha256 (RV(sha256)), which the rollout
    records in the audit trail with the plan (M(fleetpatch.rollout.audit_event), C(data.plan_sha256)).
  - With O(state=read) it reads O(path) back and refuses it, naming the field and the value, when the run's audit
    trail does not verify or holds no plan record of that sha256, when the manifest's bytes changed since the plan was
    made, or when the plan has no wave O(wave).
  - With O(error_budget) as well, it counts the failures of the wave O(wave) and of every wave before it from the
    audit trail, as every job and slice that ran them recorded them, against the budget (RV(gate)). A planned host that
    no job reported counts as a failure.
  - Needs the audit callback P(fleetpatch.rollout.audit#callback), whose trail it reads (a file or PostgreSQL).
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
      - With O(state=written) in check mode the file is not written; RV(sha256) is what it would hold.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Writing the same plan again leaves the file as it is.
options:
  state:
    description:
      - V(written) writes O(plan) to O(path); V(read) reads and checks the stored plan at O(path).
    type: str
    choices: [written, read]
    default: read
  path:
    description:
      - The plan file on the controller.
    type: path
    required: true
  manifest:
    description:
      - The patch's checked change record, as P(fleetpatch.rollout.manifest#lookup) returns it.
    type: dict
    required: true
  plan:
    description:
      - The plan to write, as P(fleetpatch.rollout.wave_plan#filter) returns it. Required with O(state=written).
    type: dict
  wave:
    description:
      - With O(state=read), the name of the wave to return (RV(wave)); a name the plan does not have is refused.
    type: str
  hosts:
    description:
      - With O(wave), the hosts of this job (its inventory), so that RV(slice) holds only the wave's hosts among them.
    type: list
    elements: str
  error_budget:
    description:
      - With O(state=read) and O(wave), count the failures so far from the audit trail against this budget, a count
        (V(2)) or a percentage of the planned hosts (V(10%)); see RV(gate).
    type: raw
seealso:
  - module: fleetpatch.rollout.audit_event
  - plugin: fleetpatch.rollout.audit
    plugin_type: callback
"""

EXAMPLES = r"""
- name: Write the plan, to run its waves as separate jobs
  fleetpatch.rollout.stored_plan:
    state: written
    path: /srv/plans/FP-2025-14847.json
    manifest: "{{ record }}"
    plan: "{{ rollout_plan }}"
  register: stored
  run_once: true

- name: Read it back in a wave job, with this job's slice of the wave
  fleetpatch.rollout.stored_plan:
    path: /srv/plans/FP-2025-14847.json
    manifest: "{{ record }}"
    wave: canary
    hosts: "{{ ansible_play_hosts_all }}"
  register: stored
  run_once: true
"""

RETURN = r"""
sha256:
  description: The sha256 of the plan file's bytes.
  returned: always
  type: str
  sample: 3b1f0d7c4f6a4d8e0b61d8c2b3a9f1e07d6c5b4a392817160f5e4d3c2b1a0918
path:
  description: The plan file, as an absolute path.
  returned: always
  type: str
  sample: /srv/plans/FP-2025-14847.json
plan:
  description: The stored plan (the plan of P(fleetpatch.rollout.wave_plan#filter)).
  returned: O(state=read)
  type: dict
document:
  description: The whole stored document (C(format), C(patch), C(manifest), C(manifest_sha256), C(now), C(policy), C(detected), C(plan)).
  returned: O(state=read)
  type: dict
recorded:
  description: The audit record of the plan (its C(seq), C(run_id) and C(ts)).
  returned: O(state=read)
  type: dict
  sample: {"seq": 41, "run_id": "0c6f8f1d2a3b4c5d6e7f809112233445", "ts": "2026-12-02T03:10:00.000000Z"}
wave:
  description: The wave O(wave) of the plan.
  returned: O(state=read) with O(wave)
  type: dict
slice:
  description: The wave O(wave) with only its hosts among O(hosts).
  returned: O(state=read) with O(wave) and O(hosts)
  type: dict
gate:
  description:
    - The gate after O(wave), from the audit trail. C(failures) (every failure so far, the plan's hosts unreachable at
      detection included), C(wave_failures) (those of O(wave)), C(budget) (a count), C(halted) (the failures exceed
      it), C(missing) (planned hosts no job reported), C(jobs) (the run ids of the jobs counted).
  returned: O(state=read) with O(wave) and O(error_budget)
  type: dict
"""
