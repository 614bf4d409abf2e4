#!/usr/bin/python
# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: report_files
short_description: Write a report's files into a directory on the controller, each atomically
version_added: 0.1.0
description:
  - Writes each of O(files) into O(dest) on the controller (made when missing), as the status report and the advisory
    are written. Each file is written to a temporary file beside it, flushed to disk and renamed over the old one,
    so a reader (a browser refreshing the report during a rollout) sees the old file or the new one, never a torn one.
  - A file whose text is already there is left alone.
  - Runs on the controller only, in the task's own process; it never contacts the host, so writing a report costs no
    module run.
author:
  - fleetpatch maintainers (@fleetpatch)
extends_documentation_fragment:
  - fleetpatch.rollout.attributes
attributes:
  action:
    support: full
    description: Everything happens on the controller.
  check_mode:
    support: full
    details:
      - Says which files would change; writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Files whose text is already there are not rewritten.
options:
  dest:
    description: The directory on the controller.
    type: path
    required: true
  files:
    description: The files, each a plain file name (no directory part) mapped to its text (written as UTF-8, mode 0644).
    type: dict
    required: true
seealso:
  - plugin: fleetpatch.rollout.status_render
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Write the fleet status report
  fleetpatch.rollout.report_files:
    dest: /srv/reports
    files:
      FP-2025-14847-status.json: "{{ report | fleetpatch.rollout.status_render('json') }}"
      FP-2025-14847-status.html: "{{ report | fleetpatch.rollout.status_render('html') }}"
  run_once: true
"""

RETURN = r"""
paths:
  description: The path of every file, in the order given.
  returned: always
  type: list
  elements: str
  sample: [/srv/reports/FP-2025-14847-status.json, /srv/reports/FP-2025-14847-status.html]
changed_paths:
  description: The files that were written (or would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [/srv/reports/FP-2025-14847-status.html]
"""
