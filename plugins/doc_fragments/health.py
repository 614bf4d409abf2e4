# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Options of the health check: its probes, rounds, thresholds and references (health, and apply when it judges)."""

from __future__ import annotations


class ModuleDocFragment:
    """The health check's options (module_utils/_argspec.py HEALTH_ARGSPEC); M(fleetpatch.rollout.health) says how they judge."""

    DOCUMENTATION = r"""
options:
  probes:
    description:
      - The probes. Required unless O(manifest) gives them.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - Name in the metrics and failures; unique. Defaults to the type and the probe's index, like V(http0).
        type: str
      type:
        description:
          - V(http) requests O(probes[].url) and expects O(probes[].expect_status) (and O(probes[].expect_body));
            V(tcp) connects to O(probes[].host):O(probes[].port); V(command) runs O(probes[].command) and
            expects O(probes[].expect_rc).
        type: str
        required: true
        choices: [http, tcp, command]
      url:
        description:
          - With V(http), the URL, requested from the host itself.
        type: str
      expect_status:
        description:
          - With V(http), the status that counts as healthy.
        type: int
        default: 200
      expect_body:
        description:
          - With V(http), a regular expression the body must match.
        type: str
      host:
        description:
          - With V(tcp), the address to connect to.
        type: str
        default: 127.0.0.1
      port:
        description:
          - With V(tcp), the port.
        type: int
      command:
        description:
          - With V(command), the command (argv, no shell).
        type: list
        elements: str
      expect_rc:
        description:
          - With V(command), the exit code that counts as healthy.
        type: int
        default: 0
      timeout:
        description:
          - Seconds one sample may take (a command is ended after it, with coreutils C(timeout)).
        type: float
        default: 5
      samples:
        description:
          - Samples of this probe per round, instead of O(samples).
        type: int
      vulnerability:
        description:
          - This probe passes only when the patched vulnerability is gone; it runs once, not every round.
        type: bool
        default: false
  samples:
    description:
      - Samples of each probe per round. Default 10 for V(http) and V(tcp), 1 for V(command).
    type: int
  soak:
    description:
      - Seconds to keep probing. V(0) is one round.
    type: float
    default: 0
  interval:
    description:
      - Seconds between two rounds.
    type: float
    default: 1
  consecutive_failures:
    description:
      - How many rounds in a row must breach a threshold before the verdict fails (see M(fleetpatch.rollout.health)).
      - V(1) fails the host at the first breaching round, with no tolerance for a noisy moment. V(1) also suits a
        measurement whose verdict is not used (a baseline), since it never takes the confirming rounds.
      - Must be 1 or more.
    type: int
    default: 3
  thresholds:
    description:
      - The limits. Only O(thresholds.max_error_rate) applies when none is given.
    type: dict
    default: {}
    suboptions:
      max_error_rate:
        description:
          - Percent of a probe's samples that may fail.
        type: float
        default: 0
      max_p50_ms:
        description:
          - Limit of the p50 latency of V(http) and V(tcp) probes, in milliseconds.
        type: float
      max_p95_ms:
        description:
          - Limit of the p95 latency, in milliseconds.
        type: float
      max_p99_ms:
        description:
          - Limit of the p99 latency, in milliseconds.
        type: float
      baseline_p95_factor:
        description:
          - With O(baseline), the p95 may be at most this many times the baseline's p95 of the same probe.
        type: float
      peers_p95_factor:
        description:
          - With O(peers), the p95 may be at most this many times the median p95 of the peers.
        type: float
      peers_error_rate_slack:
        description:
          - With O(peers), the error rate may be at most the peers' median error rate plus this many
            percentage points.
        type: float
      latency_floor_ms:
        description:
          - The smallest reference latency a factor multiplies, so that a baseline of 0 ms still gives a
            usable limit (V(factor × max(reference, floor))).
        type: float
        default: 1
  baseline:
    description:
      - RV(fleetpatch.rollout.health#module:metrics) of an earlier M(fleetpatch.rollout.health) run on the same host, before the patch.
    type: dict
  peers:
    description:
      - RV(fleetpatch.rollout.health#module:metrics) of runs on hosts that still run the old release (the canary's comparison group).
    type: list
    elements: dict
  check_vulnerability:
    description:
      - Run the O(probes[].vulnerability) probes. V(false) for a baseline before the patch, or a check after a
        rollback, where the old release is known to be vulnerable and only its health is in question.
    type: bool
    default: true
  fail_on_unhealthy:
    description:
      - Fail the task when the verdict fails (or the host is still vulnerable). With V(false) the verdict is
        only returned.
    type: bool
    default: true
"""
