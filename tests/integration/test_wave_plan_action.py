"""The action fleetpatch.rollout.wave_plan reads each host's variables as hostvars has them, and plans as the filter does.

It reads the planner's few variables layer by layer instead of asking for each host's whole hostvars, so its reading
is checked against the filter fed by hostvars, on every source a host variable can come from: inventory host and
group variables, group_vars and host_vars files beside the inventory and beside the playbook, a templated value,
set_fact and a registered result, and extra vars. The hosts are reached by no one (everything runs on the controller).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

WINDOW = {"days": ["sat", "sun"], "start": "01:00", "duration": "4h", "timezone": "Europe/Berlin"}  # open at the plan's time
MONDAYS = {"days": ["mon"], "start": "01:00", "duration": "4h", "timezone": "Europe/Berlin"}  # closed then
MANIFEST = {"id": "FP-2025-14847", "urgency": "emergency", "component": "fpdemo", "affected": ">=7.0.0,<7.0.28", "fixed_version": "7.0.28",
            "compatible_with": ">=7.0.26,<7.1"}
POLICY = {"emergency": {"decided_by": "test", "justification": "test"}, "canary": {"count": 1}}

PLAYBOOK = """\
- name: Plan with the action and with the filter
  hosts: all
  gather_facts: false
  tasks:
    - name: Detect (as a registered result would be)
      ansible.builtin.set_fact:
        fp_detected: {version: "{{ fp_version }}", affected: true}

    - name: A region set at run time
      ansible.builtin.set_fact:
        region: ap-south
      when: inventory_hostname == 'web-4'

    - name: Plan with the action
      fleetpatch.rollout.wave_plan:
        manifest: "{{ fp_manifest }}"
        policy: "{{ fp_policy }}"
        now: "2026-03-28T02:00:00Z"
        detect_key: fp_detected
        fact: fp_plan
      run_once: true

    - name: Plan with the filter
      ansible.builtin.set_fact:
        fp_filter_plan: >-
          {{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)))
             | fleetpatch.rollout.wave_plan(fp_manifest, policy=fp_policy, now='2026-03-28T02:00:00Z', detect_key='fp_detected') }}
      run_once: true

    - name: Compare
      ansible.builtin.debug:
        msg: {action: "{{ fp_plan }}", filter: "{{ fp_filter_plan }}", shared: "{{ hostvars['web-2'].fp_plan == fp_plan }}"}
      run_once: true

    - name: Plan a host that is not in the inventory
      fleetpatch.rollout.wave_plan:
        manifest: "{{ fp_manifest }}"
        policy: "{{ fp_policy }}"
        detect_key: fp_detected
        hosts: [web-1, nowhere]
      run_once: true
      ignore_errors: true
      register: fp_unknown
"""


def _layout(root: Path) -> Path:
    """An inventory with variables from every source; returns its path."""
    inventory = {
        "all": {
            "vars": {"ansible_connection": "local", "fp_version": "7.0.26", "maintenance_window": WINDOW},
            "children": {
                "eu": {"hosts": {"web-1": {"cluster": "db", "cluster_role": "primary"}, "web-2": {"cluster": "db", "cluster_role": "secondary"},
                                 "web-3": {"cluster": "db", "cluster_role": "secondary"}},
                       "vars": {"region": "eu-west"}},
                "us": {"hosts": {"web-4": {}, "web-5": {"fp_version": "7.0.28"}, "web-6": {"customer": "{{ 'cust-' ~ inventory_hostname[-1] }}"}}},
            },
        },
    }
    (root / "inventory").mkdir()
    path = root / "inventory" / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
    (root / "inventory" / "group_vars").mkdir()
    (root / "inventory" / "group_vars" / "us.yml").write_text(yaml.safe_dump({"region": "us-east", "customer": "acme"}), encoding="utf-8")
    (root / "inventory" / "host_vars").mkdir()
    (root / "inventory" / "host_vars" / "web-3.yml").write_text(yaml.safe_dump({"customer": "globex"}), encoding="utf-8")
    (root / "play" / "host_vars").mkdir(parents=True)
    (root / "play" / "host_vars" / "web-2.yml").write_text(yaml.safe_dump({"customer": "initech"}), encoding="utf-8")
    return path


def test_the_action_plans_what_the_filter_plans_from_hostvars(ansible, tmp_path):
    inventory = _layout(tmp_path)
    playbook = tmp_path / "play" / "plan.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    run = ansible(playbook, inventory, extravars={"fp_manifest": MANIFEST, "fp_policy": POLICY, "maintenance_window": MONDAYS})
    assert run.returncode == 0, run.stdout[-4000:]
    (compared,) = run.results("Compare").values()
    action, filtered = compared["msg"]["action"], compared["msg"]["filter"]
    assert action == filtered
    assert compared["msg"]["shared"] is True  # the fact is set on every host of the play
    (result,) = run.results("Plan with the action").values()
    assert result["ansible_facts"]["fp_plan"] == result["plan"] == action
    hosts = {entry["host"]: entry for wave in action["waves"] for entry in wave["hosts"]}
    # web-5 runs the fix; the extra var's closed window overrides the inventory's open one on every host (an emergency
    # overrides it in turn); the rest comes from each host's own sources.
    assert sorted(hosts) == ["web-1", "web-2", "web-3", "web-4", "web-6"]
    assert [entry["host"] for entry in action["excluded"]] == ["web-5"]
    assert {name: (entry["region"], entry["customer"], entry["window"]) for name, entry in hosts.items()} == {
        "web-1": ("eu-west", None, "override"),
        "web-2": ("eu-west", "initech", "override"),  # host_vars beside the playbook
        "web-3": ("eu-west", "globex", "override"),  # host_vars beside the inventory
        "web-4": ("ap-south", "acme", "override"),  # set_fact over group_vars
        "web-6": ("us-east", "cust-6", "override"),  # templated in its host's context
    }
    assert hosts["web-1"]["cluster_role"] == "primary"
    (unknown,) = run.results("Plan a host that is not in the inventory").values()
    assert unknown["msg"] == "fleetpatch.rollout.wave_plan: hosts: not in the inventory: nowhere"
    json.dumps(action)  # plain data
