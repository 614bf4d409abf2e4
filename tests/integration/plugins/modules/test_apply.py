"""fleetpatch.rollout.apply and rollback on real SSH hosts: four runs each, the defect, crashes, bad artifacts."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import socket
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

import pytest
import yaml

from fleetpatch_dev import manifests, probe, signing
from fleetpatch_dev.fleet import HostSpec, wait_port

pytestmark = pytest.mark.fleet

REPO = Path(__file__).resolve().parents[4]
STEPS = ("journaled", "unpacked", "switched", "activated", "confirmed")


def sha256(fleet, version: str) -> str:
    """The sha256 of a demo release's artifact, from the builder's .sha256 file."""
    return fleet.artifact(version).with_name(f"fpdemo-{version}.tar.gz.sha256").read_text(encoding="utf-8").split()[0]


def patch_vars(fleet, version: str = "7.0.28", **extra) -> dict:
    """Extra vars of tests/integration/playbooks/apply.yml for one release."""
    return {"fp_version": version, "fp_artifact": str(fleet.artifact(version)), "fp_sha256": sha256(fleet, version), **extra}


def host_state(fleet, name: str) -> dict:
    """The host's state file, parsed (it must parse)."""
    result = fleet.ssh(name, "cat /var/lib/fleetpatch/state.json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# What the detect playbook (the fleetpatch.rollout.detect role) is told to look for, without a manifest.
DEMO = {"fleetpatch_component": "fpdemo", "fleetpatch_install_dir": "/srv/fpdemo"}


def host_files(fleet, name: str) -> str:
    """Every file, link and checksum under the service's and fleetpatch's directories: compares before/after."""
    command = ("find /srv/fpdemo /var/lib/fleetpatch -printf '%p %y %l\\n' 2>/dev/null | sort; "
               "find /srv/fpdemo /var/lib/fleetpatch -type f -exec sha256sum {} + 2>/dev/null | sort")
    return fleet.ssh(name, command).stdout


def host_files_and_tmp(fleet, name: str) -> str:
    """host_files, plus every file under the host's temporary directories and Ansible's remote tmp (name, type, size, mtime).

    A host overlays the machine's /root: a controller's local temp there (ansible-local-*) is not the host's, and it
    changes the times of the directory that holds it, so directories are listed by name only."""
    command = ("find /tmp /var/tmp /root/.ansible -path '/root/.ansible/tmp/ansible-local-*' -prune "
               "-o -type d -printf '%p d\\n' -o -printf '%p %y %s %T@\\n' 2>/dev/null | sort")
    return host_files(fleet, name) + fleet.ssh(name, command).stdout


def hostile(good: Path, path: Path, extra: tarfile.TarInfo) -> Path:
    """The release ``good`` re-packed with one more member ``extra`` (an empty file, a link or a device)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(good) as source, tarfile.open(path, "w:gz") as target:
        for member in source:
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
        target.addfile(extra, io.BytesIO(b"") if extra.isfile() else None)
    return path


def tar_entry(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


ONLY = ": a release holds only regular files and directories"
HOSTILE = [  # (extra member, what both the controller and the host say about it)
    (tar_entry("fpdemo-7.0.28/fpdemo/shadow", tarfile.SYMTYPE, "/etc/shadow"),
     f"member 'fpdemo-7.0.28/fpdemo/shadow' is a symbolic link to '/etc/shadow'{ONLY}"),
    (tar_entry("fpdemo-7.0.28/fpdemo/hard", tarfile.LNKTYPE, "fpdemo-7.0.28/VERSION"),
     f"member 'fpdemo-7.0.28/fpdemo/hard' is a hard link to 'fpdemo-7.0.28/VERSION'{ONLY}"),
    (tar_entry("fpdemo-7.0.28/null", tarfile.CHRTYPE), f"member 'fpdemo-7.0.28/null' is a character device{ONLY}"),
    (tar_entry("fpdemo-7.0.28/../../etc/cron.d/fp"), "member 'fpdemo-7.0.28/../../etc/cron.d/fp' would land outside the release directory"),
    (tar_entry("/etc/cron.d/fp"), "member '/etc/cron.d/fp' would land outside the release directory"),
    (tar_entry("evil/x"), "member 'evil/x' is outside the top directory 'fpdemo-7.0.28': a release holds one top directory"),
]


def test_an_archive_the_host_would_refuse_never_leaves_the_controller(fleet, ansible, tmp_path, artifact_server):
    """The controller refuses each hostile archive with the host's own rule and message: nothing reaches the host,
    neither its install dir, its state nor its temporary directories. The host, handed the same archive by URL
    (which the controller cannot check), refuses it with the same message."""
    fleet.add([HostSpec(name="wary", version="7.0.26")])
    inventory = fleet.write_inventory()
    before = host_files_and_tmp(fleet, "wary")
    cases = [(hostile(fleet.artifact("7.0.28"), tmp_path / str(index) / "fpdemo-7.0.28.tar.gz", extra), message)
             for index, (extra, message) in enumerate(HOSTILE)]
    other = tmp_path / "other" / "fpdemo-7.0.28.tar.gz"  # a sound 7.0.27 release under the 7.0.28 name, with its own sha256
    other.parent.mkdir()
    shutil.copyfile(fleet.artifact("7.0.27"), other)
    cases.append((other, "member 'fpdemo-7.0.27/VERSION' names version '7.0.27', not '7.0.28'"))
    for artifact, message in cases:
        digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
        run = ansible("apply.yml", inventory, extravars=patch_vars(fleet, fp_artifact=str(artifact), fp_sha256=digest))
        assert run.returncode == 2, message
        result = run.results("Apply the patch")["wary"]
        assert result["msg"] == f"fleetpatch.rollout.apply: artifact {artifact}: {message}"
        assert "transferred" not in result
    assert host_files_and_tmp(fleet, "wary") == before
    assert fleet.service_version("wary") == "7.0.26"

    symlinked, message = cases[0]
    shutil.copyfile(symlinked, fleet.artifact_dir / "hostile.tar.gz")
    variables = {"fp_version": "7.0.28", "fp_sha256": hashlib.sha256(symlinked.read_bytes()).hexdigest(),
                 "fp_artifact_url": f"{artifact_server}/hostile.tar.gz"}
    fetched = ansible("apply.yml", inventory, extravars=variables)
    assert fetched.returncode == 2
    msg = fetched.results("Apply the patch")["wary"]["msg"]
    assert msg.startswith("artifact /srv/fpdemo/releases/.download-") and msg.endswith(f": {message}"), msg
    assert fleet.ssh("wary", "ls -A /srv/fpdemo/releases; readlink /srv/fpdemo/current").stdout.split() == ["7.0.26", "releases/7.0.26"]
    assert fleet.service_version("wary") == "7.0.26"


def current_release(fleet, name: str) -> tuple[str, str]:
    """(where current points, the VERSION in that release): equal for a complete release."""
    result = fleet.ssh(name, "readlink /srv/fpdemo/current; cat /srv/fpdemo/current/VERSION")
    link, version = result.stdout.split()
    return link.rsplit("/", 1)[-1], version


def test_apply_then_rollback_four_times_each(fleet, ansible):
    fleet.add([HostSpec(name="db", version="7.0.26")])
    inventory = fleet.write_inventory()
    address = fleet.address("db")
    assert probe.leak(address)

    expected = [(True, True), (False, True), (True, False), (False, False)]  # (check, changed)
    for check, changed in expected:
        run = ansible("apply.yml", inventory, extravars=patch_vars(fleet, fp_compatible_with=">=7.0.26,<7.1"), check=check, diff=True)
        assert run.returncode == 0, run.stdout
        result = run.results("Apply the patch")["db"]
        assert result["changed"] is changed, (check, result)
        assert result["diff"]["before"]["current"] == ("7.0.26" if changed else "7.0.28")
        assert fleet.service_version("db") == ("7.0.26" if check and changed else "7.0.28")
        if not check:
            assert result.get("transferred", False) is changed  # the artifact travels only to a host that needs it
    assert not probe.leak(address)
    state = host_state(fleet, "db")
    assert [(e["patch"], e["version"], e["from"]) for e in state["applied"]] == [("FP-2025-14847", "7.0.28", "7.0.26")]
    assert state["components"]["fpdemo"] == {"version": "7.0.28", "previous": "7.0.26"}
    assert state["journal"] is None

    for check, changed in expected:
        run = ansible("rollback.yml", inventory, check=check)
        assert run.returncode == 0, run.stdout
        assert run.results("Roll back")["db"]["changed"] is changed, check
        assert fleet.service_version("db") == ("7.0.28" if check and changed else "7.0.26")
    assert probe.leak(address)
    assert current_release(fleet, "db") == ("7.0.26", "7.0.26")
    state = host_state(fleet, "db")
    assert [(e["from"], e["to"]) for e in state["rollbacks"]] == [("7.0.28", "7.0.26")]


def test_a_restart_class_patch_restarts_and_a_hot_attempt_is_reverted(fleet, ansible):
    """One run, two hosts: "hot" is given the 8.0.17 release (another ABI) as a hot patch, "cold" as a restart patch."""
    fleet.add([HostSpec(name="hot", version="7.0.27"), HostSpec(name="cold", version="7.0.27")])
    inventory = fleet.inventory()
    inventory["all"]["hosts"]["hot"].update(patch_vars(fleet, "8.0.17", fp_confirm_timeout=3))
    inventory["all"]["hosts"]["cold"].update(patch_vars(fleet, "8.0.17", fp_class="restart"))
    path = fleet.workdir / "hot-and-cold.yml"
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
    run = ansible("apply.yml", path)
    assert run.returncode == 2
    assert (run.stats["hot"]["failures"], run.stats["cold"]["failures"]) == (1, 0), run.stdout
    failure = run.results("Apply the patch")["hot"]
    assert "answered '7.0.27' instead of 8.0.17 after the hot activation" in failure["msg"]
    assert failure["msg"].endswith("the host was returned to 7.0.27")
    assert current_release(fleet, "hot") == ("7.0.27", "7.0.27")
    assert fleet.service_version("hot") == "7.0.27"
    # Reverted: the host is left as the apply found it, with no state file (it had none), so no journal either.
    assert fleet.ssh("hot", "test -e /var/lib/fleetpatch/state.json").returncode == 1

    assert run.results("Apply the patch")["cold"]["changed"] is True
    assert fleet.service_version("cold") == "8.0.17"
    assert not probe.leak(fleet.address("cold"))


# Extended (scripts/test-extended): in CI the damaged-state test's hosts "downgrade" and "incompatible" are refused
# with these messages and left unchanged, and the truncated-or-corrupt test's artifacts with a sha256 mismatch.
@pytest.mark.extended
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"fp_version": "7.0.26", "fp_sha256": None}, "refusing to downgrade fpdemo from 7.0.27 to 7.0.26"),
        ({"fp_compatible_with": ">=7.0.0,<7.0.27"}, "refusing to patch: fpdemo 7.0.27 is outside compatible_with '>=7.0.0,<7.0.27'"),
        ({"fp_sha256": "0" * 64}, f"sha256 mismatch: expected {'0' * 64}, actual "),
    ],
)
def test_refusals_change_nothing(fleet, ansible, extra, message):
    fleet.add([HostSpec(name="guard", version="7.0.27")])
    before = host_files(fleet, "guard")
    variables = patch_vars(fleet)
    for key, value in extra.items():
        variables[key] = value if value is not None else sha256(fleet, variables["fp_version"])
    if extra.get("fp_version"):
        variables.update(fp_artifact=str(fleet.artifact(extra["fp_version"])))
    run = ansible("apply.yml", fleet.write_inventory(), extravars=variables)
    assert run.returncode == 2
    assert message in run.results("Apply the patch")["guard"]["msg"]
    assert host_files(fleet, "guard") == before
    assert fleet.service_version("guard") == "7.0.27"


def test_a_truncated_or_corrupt_artifact_is_refused_before_the_host_changes(fleet, ansible, tmp_path):
    fleet.add([HostSpec(name="careful", version="7.0.26")])
    before = host_files(fleet, "careful")
    good = fleet.artifact("7.0.28").read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(good[: len(good) // 2])
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(good[:100] + bytes([good[100] ^ 0xFF]) + good[101:])
    for artifact in (truncated, corrupt):
        run = ansible("apply.yml", fleet.write_inventory(), extravars=patch_vars(fleet, fp_artifact=str(artifact)))
        assert run.returncode == 2
        msg = run.results("Apply the patch")["careful"]["msg"]
        assert f"sha256 mismatch: expected {sha256(fleet, '7.0.28')}" in msg, msg
    # truncated before its checksum was taken: the sha256 matches, the archive itself is refused
    own_sha256 = hashlib.sha256(truncated.read_bytes()).hexdigest()
    run = ansible("apply.yml", fleet.write_inventory(), extravars=patch_vars(fleet, fp_artifact=str(truncated), fp_sha256=own_sha256))
    assert run.returncode == 2
    msg = run.results("Apply the patch")["careful"]["msg"]
    assert f"{truncated}: not a readable gzip tar archive (truncated or corrupt)" in msg, msg
    assert host_files(fleet, "careful") == before
    assert fleet.service_version("careful") == "7.0.26"


def test_killed_at_every_step_the_host_stays_whole_and_a_rerun_finishes(fleet, ansible):
    fleet.add([HostSpec(name=f"crash-{step}", version="7.0.26") for step in STEPS])
    inventory = fleet.inventory()
    for step in STEPS:
        inventory["all"]["hosts"][f"crash-{step}"]["fp_environment"] = {"FLEETPATCH_CRASH_AT": step}
    crash_inventory = fleet.workdir / "crash.yml"
    crash_inventory.write_text(yaml.safe_dump(inventory), encoding="utf-8")

    crashed = ansible("apply.yml", crash_inventory, extravars=patch_vars(fleet))
    assert crashed.returncode == 2
    for step in STEPS:
        name = f"crash-{step}"
        assert crashed.stats[name]["failures"] == 1, step
        link, version = current_release(fleet, name)
        assert link == version and link in ("7.0.26", "7.0.28"), (step, link, version)  # a complete release
        journal = host_state(fleet, name)["journal"]
        assert journal["op"] == "apply" and journal["step"] == step and journal["from"] == "7.0.26", step
        assert fleet.service_version(name) in ("7.0.26", "7.0.28")

    detected = ansible("fleetpatch.rollout.detect", fleet.write_inventory(), extravars=DEMO)
    assert {host: result["interrupted"]["step"] for host, result in detected.results("Detect the installed version").items()} == {
        f"crash-{step}": step for step in STEPS
    }

    rerun = ansible("apply.yml", fleet.write_inventory(), extravars=patch_vars(fleet))
    assert rerun.returncode == 0, rerun.stdout
    for step in STEPS:
        name = f"crash-{step}"
        result = rerun.results("Apply the patch")[name]
        assert result["changed"] is True and result["recovered"]["step"] == step
        assert current_release(fleet, name) == ("7.0.28", "7.0.28")
        assert fleet.service_version(name) == "7.0.28"
        state = host_state(fleet, name)
        assert state["journal"] is None
        assert [entry["version"] for entry in state["applied"]] == ["7.0.28"]
        assert not probe.leak(fleet.address(name))
    again = ansible("apply.yml", fleet.write_inventory(), extravars=patch_vars(fleet))
    assert all(result["changed"] is False for result in again.results("Apply the patch").values())


def test_a_missing_rollback_target_fails_clearly(fleet, ansible):
    fleet.add([HostSpec(name="fresh", version="7.0.26")])
    inventory = fleet.write_inventory()
    before = host_files(fleet, "fresh")
    nothing = ansible("rollback.yml", inventory)
    assert nothing.returncode == 2
    assert nothing.results("Roll back")["fresh"]["msg"] == (
        "no previous release of fpdemo is recorded on this host; name the release with the option to"
    )
    missing = ansible("rollback.yml", inventory, extravars={"fp_to": "7.0.20"})
    assert missing.results("Roll back")["fresh"]["msg"] == "rollback target fpdemo 7.0.20 is not installed completely in /srv/fpdemo/releases"
    assert host_files(fleet, "fresh") == before


def test_a_signed_artifact_is_applied_and_a_wrongly_signed_one_refused(fleet, ansible, tmp_path):
    fleet.add([HostSpec(name="signed", version="7.0.26")])
    inventory = fleet.write_inventory()
    key, allowed, identity = signing.make_signer(tmp_path / "vendor")
    other_key, _other_allowed, _identity = signing.make_signer(tmp_path / "impostor", identity)
    artifact = tmp_path / "fpdemo-7.0.28.tar.gz"
    artifact.write_bytes(fleet.artifact("7.0.28").read_bytes())

    forged = signing.sign(artifact, other_key)
    before = host_files(fleet, "signed")
    refused = ansible("apply.yml", inventory, extravars=patch_vars(
        fleet, fp_artifact=str(artifact), fp_signature=str(forged), fp_allowed_signers=str(allowed), fp_signer=identity))
    assert refused.returncode == 2
    assert "signature" in refused.results("Apply the patch")["signed"]["msg"]
    assert host_files(fleet, "signed") == before

    good = signing.sign(artifact, key)
    applied = ansible("apply.yml", inventory, extravars=patch_vars(
        fleet, fp_artifact=str(artifact), fp_signature=str(good), fp_allowed_signers=str(allowed), fp_signer=identity))
    assert applied.returncode == 0, applied.stdout
    assert fleet.service_version("signed") == "7.0.28"


def demo_manifest(fleet, directory, **changes) -> str:
    """The shipped FP-2025-14847 manifest, copied beside the artifact it names, with ``changes`` to its fields."""
    data = yaml.safe_load((REPO / "manifests" / "FP-2025-14847.yml").read_text(encoding="utf-8"))
    data.update(changes)
    (directory / "manifests").mkdir(parents=True)
    (directory / ".build" / "artifacts").mkdir(parents=True)
    (directory / ".build" / "artifacts" / "fpdemo-7.0.28.tar.gz").write_bytes(fleet.artifact("7.0.28").read_bytes())
    path = directory / "manifests" / "FP-2025-14847.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def test_apply_and_rollback_take_everything_from_the_manifest(fleet, ansible, tmp_path):
    fleet.add([HostSpec(name="byrecord", version="7.0.27")])
    run = ansible("apply_manifest.yml", fleet.write_inventory(), extravars={"fp_manifest": demo_manifest(fleet, tmp_path)})
    assert run.returncode == 0, run.stdout
    assert run.results("Apply the patch from its manifest")["byrecord"]["patch"] == "FP-2025-14847"
    assert fleet.service_version("byrecord") == "7.0.28"
    assert host_state(fleet, "byrecord")["applied"][0]["patch"] == "FP-2025-14847"
    back = ansible("apply_manifest.yml", fleet.write_inventory(), extravars={"fp_manifest": str(tmp_path / "manifests/FP-2025-14847.yml"),
                                                                             "fp_rollback": True})
    assert back.returncode == 0, back.stdout
    assert back.results("Apply the patch from its manifest")["byrecord"]["changed"] is False
    assert fleet.service_version("byrecord") == "7.0.27"


# One case in CI (the ansible-core 2.19 stage runs it too); the other two are extended (scripts/test-extended): every
# field's refusal is in CI, in one run, by test_each_invalid_manifest_field_is_named_and_the_host_stays_unchanged.
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"class": "reboot"}, "class", marks=pytest.mark.extended),
        pytest.param({"fixed_version": "7.0.27"}, "fixed_version", marks=pytest.mark.extended),
        ({"artifact": {"path": "../.build/artifacts/fpdemo-7.0.28.tar.gz", "sha256": "abc"}}, "artifact.sha256: 'abc'"),
    ],
)
def test_a_bad_manifest_fails_before_any_host_changes(fleet, ansible, tmp_path, changes, message):
    fleet.add([HostSpec(name="untouched", version="7.0.26")])
    before = host_files(fleet, "untouched")
    run = ansible("apply_manifest.yml", fleet.write_inventory(), extravars={"fp_manifest": demo_manifest(fleet, tmp_path, **changes)})
    assert run.returncode == 2
    msg = run.results("Apply the patch from its manifest")["untouched"]["msg"]
    assert msg.startswith("fleetpatch.rollout.apply: ") and message in msg, msg
    assert host_files(fleet, "untouched") == before


BAD_FIELDS = [  # one invalid value for each field of the manifest, and the start of what the operator is told
    ({"id": "FP-14847"}, "id: 'FP-14847' does not match"),
    ({"title": ""}, "title: must not be empty"),
    ({"advisories": ["CVE-25-14847"]}, "advisories[0]: 'CVE-25-14847' does not match"),
    ({"severity": "extreme"}, "severity: 'extreme' is not one of"),
    ({"urgency": "asap"}, "urgency: 'asap' is not one of"),
    ({"component": "fp demo"}, "component: 'fp demo' does not match"),
    ({"affected": "7.0.x"}, "affected: version range '7.0.x': '7.0.x' is not a version"),
    ({"fixed_version": "7.0.27"}, "fixed_version: '7.0.27' lies inside affected"),
    ({"class": "reboot"}, "class: 'reboot' is not a hot patch"),
    ({"class": "migration"}, "class: 'migration' is not a hot patch"),
    ({"artifact": {"path": "../.build/artifacts/fpdemo-7.0.28.tar.gz", "sha256": "abc"}}, "artifact.sha256: 'abc' does not match"),
    ({"artifact": {"path": "../.build/artifacts/fpdemo-7.0.28.tar.gz", "sha256": "0" * 64, "signature": "a.sig"}},
     "artifact.signer: required with signature"),
    ({"compatible_with": ">=7.0.26,<"}, "compatible_with: version range '>=7.0.26,<': '<' is not a comparator"),
    ({"changelog": None}, "changelog: None is not of type 'string'"),
    ({"risk": {"level": "none", "text": "x"}}, "risk.level: 'none' is not one of"),
    ({"rollback": {"to": "7.0.28", "automatic": True}}, "rollback.to: '7.0.28' is fixed_version itself"),
    ({"monitoring": {"probes": [], "soak": "5m"}}, "monitoring.probes: must not be empty"),
    ({"detected_at": "2025-12-18"}, "detected_at: '2025-12-18'"),
    ({"notify": {"lead_time": "15 hours"}}, "notify.lead_time: '15 hours'"),
    ({"reload": {"command": []}}, "reload.command: must not be empty"),
    ({"install_dir": "srv/fpdemo"}, "install_dir: 'srv/fpdemo' does not match"),
    ({"version_url": "127.0.0.1:8080/version"}, "version_url: '127.0.0.1:8080/version' is not an http:// or https:// URL"),
    ({"owner": "me"}, "owner: unknown field"),
]


def test_each_invalid_manifest_field_is_named_and_the_host_stays_unchanged(fleet, ansible, tmp_path):
    fleet.add([HostSpec(name="strict", version="7.0.26")])
    inventory = fleet.write_inventory()
    assert ansible("apply.yml", inventory, extravars=patch_vars(fleet, "7.0.27")).returncode == 0  # a state file to compare too
    before = host_files(fleet, "strict")
    assert "/var/lib/fleetpatch/state.json" in before
    manifests = [demo_manifest(fleet, tmp_path / f"case{index}", **changes) for index, (changes, _message) in enumerate(BAD_FIELDS)]
    run = ansible("apply_manifests.yml", inventory, extravars={"fp_manifests": manifests})
    assert run.returncode == 0, run.stdout  # every failure ignored, so that each one is seen
    result = run.results("Apply each manifest")["strict"]
    assert run.stats["strict"]["ignored"] == 1  # the task failed, its failure ignored
    items = result["results"]
    assert [item["item"] for item in items] == manifests
    for item, (changes, message) in zip(items, BAD_FIELDS):
        assert item["changed"] is False, (changes, item)
        assert item["msg"].startswith("fleetpatch.rollout.apply: ") and message in item["msg"], (changes, item["msg"])
    assert host_files(fleet, "strict") == before
    assert fleet.service_version("strict") == "7.0.27"


@pytest.fixture
def artifact_server(fleet):
    """An HTTP server (its own process) on the controller's side of the fleet bridge, serving the fleet's artifacts."""
    with socket.socket() as probe_socket:
        probe_socket.bind((fleet.gateway, 0))
        port = probe_socket.getsockname()[1]
    argv = [sys.executable, "-m", "http.server", "--bind", fleet.gateway, "--directory", str(fleet.artifact_dir), str(port)]
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as server:
        try:
            assert wait_port(fleet.gateway, port, 10), "the artifact server did not start"
            yield f"http://{fleet.gateway}:{port}"
        finally:
            server.terminate()


def test_the_host_fetches_the_artifact_from_its_url(fleet, ansible, artifact_server):
    fleet.add([HostSpec(name="fetcher", version="7.0.26")])
    inventory = fleet.write_inventory()
    url = f"{artifact_server}/fpdemo-7.0.28.tar.gz"
    variables = {"fp_version": "7.0.28", "fp_sha256": sha256(fleet, "7.0.28"), "fp_artifact_url": url}
    run = ansible("apply.yml", inventory, extravars=variables)
    assert run.returncode == 0, run.stdout
    assert "transferred" not in run.results("Apply the patch")["fetcher"]
    assert fleet.service_version("fetcher") == "7.0.28"
    assert fleet.ssh("fetcher", "ls -A /srv/fpdemo/releases").stdout.split() == ["7.0.26", "7.0.28"]

    fleet.ssh("fetcher", "rm -rf /srv/fpdemo/releases/7.0.28 && ln -sfn releases/7.0.26 /srv/fpdemo/current")
    before = host_files(fleet, "fetcher")
    wrong = ansible("apply.yml", inventory, extravars={**variables, "fp_sha256": "1" * 64})
    assert wrong.returncode == 2
    assert "expected " + "1" * 64 in wrong.results("Apply the patch")["fetcher"]["msg"]
    missing = ansible("apply.yml", inventory, extravars={**variables, "fp_artifact_url": f"{artifact_server}/nothing.tar.gz"})
    assert missing.results("Apply the patch")["fetcher"]["msg"] == f"GET {artifact_server}/nothing.tar.gz failed: File not found"
    unverifiable = ansible("apply.yml", inventory, extravars={**variables, "fp_signature": "/nonexistent.sig",
                                                              "fp_allowed_signers": "/nonexistent", "fp_signer": "someone"})
    assert unverifiable.results("Apply the patch")["fetcher"]["msg"] == (
        "fleetpatch.rollout.apply: a signature is checked on the controller's copy of the artifact: give artifact, not only artifact_url"
    )
    assert host_files(fleet, "fetcher") == before


def test_a_hot_patch_by_signal_to_the_pid_file(fleet, ansible):
    fleet.add([HostSpec(name="hup", version="7.0.26")])
    pid = fleet.ssh("hup", "cat /run/fpdemo/fpdemo.pid").stdout.strip()
    run = ansible("apply.yml", fleet.write_inventory(), extravars=patch_vars(fleet, fp_reload_signal="HUP"))
    assert run.returncode == 0, run.stdout
    assert fleet.service_version("hup") == "7.0.28"
    assert fleet.ssh("hup", "cat /run/fpdemo/fpdemo.pid").stdout.strip() == pid  # reloaded in place, not restarted


STATE_FILE = "/var/lib/fleetpatch/state.json"
# A state file of the right format whose recorded version is a number: once read as-is, it broke detect and apply.
DAMAGED_STATE = b'{"format": 1, "components": {"fpdemo": {"version": 5, "previous": "7.0.25"}}, "applied": [], "journal": null}\n'
DAMAGE = f"state file {STATE_FILE}: components.fpdemo.version is 5, expected a string"


def test_a_damaged_state_file_is_reported_kept_or_moved_aside_and_refusals_leave_no_state_file(fleet, ansible, artifact_server):
    fleet.add([HostSpec(name="damaged", version="7.0.26"), HostSpec(name="downgrade", version="7.0.27"),
               HostSpec(name="incompatible", version="7.0.26"), HostSpec(name="badsum", version="7.0.26")])
    payload = base64.b64encode(DAMAGED_STATE).decode("ascii")
    assert fleet.ssh("damaged", f"mkdir -p /var/lib/fleetpatch && echo {payload} | base64 -d > {STATE_FILE}").returncode == 0
    inventory = fleet.inventory()
    hosts = inventory["all"]["hosts"]
    hosts["damaged"].update(patch_vars(fleet))
    hosts["downgrade"].update(patch_vars(fleet, "7.0.26"))
    hosts["incompatible"].update(patch_vars(fleet, fp_compatible_with=">=7.0.27,<7.1"))
    hosts["badsum"].update({"fp_version": "7.0.28", "fp_sha256": "1" * 64, "fp_artifact_url": f"{artifact_server}/fpdemo-7.0.28.tar.gz"})
    path = fleet.workdir / "state-cases.yml"
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
    before = {name: host_files(fleet, name) for name in fleet.names}
    assert f"{STATE_FILE} f" in before["damaged"] and "/var/lib/fleetpatch" not in before["downgrade"]

    # detect still answers the version, and says why the state is unknown
    detected = ansible("fleetpatch.rollout.detect", path, extravars=DEMO)
    assert detected.returncode == 0, detected.stdout
    results = detected.results("Detect the installed version")
    assert {name: (result["version"], result["state_error"]) for name, result in results.items()} == {
        "damaged": ("7.0.26", DAMAGE), "downgrade": ("7.0.27", None), "incompatible": ("7.0.26", None), "badsum": ("7.0.26", None)}
    assert (results["damaged"]["applied"], results["damaged"]["interrupted"], results["downgrade"]["applied"]) == (None, None, [])

    # apply and rollback refuse a damaged file, naming it and its field; every refusal leaves the host's files as they were
    refused = ansible("apply.yml", path)
    assert refused.returncode == 2
    messages = {name: result["msg"] for name, result in refused.results("Apply the patch").items()}
    kept = "; the file is left as it is (damaged_state=move_aside moves it aside and starts afresh)"
    assert messages["damaged"] == DAMAGE + kept
    assert refused.results("Apply the patch")["damaged"]["state_problems"] == ["components.fpdemo.version is 5, expected a string"]
    assert messages["downgrade"] == "refusing to downgrade fpdemo from 7.0.27 to 7.0.26"
    assert messages["incompatible"] == "refusing to patch: fpdemo 7.0.26 is outside compatible_with '>=7.0.27,<7.1'"
    assert f"expected {'1' * 64}: refusing it" in messages["badsum"], messages["badsum"]
    rolled = ansible("rollback.yml", path, limit="damaged")
    assert rolled.returncode == 2
    assert rolled.results("Roll back")["damaged"]["msg"] == DAMAGE + kept
    assert {name: host_files(fleet, name) for name in fleet.names} == before
    assert fleet.service_version("damaged") == "7.0.26"

    # move_aside: check mode moves nothing; the real run moves the file to the name it reports, then applies
    checked = ansible("apply.yml", path, limit="damaged", extravars={"fp_damaged_state": "move_aside"}, check=True)
    assert checked.returncode == 0, checked.stdout
    result = checked.results("Apply the patch")["damaged"]
    assert (result["changed"], result["state_error"], "state_moved_to" in result) == (True, DAMAGE, False)
    assert host_files(fleet, "damaged") == before["damaged"]
    for changed in (True, False):
        run = ansible("apply.yml", path, limit="damaged", extravars={"fp_damaged_state": "move_aside"})
        assert run.returncode == 0, run.stdout
        result = run.results("Apply the patch")["damaged"]
        assert result["changed"] is changed
        if changed:
            moved = result["state_moved_to"]
            assert result["state_error"] == DAMAGE
            assert moved.startswith(f"{STATE_FILE}.damaged-"), moved
        else:  # the new state file is sound: nothing more to report or move
            assert "state_error" not in result and "state_moved_to" not in result, result
    assert fleet.service_version("damaged") == "7.0.28"
    assert base64.b64decode(fleet.ssh("damaged", f"base64 -w0 {moved}").stdout) == DAMAGED_STATE
    state = host_state(fleet, "damaged")
    assert state["components"]["fpdemo"] == {"version": "7.0.28", "previous": "7.0.26"}
    assert fleet.ssh("damaged", "ls /var/lib/fleetpatch").stdout.split() == ["state.json", moved.rsplit("/", 1)[-1]]


DATA_DIR = "/var/lib/fpdemo/data"


def data_tree(fleet, name: str) -> str:
    """The service's whole data directory: every name with its type, mode, owner, size and mtime, then every file's sha256."""
    command = (f"cd {DATA_DIR} && find . -printf '%p %y %m %u:%g %s %T@\\n' | sort && "
               "find . -type f -exec sha256sum {} + | sort")
    result = fleet.ssh(name, command)
    assert result.returncode == 0, result.stderr
    return result.stdout


def add_record(fleet, name: str, body: bytes) -> dict:
    """POST one record to the host's service, which appends it to its data directory."""
    request = urllib.request.Request(fleet.service_url(name, "/v1/records"), data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (fleet address)
        assert response.status == 201
        return json.load(response)


def test_apply_and_rollback_leave_the_service_data_untouched(fleet, ansible):
    """The service's data (outside the releases) is byte for byte, mode for mode and mtime for mtime what it was,
    after a hot apply and its rollback and after a restart-class apply and its rollback; no record is written in
    between, so nothing else could change it. The service then still reads and extends the same data."""
    fleet.add([HostSpec(name="keeper", version="7.0.26")])
    inventory = fleet.write_inventory()
    assert [add_record(fleet, "keeper", body)["seq"] for body in (b"alpha", b"beta", bytes(range(256)))] == [1, 2, 3]
    before = data_tree(fleet, "keeper")
    assert "/records.jsonl f " in before, before
    steps = [
        ("apply.yml", patch_vars(fleet), "7.0.28"),
        ("rollback.yml", {}, "7.0.26"),
        ("apply.yml", patch_vars(fleet, "8.0.17", fp_class="restart"), "8.0.17"),
        ("rollback.yml", {"fp_class": "restart"}, "7.0.26"),
    ]
    for playbook, variables, version in steps:
        run = ansible(playbook, inventory, extravars=variables)
        assert run.returncode == 0, run.stdout
        assert fleet.service_version("keeper") == version
        assert data_tree(fleet, "keeper") == before, (playbook, version)
    with urllib.request.urlopen(fleet.service_url("keeper", "/v1/records"), timeout=10) as response:  # noqa: S310 (fleet address)
        assert json.load(response) == {"records": 3}
    assert add_record(fleet, "keeper", b"after")["seq"] == 4


def test_apply_judges_in_the_same_call_four_runs_and_marks_only_a_healthy_verdict(fleet, ansible, tmp_path):
    """``judge`` with no soak: the verdict in the apply's own result, its mark on the apply's record only when healthy.
    ``good`` gets 7.0.28; ``bad`` gets 7.0.29, which answers /health with 500: judged unhealthy, left patched, unmarked.
    In check mode the probes meet the old, vulnerable release."""
    fleet.add([HostSpec(name="good", version="7.0.26"), HostSpec(name="bad", version="7.0.27")])
    inventory = fleet.write_inventory()
    paths = {"good": manifests.write(tmp_path / "good", fleet.artifact("7.0.28"), version="7.0.28"),
             "bad": manifests.write(tmp_path / "bad", fleet.artifact("7.0.29"), version="7.0.29")}
    extravars = {"fp_manifests": {name: str(path) for name, path in paths.items()}}
    results = []
    for check in (True, False, True, False):
        run = ansible("apply_judged.yml", inventory, extravars=extravars, check=check, diff=True)
        assert run.returncode == 0, run.stdout
        results.append(run.results("Apply and judge"))
    good, bad = [r["good"] for r in results], [r["bad"] for r in results]
    assert [r["changed"] for r in good] == [r["changed"] for r in bad] == [True, True, False, False]

    assert (good[0]["health"]["healthy"], good[0]["health"]["vulnerable"], good[0]["health"]["judged"]) == (False, True, None)  # 7.0.26
    mark = host_state(fleet, "good")["applied"][-1]["judged"]
    assert (good[1]["health"]["healthy"], good[1]["health"]["judged"], good[1]["judged"]) == (True, mark, False)
    assert good[1]["diff"] == {"before": {"current": "7.0.26", "judged": None}, "after": {"current": "7.0.28", "judged": mark}}
    for again in good[2:]:  # already judged: checked once, nothing marked
        assert (again["judged"], again["health"]["healthy"], again["health"]["rounds"], "judged" in again["health"]) == (True, True, 1, False)
    assert fleet.service_version("good") == "7.0.28" and host_state(fleet, "good")["applied"][-1]["judged"] == mark

    for result in bad:
        assert result["health"]["healthy"] is False and result["health"]["judged"] is None, result
    assert "error_rate 100.0 > 0.0" in {f["why"] for f in bad[1]["health"]["failures"]}
    assert [r["judged"] for r in bad[1:]] == [False, False, False]  # never marked: a re-run judges it again
    assert fleet.service_version("bad") == "7.0.29" and "judged" not in host_state(fleet, "bad")["applied"][-1]
