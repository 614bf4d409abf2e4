"""The fleetpatch.rollout.wave_plan and window_open filters: called directly, and through real Ansible runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from fleetpatch_dev import ansible_env

from ansible_collections.fleetpatch.rollout.plugins.filter.wave_plan import FilterModule as PlanFilters
from ansible_collections.fleetpatch.rollout.plugins.filter.wave_plan import wave_plan
from ansible_collections.fleetpatch.rollout.plugins.filter.window_open import FilterModule as WindowFilters
from ansible_collections.fleetpatch.rollout.plugins.filter.window_open import window_open

REPO = Path(__file__).resolve().parents[4]
DEMO_MANIFEST = REPO / "manifests" / "FP-2025-14847.yml"
DEMO_INVENTORY = REPO / "inventories" / "demo" / "hosts.yml"
NOTIFICATIONS = REPO / "docs" / "notifications.example.yml"
BIN = Path(sys.executable).parent
HOSTS = {"a": {"region": "r", "version": "7.0.26"}, "b": {"region": "r", "version": "7.0.28"}}


def test_filters_are_registered():
    assert PlanFilters().filters() == {"wave_plan": wave_plan}
    assert WindowFilters().filters() == {"window_open": window_open}


def test_plan_from_a_manifest_path():
    result = wave_plan(HOSTS, str(DEMO_MANIFEST), policy={"canary": {"count": 0}}, now="2026-03-03T01:30:00Z")
    assert [(wave["name"], [entry["host"] for entry in wave["hosts"]]) for wave in result["waves"]] == [("r", ["a"])]
    assert (result["patch"], result["urgency"]) == ("FP-2025-14847", "urgent")
    assert [(entry["host"], entry["reason"]) for entry in result["excluded"]] == [("b", "fixed")]


def test_plan_uses_the_example_notifications():
    hosts = {"acme-1": {"region": "r", "customer": "acme", "version": "7.0.26",
                        "maintenance_window": {"days": ["sat"], "start": "02:00", "duration": "4h", "timezone": "Europe/Berlin"}}}
    # acme was told at 2025-12-18T10:00Z; the lead time of 15h is reached at 2025-12-19T01:00Z
    early = wave_plan(hosts, str(DEMO_MANIFEST), now="2025-12-19T00:59:59Z", notifications=str(NOTIFICATIONS))
    ready = wave_plan(hosts, str(DEMO_MANIFEST), now="2025-12-19T01:00:00Z", notifications=str(NOTIFICATIONS))
    assert ([entry["host"] for entry in early["deferred"]], [entry["host"] for entry in early["overrides"]]) == (["acme-1"], [])
    assert ([entry["host"] for entry in ready["deferred"]], [entry["host"] for entry in ready["overrides"]]) == ([], ["acme-1"])


F = "fleetpatch.rollout.wave_plan"


@pytest.mark.parametrize(
    ("hosts", "manifest", "kwargs", "message"),
    [
        ("a,b", str(DEMO_MANIFEST), {}, f"{F}: hosts: expected a mapping of host name to variables or a list of them, got str 'a,b'"),
        (HOSTS, "/nonexistent/FP-2025-00000.yml", {},
         f"{F}: manifest: FP-2025-00000.yml: cannot read /nonexistent/FP-2025-00000.yml: No such file or directory"),
        (HOSTS, str(DEMO_MANIFEST), {"policy": {"batch": {"count": 0}}}, f"{F}: policy.batch.count: 0 is less than 1"),
        (HOSTS, str(DEMO_MANIFEST), {"now": "now"}, f"{F}: now: 'now' is not an RFC 3339 time with an offset such as 2025-12-18T09:30:00Z"),
        (HOSTS, str(DEMO_MANIFEST), {"detect_key": ""}, f"{F}: detect_key: expected a variable name, got ''"),
        ({"a": {"region": "r", "version": "8.0.16"}}, str(DEMO_MANIFEST), {},
         f"{F}: refusing to plan: 1 host(s) in scope run a version outside compatible_with '>=7.0.26,<7.1', which cannot run beside 7.0.28 "
         "during the rollout (leave them out of the rollout's hosts, or fix the manifest):\na: 8.0.16"),
        ({"a": {"region": "r", "version": "7.0.26", "maintenance_window": {"days": ["tue"], "start": "02:00", "duration": "4h", "timezone": "Mars/Base"}}},
         str(DEMO_MANIFEST), {}, f"{F}: a: maintenance_window.timezone: 'Mars/Base' is not an IANA time zone such as 'Europe/Berlin'"),
    ],
)
def test_plan_errors(hosts, manifest, kwargs, message):
    with pytest.raises(AnsibleFilterError) as error:
        wave_plan(hosts, manifest, **kwargs)
    assert error.value.message == message


W = "fleetpatch.rollout.window_open"


@pytest.mark.parametrize(
    ("value", "now", "expected"),
    [
        ("2026-03-03T05:00:00Z", "2026-03-03T04:59:59Z", True),
        ("2026-03-03T05:00:00Z", "2026-03-03T05:00:00Z", False),
        ({"host": "a", "window_end": "2026-03-03T05:00:00Z"}, "2026-03-03T06:00:00+01:00", False),
        ({"host": "a", "window_end": None}, "2030-01-01T00:00:00Z", True),
        (None, None, True),
    ],
)
def test_window_open(value, now, expected):
    assert window_open(value, now=now) is expected


@pytest.mark.parametrize(
    ("value", "now", "message"),
    [
        ({"host": "a"}, None, f"{W}: the input must be a host entry of a wave plan (with window_end) or a window_end, got a mapping without window_end"),
        ("05:00", None, f"{W}: window_end: '05:00' is not an RFC 3339 time with an offset such as 2025-12-18T09:30:00Z"),
        ("2026-03-03T05:00:00Z", "2026-03-03T04:00:00", f"{W}: now: '2026-03-03T04:00:00' is not an RFC 3339 time with an offset such as 2025-12-18T09:30:00Z"),
    ],
)
def test_window_open_errors(value, now, message):
    with pytest.raises(AnsibleFilterError) as error:
        window_open(value, now=now)
    assert error.value.message == message


PLAYBOOK = """
- name: Plan the demo fleet the way the rollout playbook will
  hosts: all
  gather_facts: false
  tasks:
    - name: Stand in for fleetpatch.rollout.detect
      ansible.builtin.set_fact:
        fleetpatch_detected: "{{ {'changed': false, 'version': '7.0.28' if inventory_hostname == 'aps-04' else '7.0.26'} }}"

    - name: Plan
      ansible.builtin.set_fact:
        fp_plan: >-
          {{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)))
             | fleetpatch.rollout.wave_plan(manifest, policy=policy, now=now, notifications=notifications, detect_key='fleetpatch_detected') }}
      run_once: true

    - name: Ask for each planned host whether it may still start
      ansible.builtin.set_fact:
        fp_open: "{{ fp_plan.waves | map(attribute='hosts') | flatten | map('fleetpatch.rollout.window_open', now=now) | list }}"
      run_once: true

    - name: Write the plan
      ansible.builtin.copy:
        content: "{{ {'plan': fp_plan, 'open': fp_open} | to_json }}"
        dest: "{{ out }}"
        mode: "0644"
      run_once: true
      delegate_to: localhost
