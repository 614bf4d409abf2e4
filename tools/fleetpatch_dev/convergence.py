"""Is the fleet converged after a fault? The one checker of the fault x phase suite (tests/integration/faults).

:func:`converged` returns every way in which the fleet is not where a rollout may leave it, as sentences naming
the host and the values; an empty list means it is converged:

* each host runs exactly the old or the new release: what its service answers on ``/version``, what ``current``
  points to and what its state file records are one and the same version, one of the two;
* its state file (when fleetpatch ever wrote one) parses and passes the collection's own checker
  (``module_utils/_state.py``'s ``parse_state``), has no operation under way (``journal``) and no lock left (``lease``);
* its service answers ``/health`` with 200;
* the audit trail verifies (``bin/fleetpatch-audit verify``);
* no planted secret is anywhere: the audit log and its head, any host's state file, the runs' output.
"""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from fleetpatch_dev import ansible_env

__all__ = ["converged", "host_view"]

REPO = Path(__file__).resolve().parents[2]
STATE = "/var/lib/fleetpatch/state.json"
CURRENT = "/srv/fpdemo/current"


def _state_module():
    root = str(ansible_env.collections_dir())
    if root not in sys.path:
        sys.path.insert(0, root)
    from ansible_collections.fleetpatch.rollout.plugins.module_utils import _state  # pylint: disable=import-outside-toplevel
    return _state


def _get(url: str) -> tuple[int | None, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (a fleet address)
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError as exc:
        return None, str(exc)


def host_view(fleet, name: str) -> dict:
    """What the host says of itself: the service's version and health, ``current``'s target, the raw state file."""
    status, body = _get(fleet.service_url(name, "/version"))
    version = json.loads(body)["version"] if status == 200 else None
    health, _body = _get(fleet.service_url(name, "/health"))
    link = fleet.exec(name, ["readlink", CURRENT], check=False).stdout.strip()
    state = fleet.exec(name, ["sh", "-c", f"test ! -e {STATE} || cat {STATE}"], check=False).stdout
    return {"version": version, "health": health, "current": link, "state": state}


def converged(fleet, names, *, old: str, new: str, audit_log: Path | str | None = None, secrets=(), outputs=()) -> list[str]:
    """Every way the fleet is not converged; [] when it is (see the module's docstring)."""
    _state = _state_module()
    problems = []
    for name in names:
        view = host_view(fleet, name)
        answered, link = view["version"], view["current"]
        if answered not in (old, new):
            problems.append(f"{name}: the service answers version {answered!r}, neither the old {old} nor the new {new}")
        if link != f"releases/{answered}":
            problems.append(f"{name}: current points to {link!r} while the service answers {answered!r}")
        if view["health"] != 200:
            problems.append(f"{name}: /health answers {view['health']!r}, not 200")
        if view["state"]:
            try:
                state = _state.parse_state(STATE, view["state"].encode("utf-8"))
            except _state.StateDamaged as exc:
                problems.append(f"{name}: {exc}")
                continue
            recorded = (state.get("components") or {}).get("fpdemo", {}).get("version")
            if recorded is not None and recorded != answered:
                problems.append(f"{name}: the state file records version {recorded!r} while the service answers {answered!r}")
            if recorded is None and answered != old:
                problems.append(f"{name}: the service answers {answered!r} but the state file records no version")
            for field in ("journal", "lease"):
                if state.get(field) is not None:
                    problems.append(f"{name}: the state file's {field} is not empty: {json.dumps(state[field], sort_keys=True)}")
        elif answered != old:
            problems.append(f"{name}: runs {answered!r} without a state file recording it")
        for secret in secrets:
            if secret in view["state"]:
                problems.append(f"{name}: a planted secret is in the state file")
    if audit_log is not None:
        verify = subprocess.run([sys.executable, str(REPO / "bin" / "fleetpatch-audit"), "verify", str(audit_log)],
                                capture_output=True, text=True, check=False)
        if verify.returncode != 0:
            problems.append(f"the audit trail does not verify (exit {verify.returncode}): {(verify.stdout + verify.stderr).strip()}")
        for path in (Path(audit_log), Path(f"{audit_log}.head")):
            text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
            problems.extend(f"a planted secret is in {path}" for secret in secrets if secret in text)
    for index, output in enumerate(outputs):
        problems.extend(f"a planted secret is in the output of run {index + 1}" for secret in secrets if secret in output)
    return problems
