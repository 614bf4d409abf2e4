# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by the modules that change a service (apply, rollback) or write the state file (defer),
and the health check's (health, and apply when it judges in the same call).

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.
Documented once, in the doc fragment ``fleetpatch.rollout.service`` (``fleetpatch.rollout.service.state_file``
for STATE_FILE_ARGSPEC alone, the reading modules' option, and ``fleetpatch.rollout.service.state_writer`` for
STATE_WRITER_ARGSPEC, the writing modules' options); HEALTH_ARGSPEC in ``fleetpatch.rollout.health``.
"""

from __future__ import annotations

from ansible_collections.fleetpatch.rollout.plugins.module_utils._state import DAMAGED_STATE_CHOICES

__all__ = [
    "HEALTH_ARGSPEC", "SERVICE_ARGSPEC", "SERVICE_REQUIRED_IF", "STATE_FILE_ARGSPEC", "STATE_WRITER_ARGSPEC", "OWNER_ARGSPEC", "PATCH_CLASSES",
    "missing_options",
]

PATCH_CLASSES = ("hot", "restart")

STATE_FILE_ARGSPEC = {
    "state_file": {"type": "path", "default": "/var/lib/fleetpatch/state.json"},
}

# The modules that write the state file: what they do with one that is damaged.
STATE_WRITER_ARGSPEC = {
    **STATE_FILE_ARGSPEC,
    "damaged_state": {"type": "str", "choices": list(DAMAGED_STATE_CHOICES), "default": "refuse"},
}

# The run whose lock the call works under (documented by the doc fragment fleetpatch.rollout.lease).
OWNER_ARGSPEC = {
    "owner": {"type": "str"},
}

SERVICE_ARGSPEC = {
    "manifest": {"type": "path"},
    "component": {"type": "str"},
    "install_dir": {"type": "path", "default": "/srv/fpdemo"},
    **STATE_WRITER_ARGSPEC,
    **OWNER_ARGSPEC,
    "patch_class": {"type": "str", "choices": list(PATCH_CLASSES), "default": "hot", "aliases": ["class"]},
    "reload_command": {"type": "list", "elements": "str"},
    "reload_signal": {"type": "str"},
    "pid_file": {"type": "path"},
    "restart_command": {"type": "list", "elements": "str"},
    "version_url": {"type": "str"},
    "version_key": {"type": "str", "default": "version", "no_log": False},
    "confirm_timeout": {"type": "int", "default": 30},
}

PROBE_OPTIONS = {
    "name": {"type": "str"},
    "type": {"type": "str", "required": True, "choices": ["http", "tcp", "command"]},
    "url": {"type": "str"},
    "expect_status": {"type": "int", "default": 200},
    "expect_body": {"type": "str"},
    "host": {"type": "str", "default": "127.0.0.1"},
    "port": {"type": "int"},
    "command": {"type": "list", "elements": "str"},
    "expect_rc": {"type": "int", "default": 0},
    "timeout": {"type": "float", "default": 5},
    "samples": {"type": "int"},
    "vulnerability": {"type": "bool", "default": False},
}

THRESHOLD_OPTIONS = {
    "max_error_rate": {"type": "float", "default": 0},
    "max_p50_ms": {"type": "float"},
    "max_p95_ms": {"type": "float"},
    "max_p99_ms": {"type": "float"},
    "baseline_p95_factor": {"type": "float"},
    "peers_p95_factor": {"type": "float"},
    "peers_error_rate_slack": {"type": "float"},
    "latency_floor_ms": {"type": "float", "default": 1},
}

# The health check's options (documented by the doc fragment fleetpatch.rollout.health).
HEALTH_ARGSPEC = {
    "probes": {
        "type": "list",
        "elements": "dict",
        "options": PROBE_OPTIONS,
        "required_if": [("type", "http", ("url",)), ("type", "tcp", ("port",)), ("type", "command", ("command",))],
    },
    "samples": {"type": "int"},
    "soak": {"type": "float", "default": 0},
    "interval": {"type": "float", "default": 1},
    "consecutive_failures": {"type": "int", "default": 3},
    "thresholds": {"type": "dict", "default": {}, "options": THRESHOLD_OPTIONS},
    "baseline": {"type": "dict"},
    "peers": {"type": "list", "elements": "dict"},
    "check_vulnerability": {"type": "bool", "default": True},
    "fail_on_unhealthy": {"type": "bool", "default": True},
}

SERVICE_REQUIRED_IF = [
    ("patch_class", "hot", ("reload_command", "reload_signal"), True),
    ("patch_class", "restart", ("restart_command",)),
    ("reload_signal", None, ("pid_file",)),
]


def missing_options(params, names):
    """The options among ``names`` that neither the task nor its manifest gave, as an error message or None."""
    missing = [name for name in names if params.get(name) in (None, "")]
    if not missing:
        return None
    return f"missing required option(s): {', '.join(missing)} (give them, or a manifest that holds them)"
