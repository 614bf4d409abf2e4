#!/usr/bin/python
# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: health
short_description: Probe a service on its host over a soak time, and judge it against thresholds
version_added: 0.1.0
description:
  - Runs the health probes O(probes) on the host, each O(samples) times per round, in rounds O(interval)
    seconds apart until O(soak) seconds have passed. Each probe gives its metrics, the sample count, the
    errors, the error rate in percent and the p50, p95 and p99 latency in milliseconds (nearest rank, over every
    sample that came back, failed ones included).
  - Every round is judged on its own. A round that breaks a threshold is a breach, and a breach must persist
    before it fails the verdict, so that a noisy moment (a busy machine, a pause of the service) cannot flip it,
    as in Argo Rollouts' C(failureLimit) and Flagger's C(threshold). O(consecutive_failures) breaching rounds in
    a row fail the host, and the soak stops there; a breach still open when the soak's time is up is followed
    by more rounds until it reaches that count (fails) or a round passes (it was transient). A single round
    (O(soak=0)) that breaches is thus confirmed by up to O(consecutive_failures) - 1 more rounds, O(interval)
    seconds apart.
  - The whole soak fails too when at least half of its rounds, and at least O(consecutive_failures), breached,
    because a release that keeps flapping is broken, not noisy. The pooled samples of the soak are not judged
    against the thresholds again, since that could only fail a soak because of a breach that did not persist.
    Breaches that did not fail the verdict are returned in RV(transient_failures).
  - A service that does not answer at all breaches every round, so it fails after O(consecutive_failures)
    rounds.
  - Thresholds are absolute (O(thresholds.max_p95_ms), O(thresholds.max_error_rate)), relative to a baseline
    measured on the same host before the patch (O(baseline), O(thresholds.baseline_p95_factor)), or relative
    to hosts of the region that still run the old release (O(peers), O(thresholds.peers_p95_factor); canary
    analysis).
  - A metric that no sample measured breaks every absolute threshold on it. A relative check whose reference
    is missing is listed in RV(not_evaluated) instead.
  - A probe with O(probes[].vulnerability) set proves the fixed vulnerability is gone; it runs once, and a
    failure makes the host RV(vulnerable) and fails the verdict at once, whatever the rounds say (the health
    probes then take one round, for their metrics).
  - A failing verdict names, in RV(failures), the probe, the metric, the measured value, the limit and the
    threshold that broke. With O(fail_on_unhealthy) the task then fails, still returning every metric.
  - Given O(manifest) (handled on the controller), the probes, thresholds, samples, interval, soak and
    O(consecutive_failures) come from the manifest's C(monitoring) section; task arguments win over it.
  - Given O(judged_patch), a healthy verdict is also recorded in the host's state file, in the same round trip;
    the record of the apply of O(judged_patch) to O(judged_version) gets a C(judged) mark. That is the only
    change this module ever makes; without O(judged_patch) it only reads.
author:
  - fleetpatch maintainers (@fleetpatch)
extends_documentation_fragment:
  - fleetpatch.rollout.attributes
  - fleetpatch.rollout.attributes.state_changing
  - fleetpatch.rollout.service.state_file
  - fleetpatch.rollout.lease
  - fleetpatch.rollout.health
