# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A benchmark's callback: the wall time of every task of a run, and the module round trips to each host, as JSON.

Enabled by the benches only (ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins, ANSIBLE_CALLBACKS_ENABLED=bench_task_times);
the file is BENCH_TASK_TIMES. A task's time runs from its start to the start of the next task (or the end of the
run), which is what the controller spent on it, every host included. A round trip is a result (a loop's item each)
of a task whose action needs a connection to the host, not delegated to another host: one module run on the host.
An action that runs several modules in one task (such as fleetpatch's apply) counts once; so the figure is a floor.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: bench_task_times
type: aggregate
short_description: Wall time of each task, for the benchmarks
description:
  - Writes C({tasks, round_trips}) as JSON to the file named by E(BENCH_TASK_TIMES) at the end of the run.
options: {}
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import action_loader


class CallbackModule(CallbackBase):
    """Task wall times."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._times = []
        self._current = None
        self._trips = {}
        self._needs = {}

    def _close(self):
        if self._current is not None:
            name, start = self._current
            self._times.append({"name": name, "seconds": time.monotonic() - start})
            self._current = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self._current = (task.get_name(), time.monotonic())

    def _needs_connection(self, task):
        action = task.action
        if action not in self._needs:
            found = action_loader.get(action, class_only=True, collection_list=task.collections)
            if found is None:
                found = action_loader.get("ansible.builtin.normal", class_only=True)
            self._needs[action] = bool(getattr(found, "_requires_connection", True)) and not action.endswith(("set_fact", "debug", "assert", "fail"))
        return self._needs[action]

    def _count(self, result):
        task = result._task
        if not self._needs_connection(task):
            return
        delegated = task.delegate_to
        if delegated and delegated not in (result._host.name,):
            return
        items = result._result.get("results") if isinstance(result._result, dict) else None
        host = result._host.name
        self._trips[host] = self._trips.get(host, 0) + (len(items) if isinstance(items, list) and task.loop is not None else 1)

    def v2_runner_on_ok(self, result):
        self._count(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._count(result)

    def v2_playbook_on_stats(self, stats):
        self._close()
        path = os.environ.get("BENCH_TASK_TIMES")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump({"tasks": self._times, "round_trips": self._trips}, handle)