"""


@pytest.mark.slow
def test_through_ansible_with_hostvars(tmp_path):
    playbook = tmp_path / "plan.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    out = tmp_path / "plan.json"
    extra = {
        "manifest": str(DEMO_MANIFEST), "notifications": str(NOTIFICATIONS), "now": "2026-03-03T01:30:00Z", "out": str(out),
        "policy": {"canary": {"count": 1}}, "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
    }
    env = ansible_env.prepare(tmp_path / "ansible")
    try:
        result = subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", str(DEMO_INVENTORY), str(playbook), "-e", json.dumps(extra)],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )
    finally:
        ansible_env.close_connections(env)
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(out.read_text(encoding="utf-8"))
    plan = answer["plan"]
    # Urgent; acme and globex were told in December: their hosts go now, the others wait for their windows.
    assert [(wave["name"], [entry["host"] for entry in wave["hosts"]]) for wave in plan["waves"]] == [
        ("canary", ["euw-03"]), ("eu-west", ["euw-01"]), ("us-east 1/2", ["use-03"]), ("us-east 2/2", ["use-01"]),
    ]
    assert [entry["host"] for entry in plan["overrides"]] == ["use-01", "use-03"]
    assert [entry["host"] for entry in plan["excluded"]] == ["aps-04"]
    assert len(plan["deferred"]) == 7
    assert answer["open"] == [True, True, True, True]


@pytest.mark.slow
def test_error_through_ansible(tmp_path):
    env = ansible_env.prepare(tmp_path / "ansible")
    expression = f"{{{{ {{'a': {{'version': '7.0.26'}}}} | fleetpatch.rollout.wave_plan('{DEMO_MANIFEST}', policy={{'canary': {{'count': -1}}}}) }}}}"
    try:
        result = subprocess.run(
            [str(BIN / "ansible"), "localhost", "-c", "local", "-i", "localhost,", "-m", "ansible.builtin.debug", "-a", json.dumps({"msg": expression})],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )
    finally:
        ansible_env.close_connections(env)
    assert result.returncode != 0
    _host, _sep, answer = result.stdout.partition("=>")
    assert "fleetpatch.rollout.wave_plan: policy.canary.count: -1 is less than 0" in json.loads(answer)["msg"]
