# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The input and the hosts of the filters that gather what the roles know from every host's variables."""

from __future__ import annotations


class ModuleDocFragment:
    """hostvars in, the hosts to look at."""

    DOCUMENTATION = r"""
options:
  _input:
    description:
      - The variables of every host, such as C(hostvars). Only the variables the filter names are read, so a host's
        other variables are never templated.
    type: dict
    required: true
  hosts:
    description: The hosts to look at, in the play's order, such as C(ansible_play_hosts_all).
    type: list
    elements: str
    required: true
"""