options:
  manifest:
    description:
      - Path, on the controller, of the patch manifest whose C(monitoring) section gives O(probes),
        O(thresholds), O(samples), O(interval), O(soak) and O(consecutive_failures).
      - A relative path is found as P(ansible.builtin.file#lookup) finds a file, in the task's role and then the
        playbook's directory (under C(files/) first), then beside the inventory; the current directory plays no part.
    type: path
  judged_patch:
    description:
      - The patch whose apply this check judges, like V(FP-2025-14847). When the verdict is healthy, the last
        record of its apply in the state file O(state_file), if it is to O(judged_version), is marked C(judged)
        (once; RV(judged) tells when). A rollout re-run plans a host whose apply was never judged (its run ended
        during the soak) to soak and gate it again, and takes one with the mark as done.
      - Nothing is recorded when the verdict fails, or when the state file holds no such apply.
    type: str
  judged_version:
    description:
      - The release the apply of O(judged_patch) installed (the fixed version). Required with O(judged_patch).
    type: str
notes:
  - The probes run on the host, against the service as the host sees it, so a partitioned network between the
    controller and the service's clients is not what they measure.
seealso:
  - module: fleetpatch.rollout.apply
  - module: fleetpatch.rollout.rollback
"""

EXAMPLES = r"""
- name: Measure the baseline before the patch (no thresholds beyond errors)
  fleetpatch.rollout.health:
    probes:
      - name: health
        type: http
        url: http://127.0.0.1:8080/health
        expect_body: '"status": "ok"'
    samples: 20
  register: fp_baseline

- name: Judge the patched host against its baseline and its unpatched neighbours, over a 5-minute soak
  fleetpatch.rollout.health:
    probes:
      - name: health
        type: http
        url: http://127.0.0.1:8080/health
      - name: port
        type: tcp
        port: 8080
      - name: leak-gone
        type: command
        command: [/usr/bin/python3, /srv/fpdemo/bin/fpdemoctl.py, check-leak]
        vulnerability: true
    samples: 20
    soak: 300
    interval: 10
    consecutive_failures: 3  # a breach must last three rounds (20 s) in a row to fail the host
    thresholds:
      max_error_rate: 0
      max_p95_ms: 250
      baseline_p95_factor: 3
      peers_p95_factor: 3
    baseline: "{{ fp_baseline.metrics }}"

- name: Take everything from the patch's change record
  fleetpatch.rollout.health:
    manifest: /srv/patches/FP-2025-14847.yml
"""

RETURN = r"""
healthy:
  description: The verdict; false when a threshold broke or the host is still vulnerable.
  returned: always
  type: bool
  sample: false
vulnerable:
  description: Whether a O(probes[].vulnerability) probe failed; null without such a probe.
  returned: always
  type: bool
  sample: false
metrics:
  description: Per probe name, what its samples measured over the whole soak.
  returned: always
  type: dict
  sample:
    health:
      type: http
      samples: 20
      errors: 20
      error_rate: 100.0
      p50_ms: 1.9
      p95_ms: 2.4
      p99_ms: 2.6
      max_ms: 2.6
      errors_seen: ["HTTP 500, expected 200"]
failures:
  description:
    - What failed the verdict, first failure first; empty when healthy. The vulnerability first, then the failures
      of the rounds that decided it (the O(consecutive_failures) rounds in a row, or every breaching round of a
      flapping soak), each with its round.
  returned: always
  type: list
  elements: dict
  sample:
    - probe: health
      metric: error_rate
      measured: 100.0
      limit: 0.0
      threshold: max_error_rate
      why: error_rate 100.0 > 0.0
      round: 1
transient_failures:
  description:
    - Failures of the rounds that breached but did not fail the verdict (a breach shorter than
      O(consecutive_failures) rounds in a row, in a soak where breaches stayed the exception), each as in
      RV(failures) with its round.
  returned: always
  type: list
  elements: dict
  sample:
    - probe: health
      metric: p95_ms
      measured: 1512.4
      limit: 250.0
      threshold: max_p95_ms
      why: p95_ms 1512.4 > 250.0
      round: 4
breached_rounds:
  description: The numbers of the rounds that broke a threshold, whether or not that failed the verdict.
  returned: always
  type: list
  elements: int
  sample: [4]
consecutive_failures:
  description: The number of breaching rounds in a row that fails the verdict, as applied.
  returned: always
  type: int
  sample: 3
not_evaluated:
  description: Relative checks that could not be made, and why (no baseline, no peer measured the probe).
  returned: always
  type: list
  elements: dict
  sample:
    - probe: health
      threshold: baseline_p95_factor
      why: no baseline p95 for this probe
rounds:
  description: Rounds of probes taken, the rounds that confirmed a breach open at the end of the soak included.
  returned: always
  type: int
  sample: 30
soaked_seconds:
  description: Seconds the check took.
  returned: always
  type: float
  sample: 300.4
judged:
  description:
    - With O(judged_patch), when the apply's record was marked judged (now, or by an earlier check); V(null)
      when nothing was marked (unhealthy, or no such apply recorded).
  returned: when O(judged_patch) is given
  type: str
  sample: "2026-03-03T01:31:07Z"
thresholds:
  description: The thresholds applied.
  returned: always
  type: dict
  sample: {"max_error_rate": 0.0, "max_p95_ms": 250.0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetpatch.rollout.plugins.module_utils._apply import judge_health
from ansible_collections.fleetpatch.rollout.plugins.module_utils._argspec import HEALTH_ARGSPEC, OWNER_ARGSPEC, STATE_FILE_ARGSPEC
from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError
from ansible_collections.fleetpatch.rollout.plugins.module_utils._host import ModuleHost


def main():
    module = AnsibleModule(
        argument_spec={
            "manifest": {"type": "path"},
            **HEALTH_ARGSPEC,
            "judged_patch": {"type": "str"},
            "judged_version": {"type": "str"},
            **STATE_FILE_ARGSPEC,
            **OWNER_ARGSPEC,
        },
        required_together=[("judged_patch", "judged_version")],
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = judge_health(params, ModuleHost(module), module.check_mode, params["judged_patch"], params["judged_version"])
    except PatchError as exc:
        module.fail_json(msg=str(exc), **exc.details)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
