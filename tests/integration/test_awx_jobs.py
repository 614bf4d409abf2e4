"""The rollout as AWX and Automation Controller run it: each step a job of its own, driven by ansible-runner.

Every job gets a private_data_dir as AWX writes it (``env/extravars`` with ``awx_job_id``, ``awx_user_name`` and
``awx_workflow_job_id``, ``env/envvars``, ``inventory/``, ``project/`` holding a playbook that imports the collection's),
and the audit trail is the PostgreSQL sink that the jobs share. One wave runs as two concurrent slices, each with half
of the inventory, the way AWX job slicing splits a job.
"""

from __future__ import annotations

import copy
import json
import sys
import threading
from pathlib import Path

import ansible_runner
import pytest
import yaml

from fleetpatch_dev import manifests
from fleetpatch_dev.fleet import demo_layout
from fleetpatch_dev.watch import QuorumWatch

pytestmark = pytest.mark.fleet

EMERGENCY = {"emergency": {"decided_by": "carol", "justification": "exploited in the wild"}}
WORKFLOW_JOB_ID = 900


class Jobs:
    """Runs the collection's playbooks as AWX jobs, each in its own private_data_dir; keeps every job's events."""

    def __init__(self, tmp_path, env, inventory, audit_env):
        self.tmp_path, self.env, self.inventory, self.audit_env = tmp_path, env, inventory, audit_env
        self.next_id = 100
        self.lock = threading.Lock()

    def new_id(self):
        with self.lock:
            self.next_id += 1
            return self.next_id

    def run(self, playbook, extravars, hosts=None, user="bob"):
        """One job of the template that runs ``fleetpatch.rollout.<playbook>`` over ``hosts`` (default every host)."""
        job_id = self.new_id()
        private = self.tmp_path / f"job-{job_id}"
        for folder in ("env", "inventory", "project"):
            (private / folder).mkdir(parents=True)
        awx = {"awx_job_id": job_id, "awx_user_name": user, "awx_workflow_job_id": WORKFLOW_JOB_ID, "awx_job_template_name": f"fleetpatch {playbook}"}
        (private / "env" / "extravars").write_text(json.dumps({**extravars, **awx}), encoding="utf-8")
        (private / "env" / "envvars").write_text(json.dumps({**self.env, **self.audit_env}), encoding="utf-8")
        (private / "inventory" / "hosts.yml").write_text(yaml.safe_dump(subset(self.inventory, hosts)), encoding="utf-8")
        (private / "project" / f"{playbook}.yml").write_text(f"---\n- ansible.builtin.import_playbook: fleetpatch.rollout.{playbook}\n", encoding="utf-8")
        runner = ansible_runner.run(private_data_dir=str(private), playbook=f"{playbook}.yml", quiet=True)
        return Job(job_id, runner.rc, list(runner.events), runner.stdout.read())


def ansible_stats(job):
    """{host: {changed: n, ...}} from the job's playbook_on_stats event."""
    (stats,) = [event["event_data"] for event in job.events if event.get("event") == "playbook_on_stats"]
    found = {}
    for key in ("ok", "changed", "failures", "dark", "skipped"):
        for host, count in (stats.get(key) or {}).items():
            found.setdefault(host, {})[key] = count
    return {host: {"changed": 0, **counts} for host, counts in found.items()}


class Job:
    """What a job left: its id, exit code, runner events and stdout."""

    def __init__(self, job_id, rc, events, stdout):
        self.job_id, self.rc, self.events, self.stdout = job_id, rc, events, stdout

    def problems(self):
        """Every failed or unreachable host of the job, its task and message: what an assertion on the job shows."""
        found = [f"job {self.job_id} exited {self.rc}"]
        for event in self.events:
            data = event.get("event_data") or {}
            if event.get("event") in ("runner_on_failed", "runner_on_unreachable"):
                found.append(f"{data.get('host')}: {data.get('task')}: {(data.get('res') or {}).get('msg')}")
        return "\n".join(found)

    def results(self, task):
        """{host: result} of the task named ``task`` (its name, without the role's prefix)."""
        found = {}
        for event in self.events:
            data = event.get("event_data") or {}
            if event.get("event") in ("runner_on_ok", "runner_on_failed") and (data.get("task") or "").split(" : ")[-1] == task:
                found[data["host"]] = data["res"]
        return found

    def once(self, task):
        results = list(self.results(task).values())
        assert len(results) == 1, results
        return results[0]


