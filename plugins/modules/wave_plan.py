#!/usr/bin/python
# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: wave_plan
short_description: Plan a patch's rollout over the play's hosts, reading only the variables the planner needs
version_added: 0.1.0
description:
  - Plans the waves of a patch over the play's hosts with the planner of the P(fleetpatch.rollout.wave_plan#filter)
    filter (the same rules, the same plan; see that filter for what the plan decides and how), on the controller.
  - Reads, for each host, only the variables the planner uses (C(region), C(cluster), C(cluster_role), C(customer),
    C(maintenance_window), C(version) and the detection result named by O(detect_key)), each templated in that
    host's context as C(hostvars[host][name]) would be. The filter instead takes a mapping of every host's
    variables, which a play builds by templating each host's whole C(hostvars); at 10,000 hosts that takes most of
    a minute, where this module plans in seconds.
  - Returns the plan as RV(plan) and, with O(fact), sets it as a variable of every host of the play, the way
    M(ansible.builtin.set_fact) does. Run it with C(run_once), as the plan is the same for every host.
  - Runs on the controller only; it never contacts a host.
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
      - It only plans; check mode plans the same.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - It changes nothing, and reports RV(ignore:changed=false).
options:
  manifest:
    description:
      - The checked manifest that P(fleetpatch.rollout.manifest#lookup) returns, or the path of a manifest file
        (a relative one is found like any file of the task, relative to the role, the playbook or the inventory).
    type: raw
    required: true
  policy:
    description:
      - The rollout policy, as the filter's O(fleetpatch.rollout.wave_plan#filter:policy).
    type: dict
  now:
    description:
      - The time the plan is made for, an RFC 3339 time with an offset such as V(2026-03-03T01:30:00Z).
      - Default is the controller's current time.
    type: str
  notifications:
    description:
      - The pre-notification record, as its loaded data (what P(fleetpatch.rollout.notifications#lookup) returns) or
        as the path of its file (found like O(manifest)). Only urgent patches use it.
    type: raw
  detect_key:
    description:
      - The host variable holding the registered result of M(fleetpatch.rollout.detect). A host without it may carry
        C(version) instead (the detect playbook's report rows).
    type: str
    default: detect
  exclude_hosts:
    description:
      - Names of hosts the operator leaves out of this rollout, whatever their state. Each must be one of O(hosts).
    type: list
    elements: str
    default: []
  unreachable:
    description:
      - What a host unreachable at detection does, as the filter's O(fleetpatch.rollout.wave_plan#filter:unreachable).
    type: str
    choices: [fail, skip]
    default: fail
  hosts:
    description:
      - The hosts to plan. Default the play's hosts, C(ansible_play_hosts_all) (after any C(--limit)).
      - Each must be a host of the inventory.
    type: list
    elements: str
  fact:
    description:
      - The name of a variable to set to the plan on every host of the play, as M(ansible.builtin.set_fact) with
        C(run_once) would. The hosts share one plan; it is not copied per host.
      - On ansible-core 2.21 and later it is a variable of the play, like a C(set_fact) one, never written to the
        fact cache. On ansible-core 2.19 and 2.20 it is a fact (C(ansible_facts)), as of any action that returns
        facts; with a persistent fact cache, that cache then holds the plan once per host.
      - Without it, register the result and read RV(plan).
    type: str
notes:
  - Errors name the module, the host or field and the offending value, one per line, as the filter's do.
seealso:
  - plugin: fleetpatch.rollout.wave_plan
    plugin_type: filter
  - plugin: fleetpatch.rollout.window_open
    plugin_type: filter
  - module: fleetpatch.rollout.detect
"""

EXAMPLES = r"""
- name: Detect what every host runs
  fleetpatch.rollout.detect:
    component: fpdemo
    install_dir: /srv/fpdemo
    affected: ">=7.0.0,<7.0.28"
    fixed_version: 7.0.28
  register: fp_detected

- name: Plan the rollout of the fpdemo hot patch over the hosts of this play
  fleetpatch.rollout.wave_plan:
    manifest: FP-2025-14847.yml
    detect_key: fp_detected
    policy:
      canary: {count: 2, spread: regions}
      region_order: [ap-south, eu-west]
      batch: {percent: 50}
    fact: fp_plan
  run_once: true

- name: List the waves
  ansible.builtin.debug:
    msg: "{{ fp_plan.waves | map(attribute='name') | list }}"
  run_once: true
"""

RETURN = r"""
plan:
  description:
    - The plan, as the filter P(fleetpatch.rollout.wave_plan#filter) returns it, with the same keys (see there),
      C(patch), C(urgency), C(now), C(waves), C(excluded), C(deferred), C(overrides), C(failures), C(follow_up) and
      C(summary).
  returned: success
  type: dict
  sample:
    patch: FP-2025-14847
    urgency: routine
    now: "2026-03-03T02:00:00Z"
    waves:
      - index: 1
        name: canary
        group: canary
        hosts:
          - {host: euw-03, region: eu-west, cluster: null, cluster_role: null, customer: acme, version: 7.0.26, window: open,
             window_end: "2026-03-03T05:00:00Z", next_window: "2026-03-05T01:00:00Z", judge_only: false,
             reason: "canary: picked as canary, spread over regions; in its maintenance window until 2026-03-03T05:00:00Z"}
    excluded: []
    deferred: []
    overrides: []
    failures: []
    follow_up: null
"""
