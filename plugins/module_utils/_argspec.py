# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by the modules that change a service (apply, rollback).

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.
Documented once, in the doc fragment ``fleetpatch.rollout.service``.
"""

from __future__ import annotations

__all__ = ["SERVICE_ARGSPEC", "PATCH_CLASSES"]

PATCH_CLASSES = ("hot", "restart")

SERVICE_ARGSPEC = {
    "component": {"type": "str", "required": True},
    "install_dir": {"type": "path", "default": "/srv/fpdemo"},
    "state_file": {"type": "path", "default": "/var/lib/fleetpatch/state.json"},
    "patch_class": {"type": "str", "choices": list(PATCH_CLASSES), "default": "hot", "aliases": ["class"]},
    "reload_command": {"type": "list", "elements": "str"},
    "restart_command": {"type": "list", "elements": "str"},
    "version_url": {"type": "str", "required": True},
    "version_key": {"type": "str", "default": "version", "no_log": False},
    "confirm_timeout": {"type": "int", "default": 30},
}