def runner_env(env):
    """What a job's env/envvars holds: the Ansible configuration of the test, and this venv's commands first."""
    keys = ("ANSIBLE_CONFIG", "ANSIBLE_LOCAL_TEMP", "ANSIBLE_HOME", "ANSIBLE_NOCOLOR")
    return {**{key: env[key] for key in keys}, "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"}


def subset(inventory, hosts):
    """The inventory with only ``hosts`` (None: all), as an AWX slice sees it."""
    if hosts is None:
        return inventory
    keep = set(hosts)
    result = copy.deepcopy(inventory)

    def prune(group):
        if group.get("hosts"):
            group["hosts"] = {name: value for name, value in group["hosts"].items() if name in keep}
        for child in (group.get("children") or {}).values():
            prune(child)

    prune(result["all"])
    return result


def slices(names, count=2):
    """The hosts of each slice, as AWX job slicing splits an inventory: every count-th host, in order."""
    ordered = sorted(names)
    return [ordered[number::count] for number in range(count)]


def concurrently(*calls):
    """Run each call in a thread of its own, all at once; their results in order."""
    results = [None] * len(calls)

    def target(index, call):
        results[index] = call()

    threads = [threading.Thread(target=target, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def ran_on(job, task):
    """The hosts the task named ``task`` ran on (not skipped) in ``job``."""
    return {host for host, result in job.results(task).items() if not result.get("skipped")}


def test_plan_waves_and_gates_as_jobs_with_a_wave_in_two_concurrent_slices(fleet, ansible, audit_db, tmp_path):
    # Two regions; in eu-west a 5-member cluster that may lose 2 members at once, so a wave holds 2 of its secondaries.
    layout = demo_layout(10, regions=2, clusters=1, cluster_size=5)
    fleet.add(layout)
    names = [spec.name for spec in layout]
    members = {spec.name: spec.cluster for spec in layout if spec.cluster}
    # A restart patch: each member really goes down for a moment, so the quorum watch has something to see.
    # The patch is good and this test judges the jobs, not latency: limits no busy machine reaches (at a load of 10 on
    # 2 cores, a good release's median reached 275 ms, over the test manifests' 150 ms), an error still fails a host.
    loose = {"monitoring.thresholds.max_p50_ms": 5000, "monitoring.thresholds.max_p95_ms": 10000,
             "monitoring.thresholds.baseline_p95_factor": 1000, "monitoring.thresholds.peers_p95_factor": 1000}
    manifest = manifests.write(tmp_path, fleet.artifact("7.0.28"), urgency="emergency", **{"class": "restart"}, **loose)
    key = tmp_path / "audit.key"
    key.write_text("k" * 64, encoding="utf-8")
    plan_file = tmp_path / "plan.json"
    # What the credential type injects: the audit callback, the database (password apart), the HMAC key.
    audit_env = {"ANSIBLE_CALLBACKS_ENABLED": "fleetpatch.rollout.audit", "FLEETPATCH_AUDIT_DSN": audit_db.writer_dsn,
                 "PGPASSWORD": audit_db.password, "FLEETPATCH_AUDIT_HMAC_KEY_FILE": str(key),
                 "FLEETPATCH_AUDIT_LOG": str(tmp_path / "audit" / "unused.jsonl")}
    jobs = Jobs(tmp_path, runner_env(ansible.env), fleet.inventory(), audit_env)
    common = {"fleetpatch_manifest": str(manifest), "fleetpatch_plan_file": str(plan_file)}
    wave_vars = {**common, "fleetpatch_approved_by": "alice", "fleetpatch_soak": 0, "fleetpatch_error_budget": 1}
    gate_vars = {**common, "fleetpatch_error_budget": 1}

    # The plan job: plans, writes the plan and records its sha256; nothing changes.
    planned = jobs.run("rollout", {**common, "fleetpatch_plan_only": True, "fleetpatch_policy": EMERGENCY, "fleetpatch_approved_by": "alice"})
    assert planned.rc == 0, planned.stdout[-4000:]
    stored = json.loads(plan_file.read_text(encoding="utf-8"))
    waves = {wave["name"]: [entry["host"] for entry in wave["hosts"]] for wave in stored["plan"]["waves"]}
    assert list(waves)[:3] == ["canary", "us-east", "eu-west 1/3"], waves
    assert stored["detected"] == {spec.name: spec.version for spec in layout}
    assert {name: fleet.service_version(name) for name in names} == {spec.name: spec.version for spec in layout}

    # The canary wave and its gate, each a job of its own over the whole inventory.
    canary = jobs.run("wave", {**wave_vars, "fleetpatch_wave": "canary"})
    assert canary.rc == 0, canary.problems()
    assert ran_on(canary, "Lock the host for this run") == set(waves["canary"])  # the other hosts are not touched
    assert jobs.run("gate", {**gate_vars, "fleetpatch_wave": "canary"}).rc == 0

    # us-east as two slices at once; one host of the second slice is lost: the gate counts it, within the budget of 1.
    first, second = slices(names)
    lost = next(name for name in waves["us-east"] if name in second)
    fleet.stop(lost)
    results = concurrently(*(lambda hosts=hosts: jobs.run("wave", {**wave_vars, "fleetpatch_wave": "us-east"}, hosts=hosts) for hosts in (first, second)))
    assert [job.rc for job in results] == [0, 4], [job.problems() for job in results]
    assert set().union(*(ran_on(job, "Lock the host for this run") for job in results)) == set(waves["us-east"]) - {lost}
    gate = jobs.run("gate", {**gate_vars, "fleetpatch_wave": "us-east"})
    assert gate.rc == 0, gate.stdout[-4000:]
    counted = gate.once("Read the stored plan and count every slice's outcome of the wave, and of the waves before it")["gate"]
    assert [(f["host"], f["status"]) for f in counted["failures"]] == [(lost, "unknown")] and not counted["halted"]

    # eu-west 1/3 (two secondaries of the cluster) as two slices at once, one host of the first slice lost: the gate
    # counts the failure of each slice, two in all, and halts; no cluster lost more members at once than its budget.
    lost_too = next(name for name in waves["eu-west 1/3"] if name in first)
    assert any(name in second for name in waves["eu-west 1/3"])
    fleet.stop(lost_too)
    with QuorumWatch(fleet, members) as watch:
        results = concurrently(*(lambda hosts=hosts: jobs.run("wave", {**wave_vars, "fleetpatch_wave": "eu-west 1/3"}, hosts=hosts)
                                 for hosts in (first, second)))
    assert [job.rc for job in results] == [4, 0], [job.problems() for job in results]
    assert watch.samples > 5 and all(count <= 2 for count in watch.worst.values()), watch.worst
    gate = jobs.run("gate", {**gate_vars, "fleetpatch_wave": "eu-west 1/3"})
    assert gate.rc == 2, gate.stdout[-4000:]
    counted = gate.once("Read the stored plan and count every slice's outcome of the wave, and of the waves before it")["gate"]
    assert sorted(f["host"] for f in counted["failures"]) == sorted([lost, lost_too]) and counted["halted"]
    assert "2 failure(s) exceed the error budget of 1" in gate.stdout

    # The trail holds every job (its AWX job id on its records) and verifies.
    from ansible_collections.fleetpatch.rollout.plugins.plugin_utils import _audit, _audit_pg  # pylint: disable=import-outside-toplevel

    verified = _audit_pg.verify_trail(audit_db.reader_dsn, key=_audit.read_key(str(key)))
    assert verified["ok"], verified["problems"]
    rows, _head = _audit_pg.read_trail(audit_db.reader_dsn)
    recorded_jobs = {json.loads(line)["actors"]["controller_job_id"] for *_columns, line in rows}
    assert {str(job_id) for job_id in range(101, jobs.next_id + 1)} <= {str(job_id) for job_id in recorded_jobs}

    # A plan that is not the one recorded, and a manifest changed since the plan, are refused before any host is touched.
    fleet.start(lost)
    fleet.start(lost_too)
    before = {name: fleet.service_version(name) for name in names}
    edited = json.loads(plan_file.read_text(encoding="utf-8"))
    edited["plan"]["waves"][3]["hosts"] += edited["plan"]["waves"][4]["hosts"]  # one more cluster member in a wave
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(edited, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    refused = jobs.run("wave", {**wave_vars, "fleetpatch_plan_file": str(forged), "fleetpatch_wave": "eu-west 2/3"})
    assert refused.rc == 2 and "is not a plan recorded in the audit trail" in refused.stdout, refused.stdout[-3000:]
    assert not ran_on(refused, "Lock the host for this run")
    manifest.write_text(manifest.read_text(encoding="utf-8") + "# edited after the plan\n", encoding="utf-8")
    refused = jobs.run("wave", {**wave_vars, "fleetpatch_wave": "eu-west 2/3"})
    assert refused.rc == 2 and "changed since the plan" in refused.stdout, refused.stdout[-3000:]
    assert not ran_on(refused, "Lock the host for this run")
    assert {name: fleet.service_version(name) for name in names} == before
