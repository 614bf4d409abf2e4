# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: wave_plan
short_description: Plan a patch's rollout in waves, honouring clusters and maintenance windows
version_added: 0.1.0
author:
  - fleetpatch maintainers (@fleetpatch)
description:
  - Turns the hosts' inventory variables and detection results, a checked patch manifest and a rollout policy
    into an ordered list of waves, each host with the reason it is where it is. It decides; it runs nothing.
  - Hosts whose detection failed or was unreachable, or whose fleetpatch state file is damaged (the detection's
    C(state_error)), are excluded as V(unknown), never planned as patched;
    hosts already on the fixed version as V(fixed); hosts outside the affected range as V(not_affected).
  - If any affected host runs a version outside the manifest's C(compatible_with), the plan is refused and the
    error names every such host and its version.
  - The canary goes first, then region by region (O(policy) C(region_order), then the other regions, smallest
    first), then hosts without a region. No wave takes down more members of one cluster than its
    C(max_unavailable) (default keeps a strict majority up; members of unknown state count as down), and a
    cluster's primary goes in a later wave than its secondaries.
  - Maintenance windows are decided in UTC. A V(routine) patch plans only hosts inside their window and
    defers the others with their next window; an V(urgent) one overrides the window of hosts whose customer
    was pre-notified (O(notifications)) at least C(notify.lead_time) before O(now); an V(emergency) one
    overrides every window and needs O(policy) C(emergency.decided_by) and C(emergency.justification).
  - A host planned inside its window carries RV(_value.waves[].hosts[].window_end), the cutoff after which the
    rollout must not start it; check it with P(fleetpatch.rollout.window_open#filter) right before starting.
  - Windows, the policy and the pre-notification file are described by the JSON Schemas
    C(plugins/plugin_utils/plan.schema.json) and C(notifications.schema.json), and in C(docs/wave-planning.md).
  - Errors name the filter, the host or field and the offending value, one per line.
options:
  _input:
    description:
      - The hosts, as a mapping of host name to its variables, or a list of such mappings each naming its host
        in C(host).
      - Variables used are C(region), C(cluster), C(cluster_role) (V(primary) or V(secondary)), C(customer),
        C(maintenance_window) and the detection result (see O(detect_key)).
      - A C(maintenance_window) is V({days, start, duration, timezone}) or V({rrule, dtstart, duration, timezone}).
    type: raw
    required: true
  manifest:
    description:
      - The checked manifest that P(fleetpatch.rollout.manifest#lookup) or P(fleetpatch.rollout.manifest#filter)
        returns, or the path of a manifest file (a relative one is relative to the controller's current directory).
    type: raw
    required: true
  policy:
    description:
      - The rollout policy. Keys C(canary) (C(count) or C(percent); C(spread=regions) or C(region)),
        C(region_order), C(batch) (C(count) or C(percent)), C(max_unavailable) (a count or a mapping of
        cluster to count), C(unwindowed) (V(anytime) or V(defer)), C(customer_windows) and C(emergency)
        (C(decided_by), C(justification)).
      - Defaults are one canary spread over regions, one wave per region, a strict majority of each cluster up,
        and hosts without a window patched at any time.
    type: dict
  now:
    description:
      - The time the plan is made for, an RFC 3339 time with an offset such as V(2026-03-03T01:30:00Z).
      - Default is the controller's current time.
    type: str
  notifications:
    description:
      - The pre-notification record, as its loaded data (what P(fleetpatch.rollout.notifications#lookup) returns,
        a mapping whose C(notifications) lists records of C(customer), C(patch_id), C(notified_at), C(channel) and
        C(by)), or as the path of its YAML or JSON file.
      - A path given here is relative to the controller's current directory; the lookup finds the file relative to
        the role, the playbook or the inventory as Ansible finds files.
      - Only urgent patches use it. Its format is C(plugins/plugin_utils/notifications.schema.json); an example is
        C(docs/notifications.example.yml).
    type: raw
  detect_key:
    description:
      - The host variable holding the registered result of M(fleetpatch.rollout.detect). A host without it
        may carry C(version) instead (the detect playbook's report rows); the string V(unknown) there makes the
        host unknown.
      - A result with an C(interrupted) apply counts at the release the apply started from (its C(from)), because
        the next apply reverts the cut-off one first; that host is planned like any host on that release.
    type: str
    default: detect
  exclude_hosts:
    description:
      - Names of hosts the operator leaves out of this rollout, whatever their state; each is listed in
        C(excluded) with C(reason=operator). Each must be one of the input's hosts.
      - A host outside C(compatible_with) that is left out no longer refuses the plan.
    type: list
    elements: str
  unreachable:
    description:
      - What a host unreachable at detection does.
      - V(fail) lists it in C(excluded) with C(reason=unreachable) and in C(failures), which the first gate
        counts against the error budget (as C(unknown)), so that a budget of 0 stops the rollout before its first
        wave.
      - V(skip) leaves it out as C(unknown), like a host whose detection failed, without counting it.
    type: str
    choices: [fail, skip]
    default: fail
seealso:
  - module: fleetpatch.rollout.wave_plan
    description: The same planner over the play's hosts, reading only the variables it needs from each host; faster on large inventories.
  - plugin: fleetpatch.rollout.window_open
    plugin_type: filter
  - plugin: fleetpatch.rollout.manifest
    plugin_type: lookup
  - plugin: fleetpatch.rollout.notifications
    plugin_type: lookup
  - module: fleetpatch.rollout.detect
"""

EXAMPLES = r"""
- name: Plan the rollout of the fpdemo hot patch over the hosts of this play
  ansible.builtin.set_fact:
    fp_plan: >-
      {{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)))
         | fleetpatch.rollout.wave_plan(fp_manifest, policy=fp_policy, detect_key='fleetpatch_detected',
                                        notifications=lookup('fleetpatch.rollout.notifications', 'notifications.yml')) }}
  vars:
    fp_policy:
      canary: {count: 2, spread: regions}
      region_order: [ap-south, eu-west]
      batch: {percent: 50}
  run_once: true

- name: List the waves
  ansible.builtin.debug:
    msg: "{{ fp_plan.waves | map(attribute='name') | list }}"
  run_once: true
"""

RETURN = r"""
_value:
  description:
    - The plan. All times are UTC, as V(2026-03-03T01:30:00Z). Lists are sorted by host name.
  type: dict
  contains:
    patch:
      description: The manifest's id.
      type: str
    urgency:
      description: The manifest's urgency.
      type: str
    now:
      description: The time the plan was made for.
      type: str
    waves:
      description:
        - The waves, in order. Each has C(index) (from 1), C(name) (V(canary), V(eu-west), V(eu-west 1/2), ...),
          C(group) (V(canary) or the region) and C(hosts).
        - Each host has C(host), C(region), C(cluster), C(cluster_role), C(customer), C(version), C(window)
          (V(open), V(override) or V(none)), C(window_end) (the cutoff, or V(null)), C(next_window) (with a cutoff,
          the start of its next window after it, or V(null)), C(judge_only) (it already runs the fix, its health is
          to be judged) and C(reason).
      type: list
      elements: dict
    excluded:
      description:
        - Hosts left out, each with C(reason) V(fixed), V(not_affected), V(unknown) (detection failed, the state file
          is damaged, or unreachable with O(unreachable=skip)), V(unreachable) (unreachable at detection, counted in
          C(failures)), V(operator) (named in O(exclude_hosts)) or V(quorum) (its cluster has no member to spare) and
          a C(detail).
        - A host that runs the fixed version is V(fixed) unless the last apply its state file records is of this
          patch, to that version, and was never judged healthy (the run that made it ended before the soak); it
          is then planned in a wave with C(judge_only=true), so that it is soaked and gated like any other.
      type: list
      elements: dict
    deferred:
      description:
        - Hosts that wait for their maintenance window, with C(reason) (V(outside_window) or V(no_window)),
          C(detail), C(next_window) and C(next_window_end).
        - C(progress_at) is when a next run could patch the host (its next window, or sooner the moment the lead
          time since its customer's late notice passes), and C(progress) says which; V(null) for V(no_window).
      type: list
      elements: dict
    follow_up:
      description:
        - When a next run would make progress on the deferred hosts, the earliest C(progress_at), with C(at), the
          C(hosts) it frees and C(why); V(null) when no deferred host is freed by time.
      type: dict
    overrides:
      description: Hosts whose closed window was overridden, with C(reason) (V(urgent) or V(emergency)) and C(detail).
      type: list
      elements: dict
    failures:
      description:
        - The hosts unreachable at detection (with O(unreachable=fail)), as the gate's failure records (C(host),
          C(wave=detection), C(status=unknown), C(why)); the rollout's gates count them against the error budget.
      type: list
      elements: dict
    summary:
      description:
        - Counts (C(hosts), C(planned), C(waves), C(canary), C(judge_only), C(excluded) by reason, C(deferred),
          C(overrides)), C(region_order), C(emergency) (who decided and why, or V(null)), the C(policy) with its
          defaults and C(left_out) (O(exclude_hosts) and O(unreachable) as given).
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
          - host: euw-03
            region: eu-west
            cluster: eu-west-db
            cluster_role: secondary
            customer: acme
            version: 7.0.26
            window: open
            window_end: "2026-03-03T05:00:00Z"
            next_window: "2026-03-05T01:00:00Z"
            judge_only: false
            reason: "canary: picked as canary, spread over regions; in its maintenance window until 2026-03-03T05:00:00Z; ..."
    excluded:
      - {host: euw-04, reason: fixed, detail: "runs 7.0.28, at or above the fixed version 7.0.28"}
    deferred:
      - {host: aps-02, reason: outside_window, detail: "routine patch: only inside the maintenance window",
         next_window: "2026-03-06T20:30:00Z", next_window_end: "2026-03-07T00:30:00Z"}
    overrides: []
    failures: []
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._manifest import ManifestError, load_manifest
from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._waves import PlanError, plan_waves

FILTER = "fleetpatch.rollout.wave_plan"


def wave_plan(hosts, manifest, policy=None, now=None, notifications=None, detect_key="detect", exclude_hosts=None, unreachable="fail"):
    """The plan of ``manifest`` over ``hosts``; AnsibleFilterError naming the filter otherwise."""
    if isinstance(manifest, str):
        try:
            manifest = load_manifest(manifest)
        except ManifestError as exc:
            raise AnsibleFilterError(f"{FILTER}: manifest: {exc}") from None
    if not isinstance(detect_key, str) or not detect_key:
        raise AnsibleFilterError(f"{FILTER}: detect_key: expected a variable name, got {detect_key!r}")
    try:
        return plan_waves(hosts, manifest, policy=policy, now=now, notifications=notifications, detect_key=detect_key,
                          exclude_hosts=exclude_hosts, unreachable=unreachable)
    except PlanError as exc:
        raise AnsibleFilterError(f"{FILTER}: {exc}") from None


class FilterModule:
    """fleetpatch.rollout's wave planner filter."""

    def filters(self):
        return {"wave_plan": wave_plan}
