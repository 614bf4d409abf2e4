# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Approvals: who may start a rollout (the two-person rule).

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

A change needs an approver (``approved_by``) and an implementer (``implemented_by``), two different people:
names are compared trimmed and case-insensitively, so ``Alice`` and `` alice`` are one person. Only an
``emergency`` patch may be approved and implemented by one person, and then only with a written justification,
which goes into the audit record.

When the run comes from AWX or Automation Controller, the platform says who launched the job (``awx_user_name``):
that user is the implementer. A different ``implemented_by`` is refused, since free text must not contradict the
platform's own record, and the approver must be someone else (the same emergency exception applies).
"""

from __future__ import annotations

__all__ = ["ApprovalError", "URGENCIES", "check_approval"]

URGENCIES = ("routine", "urgent", "emergency")  # as in the manifest schema's urgency field


class ApprovalError(ValueError):
    """An approval that does not allow the change."""


def _person(field, value):
    if value is None:
        raise ApprovalError(f"{field} is required: name the person")
    if not isinstance(value, str):
        raise ApprovalError(f"{field} must be a person's name (a string), got {type(value).__name__} {value!r}")
    name = value.strip()
    if not name:
        raise ApprovalError(f"{field} must not be empty, got {value!r}")
    return name


def check_approval(approved_by, implemented_by, urgency="routine", justification=None, platform_user=None):
    """The approval as it is recorded, or ApprovalError naming the field and value that forbid the change.

    ``platform_user`` is the AWX / Automation Controller user who launched the job (``awx_user_name``), or None
    outside AWX: then it is the implementer, and ``implemented_by``, when given, must name the same person.
    Returns ``approved_by`` and ``implemented_by`` trimmed, ``urgency``, ``two_person`` (whether two different
    people are named) and, when given, ``justification`` trimmed.
    """
    approver = _person("approved_by", approved_by)
    if platform_user is not None:
        launcher = _person("awx_user_name", platform_user)
        if implemented_by is not None and (not isinstance(implemented_by, str) or implemented_by.strip().casefold() != launcher.casefold()):
            raise ApprovalError(
                f"implemented_by {implemented_by!r} is not the AWX user {launcher!r} who launched this job: under AWX the implementer is "
                f"whoever launched the job; leave implemented_by out, or let {implemented_by!r} launch it"
            )
        implemented_by = launcher
    implementer = _person("implemented_by", implemented_by)
    if urgency not in URGENCIES:
        raise ApprovalError(f"urgency must be one of {', '.join(URGENCIES)}, got {urgency!r}")
    if justification is not None and not isinstance(justification, str):
        raise ApprovalError(f"justification must be text, got {type(justification).__name__} {justification!r}")
    reason = (justification or "").strip()
    two_person = approver.casefold() != implementer.casefold()
    if not two_person:
        if urgency != "emergency":
            raise ApprovalError(
                f"approved_by {approved_by!r} and implemented_by {implemented_by!r} are the same person: the two-person rule "
                f"needs someone else to approve a patch of urgency {urgency!r}"
            )
        if not reason:
            raise ApprovalError(
                f"approved_by {approved_by!r} and implemented_by {implemented_by!r} are the same person: an emergency patch "
                f"may skip the two-person rule only with a written justification, got {justification!r}"
            )
    approval = {"approved_by": approver, "implemented_by": implementer, "urgency": urgency, "two_person": two_person}
    if reason:
        approval["justification"] = reason
    return approval
