#!/usr/bin/python
# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: notify
short_description: Tell each customer of a patch's affected hosts once, by e-mail, and record when each was told
version_added: 0.1.0
description:
  - Finds the customers of the affected hosts among O(hosts) (a host whose detected version lies in the manifest's
    C(affected) range, by the rules of P(fleetpatch.rollout.wave_plan#filter); a host whose detection failed is
    never called affected and is returned in RV(unknown_hosts)) and sends each customer B(one) notice, to every
    address its affected hosts name in C(customer_contact). The notice gives the patch (its id, title, severity and urgency), the
    customer's hosts with their maintenance windows, and when the rollout may override those windows.
  - For an C(urgent) patch that is RV(notices[].overrides_from), the notice's time plus the manifest's
    C(notify.lead_time), cut down to the minute. The ledger records when the mail server accepted the notice,
    which is later, so the planner (which overrides a window only once C(notified_at + lead_time) has passed)
    never overrides before the time the customer was given. An C(emergency) overrides at once, a C(routine) patch
    never.
  - Sends through SMTP with Python's C(smtplib), one session per notice, with STARTTLS or TLS and a login when
    configured. A notice counts as sent when the server accepted it for every recipient.
  - Records each accepted notice at once in the pre-notification ledger O(ledger), the file
    P(fleetpatch.rollout.wave_plan#filter) and the P(fleetpatch.rollout.rollout#role) role read
    (C(fleetpatch_notifications)), rewritten atomically and durably under an exclusive lock on C(<ledger>.lock)
    held for the whole run.
  - A customer already in the ledger for the patch is not told again. A refused or failed send is returned for
    that customer (status V(failed), with the server's answer) and not recorded, and the other customers are told
    all the same; the task itself does not fail for it, so that the caller can record and report first (the
    P(fleetpatch.rollout.notify#role) role then fails naming them).
  - Fails, before anything is sent, on a host variable of the wrong form, an unreadable or invalid ledger, or a
    template that cannot be found or rendered.
  - Runs on the controller only; it never contacts the host.
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
      - Sends nothing and writes nothing (not even the lock file); returns every notice it would send, with its
        subject and body, as V(would_send).
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - A customer told of the patch (in the ledger) is not told again.
options:
  hosts:
    description:
      - The hosts to consider, a mapping of host name to its variables, as for P(fleetpatch.rollout.wave_plan#filter)
        (C(customer), C(customer_contact), C(maintenance_window), C(region), C(cluster)), with what detection found
        under O(detect_key), or as C(version) (the rows of a detection report).
      - C(customer_contact) is an e-mail address (V(Acme Ops <ops@acme.example>)), several separated by commas, or a
        list of them. A customer whose affected hosts name no contact is reported V(failed).
    type: dict
    required: true
  manifest:
    description: The patch's change record, checked (P(fleetpatch.rollout.manifest#lookup)).
    type: dict
    required: true
  policy:
    description:
      - The rollout's policy (O(fleetpatch.rollout.rollout#role:main:fleetpatch_policy)); its C(customer_windows) stand in
        for hosts without a window of their own, and C(unwindowed) says what happens to hosts without any.
    type: dict
    default: {}
  detect_key:
    description: The host variable that holds the host's registered M(fleetpatch.rollout.detect) result.
    type: str
    default: detect
  detect_report:
    description:
      - A detection report on the controller (the JSON the P(fleetpatch.rollout.detect#role) role writes, read by
        P(fleetpatch.rollout.detect_report#lookup)), found as Ansible finds files. When given, it says what each host
        runs instead of O(detect_key), and a host it does not list is unknown. A report of another component or
        install directory than O(manifest)'s is refused.
    type: str
  ledger:
    description:
      - The pre-notification ledger (YAML, or JSON when its name ends in C(.json)). An absolute path is used as it
        is; a relative one is found as Ansible finds files (role, playbook, then the inventory's directory), and
        created in the inventory's directory when it exists nowhere yet.
      - The file is rewritten as a whole, so comments in a hand-written ledger are not kept.
    type: str
    required: true
  sender:
    description: The C(From) address of the notices, such as V(fleetpatch NOC <noc@example.com>).
    type: str
    required: true
  by:
    description: Who tells the customers, as the ledger's C(by) records it. Defaults to O(sender).
    type: str
  subject_template:
    description:
      - The Jinja2 template of the subject (one line; whitespace is folded), found as the
        M(ansible.builtin.template) action finds one (C(templates/) of the role or the playbook), then beside the
        inventory.
      - A template sees C(notice) (C(customer), C(to), C(hosts) with C(host), C(region), C(cluster), C(version),
        C(window), C(window_open), C(next_window), C(next_window_end) and C(overridden), C(urgency), C(lead_time),
        C(overrides_from), C(now), C(unwindowed)), C(patch) (C(id), C(title), C(severity), C(urgency),
        C(advisories), C(component), C(fixed_version), C(affected)) and C(sender). Times are UTC. It is rendered in
        Jinja2's sandbox; an undefined name is an error.
    type: str
    default: notice_subject.j2
  body_template:
    description: The Jinja2 template of the plain-text body, found and rendered as O(subject_template).
    type: str
    default: notice_body.j2
  smtp_host:
    description: The mail server.
    type: str
    default: localhost
  smtp_port:
    description: Its port; by default 587 with V(starttls), 465 with V(tls), 25 with V(none).
    type: int
  smtp_security:
    description:
      - V(starttls) upgrades the connection with STARTTLS and fails when the server does not offer it; V(tls)
        speaks TLS from the start; V(none) sends in clear and takes no login.
      - The server's certificate is checked against the system's trusted authorities, or O(smtp_ca_file).
    type: str
    choices: [starttls, tls, none]
    default: starttls
  smtp_username:
    description: The login, when the server wants one.
    type: str
  smtp_password:
    description: Its password. Never returned, logged or recorded; keep it in a vaulted variable.
    type: str
  smtp_ca_file:
    description: A file of trusted authorities (PEM) for the server's certificate.
    type: str
  smtp_timeout:
    description: Seconds to wait for the server at each step.
    type: int
    default: 30
  lock_timeout:
    description: Seconds to wait for another run that holds the ledger's lock.
    type: int
    default: 60
seealso:
  - plugin: fleetpatch.rollout.notifications
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: Tell every customer with an affected host
  fleetpatch.rollout.notify:
    hosts: "{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars))) }}"
    manifest: "{{ lookup('fleetpatch.rollout.manifest', '/srv/patches/FP-2025-14847.yml') }}"
    detect_key: found
    ledger: /srv/fleetpatch/notifications.yml
    sender: fleetpatch NOC <noc@example.com>
    smtp_host: smtp.example.com
    smtp_username: fleetpatch
    smtp_password: "{{ vault_smtp_password }}"
  register: told
  run_once: true
"""

RETURN = r"""
patch_id:
  description: The patch told of.
  type: str
  returned: success
ledger:
  description: The ledger's absolute path.
  type: str
  returned: success
notices:
  description: One per customer with affected hosts, sorted by customer.
  type: list
  elements: dict
  returned: success
  contains:
    customer:
      description: The customer.
      type: str
    to:
      description: The addresses told.
      type: list
      elements: str
    hosts:
      description: The customer's affected hosts.
      type: list
      elements: str
    status:
      description: V(sent), V(already_notified) (in the ledger before this run), V(would_send) (check mode) or V(failed).
      type: str
    notified_at:
      description: When the server accepted the notice (V(sent)), or when the ledger says it was told (V(already_notified)).
      type: str
    overrides_from:
      description: When the notice says the rollout may override the customer's windows (none for a routine patch).
      type: str
    subject:
      description: The subject.
      type: str
    body:
      description: The body, in check mode.
      type: str
    message_id:
      description: The message's C(Message-ID).
      type: str
    error:
      description: Why a V(failed) notice was not sent.
      type: str
failed_customers:
  description: The customers whose notice failed.
  type: list
  elements: str
  returned: success
unknown_hosts:
  description: Hosts whose detection failed or was missing (C(host), C(customer), C(why)); nobody is told of them.
  type: list
  elements: dict
  returned: success
hosts_without_customer:
  description: Affected hosts without a C(customer) (C(host), C(version)); nobody is told of them.
  type: list
  elements: dict
  returned: success
"""
