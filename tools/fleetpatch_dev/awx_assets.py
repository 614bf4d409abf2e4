"""The AWX / Automation Controller assets of fleetpatch.rollout under ``awx/``, generated from the roles' argument specs.

One description (the job templates, the workflow, the follow-up schedule, the credential type) becomes:

- ``awx/playbooks/<name>.yml``: the project playbooks the job templates name. A job template's ``playbook`` is a
  path inside its project, and AWX lists only the files of the project, so each is one play that imports the
  collection's playbook by its FQCN (``fleetpatch.rollout.<name>``), which the execution environment holds;
- ``awx/surveys/<template>.json``: each template's survey, one question for every option of its role entry point's
  argument spec that a survey field can hold (see :func:`question`);
- ``awx/assets.json``: all of it in the format ``awx export`` writes and ``awx import`` reads (awxkit): top-level keys
  are awxkit's exportable resource kinds, each object carries its ``natural_key``, and objects point at each other
  by natural key; but for the audit trail's credential, which holds secrets (see :func:`export`);
- ``awx/credential-type.json``: the credential type alone, imported first;
- ``awx/configure.yml``: the same assets as a playbook of ``awx.awx`` modules.

An entry point that the specs do not have (yet) is left out, with its templates, workflow nodes and schedule, so the
generator needs no change when the specs gain one: run it again.

Command line (``PYTHONPATH=tools``)::

    python -m fleetpatch_dev.awx_assets            # write the files
    python -m fleetpatch_dev.awx_assets --check    # exit 1, naming each file, when a written file differs
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
AWX_DIR = REPO / "awx"
FQCN = "fleetpatch.rollout"

ORGANIZATION = "Default"
PROJECT = "fleetpatch"
PROJECT_URL = "https://git.example.com/fleetpatch/rollout.git"
INVENTORY = "fleet"
EXECUTION_ENVIRONMENT = "fleetpatch"
EE_IMAGE = "registry.example.com/fleetpatch-ee:0.1.0"
CREDENTIAL_TYPE = "fleetpatch audit trail"
CREDENTIAL = "fleetpatch audit trail"
WORKFLOW = "fleetpatch rollout in waves"
SCHEDULE = "fleetpatch follow-up: deferred hosts"

# The regions of the example workflow: one wave node and one gate node each, in this order. Region names belong to an
# inventory (the hosts' `region` variable); edit the workflow's nodes, or this list and generate again, for yours.
EXAMPLE_REGIONS = ("eu-west", "us-east")

# How many jobs the wave template is sliced into.
WAVE_SLICES = 2

# The follow-up schedule: when the summary's "A next run makes progress at ..." line says, once. Disabled as shipped.
FOLLOW_UP_RRULE = "DTSTART:20261203T090000Z RRULE:FREQ=MINUTELY;INTERVAL=1;COUNT=1"
FOLLOW_UP_EXTRA_DATA = {
    "fleetpatch_manifest": "manifests/FP-2025-14847.yml",
    "fleetpatch_approved_by": "alice",
    "fleetpatch_implemented_by": "bob",
}

# Options no survey asks for, whatever the entry point, and why. They can still be given as extra variables (every
# template prompts for them), like the mappings and lists, which no survey field holds.
NOT_ASKED = {
    "fleetpatch_implemented_by": "under AWX the implementer is the user who launched the job (awx_user_name)",
    "fleetpatch_now": "for dry runs and tests; a real rollout decides windows at the current time",
    "fleetpatch_state_file": "where each host keeps its state: a setting of the inventory, not of a launch",
}

# Options a workflow node sets for itself (extra_data), which the workflow's survey must not ask for: a workflow job's
# variables take precedence over its nodes' extra_data in AWX.
PER_NODE = ("fleetpatch_wave",)

SURVEY_TYPES = {"str": "text", "path": "text", "raw": "text", "int": "integer", "float": "float"}


@dataclasses.dataclass(frozen=True)
class Template:
    """A job template: the role entry point its survey comes from and the collection playbook it runs."""

    key: str
    name: str
    role: str
    entry: str
    playbook: str
    description: str
    slices: int = 1


TEMPLATES = (
    Template("detect", "fleetpatch detect", "detect", "main", "detect",
             "Which version of the patch's component every host runs; writes the detection report (read-only)."),
    Template("plan", "fleetpatch plan", "rollout", "plan", "plan",
             "The rollout's plan from a detection report, without contacting any host; stores it for the wave jobs."),
    Template("wave", "fleetpatch wave", "rollout", "wave", "wave",
             "One wave of a stored plan, on the wave's hosts in this job's inventory. Sliced: safe inside a wave, "
             "as the planner never puts more of a cluster in one wave than its budget; never across waves.",
             slices=WAVE_SLICES),
    Template("gate", "fleetpatch gate", "rollout", "gate", "gate",
             "The gate after a wave: every slice's outcome from the audit trail against the error budget."),
    Template("rollback", "fleetpatch rollback", "rollback", "main", "rollback",
             "Every host that runs the patch's fixed release goes back to the release it ran before."),
    Template("rollout", "fleetpatch rollout", "rollout", "main", "rollout",
             "The whole rollout in one job: plan, canary, each region's waves, gates. Also the follow-up run."),
)

# The workflow: (node identifier, template key, fleetpatch_wave or None); approvals are ("approve ...", None, None).
# Each node's success edge goes to the next; every wave and gate has a failure edge to the rollback node.
APPROVAL_TIMEOUT = 0  # seconds; 0 waits for a decision however long it takes


def _workflow_steps(regions=EXAMPLE_REGIONS):
    steps = [("detect", "detect", None), ("plan", "plan", None),
             ("wave canary", "wave", "canary"), ("gate canary", "gate", "canary"),
             ("approve regions", None, "The canary is healthy: start the regions' waves")]
    for region in regions:
        steps += [(f"wave {region}", "wave", region), (f"gate {region}", "gate", region)]
    steps += [("approve follow-up", None, "Run the follow-up (forced-window wave) for the deferred hosts now"),
              ("follow-up", "rollout", None)]
    return steps


ROLLBACK_NODE = "rollback"

_MARKUP = re.compile(r"\b(?:[OVCIBEMPU]|RV)\(([^()]*)\)|\bL\(([^(),]*),[^()]*\)|\bHORIZONTALLINE\b")


def plain(text):
    """Ansible's semantic markup stripped: ``O(a=b)`` -> ``a=b``, ``P(x.y.z#role)`` -> ``x.y.z``, ``L(t,url)`` -> ``t``."""
    def repl(match):
        if match.group(2) is not None:
            return match.group(2)
        inner = match.group(1) or ""
        if match.group(0).startswith("P("):
            return inner.split("#", 1)[0]
        if match.group(0).startswith(("O(", "RV(")) and "#" in inner:  # O(fqcn#type:entry:option)
            return inner.rsplit(":", 1)[-1]
        return inner
    return " ".join(_MARKUP.sub(repl, str(text)).split())


def load_specs(repo=REPO):
    """``{role: {entry point: spec}}`` from every ``roles/*/meta/argument_specs.yml``."""
    specs = {}
    for path in sorted((repo / "roles").glob("*/meta/argument_specs.yml")):
        specs[path.parent.parent.name] = yaml.safe_load(path.read_text(encoding="utf-8"))["argument_specs"]
    return specs


def question(variable, option):
    """The survey question for one argument spec option, or None when no survey field holds its type.

    str, path and raw (an error budget ``2`` or ``10%``, a region order ``eu,us``) are text, int integer, float float,
    bool a choice of true or false, an option with choices a choice of them; dict and list are left out, as a
    survey sends text for them, which the roles do not read as a mapping or a list.
    """
    kind = option.get("type", "str")
    description = option.get("description") or ""
    first = description[0] if isinstance(description, list) else description
    item = {
        "question_name": variable.removeprefix("fleetpatch_").replace("_", " ").capitalize(),
        "question_description": plain(first),
        "variable": variable,
        "required": bool(option.get("required", False)),
    }
    if option.get("choices"):
        item.update(type="multiplechoice", choices=[str(choice) for choice in option["choices"]])
    elif kind == "bool":
        item.update(type="multiplechoice", choices=["true", "false"])
    elif kind in SURVEY_TYPES:
        item["type"] = SURVEY_TYPES[kind]
    else:
        return None
    if "default" in option and option["default"] is not None:
        default = option["default"]
        if item["type"] == "multiplechoice":
            default = str(default).lower() if isinstance(default, bool) else str(default)
        elif item["type"] == "text":
            default = str(default)
        item["default"] = default
    return item


def survey(name, options, leave_out=()):
    """The survey spec (``{"name", "description", "spec"}``) of the argument spec ``options``, in their order."""
    spec = []
    for variable, option in options.items():
        if variable in NOT_ASKED or variable in leave_out:
            continue
        item = question(variable, option)
        if item is not None:
            spec.append(item)
    return {"name": name, "description": "Generated from the argument specs by tools/fleetpatch_dev/awx_assets.py", "spec": spec}


def entry_options(specs, role, entry):
    """The options of ``role``'s entry point ``entry``, or None when the specs do not have it."""
    return (specs.get(role, {}).get(entry) or {}).get("options") if entry in specs.get(role, {}) else None


def present_templates(specs):
    """The templates whose entry point the specs have."""
    return [t for t in TEMPLATES if entry_options(specs, t.role, t.entry) is not None]


def workflow_steps(specs):
    """The workflow's steps, or [] when a template it needs is missing."""
    keys = {t.key for t in present_templates(specs)}
    steps = _workflow_steps()
    needed = {step[1] for step in steps if step[1]} | {"rollback"}
    return steps if needed <= keys else []


def workflow_survey(specs):
    """The workflow's survey: the questions of the plan, wave and gate entry points, once each, in that order, required
    when one of them requires it (the waves need the plan file, which the plan writes); not the per-node ones
    (fleetpatch_wave), as a workflow job's variables take precedence over its nodes' own."""
    options = {}
    by_key = {t.key: t for t in TEMPLATES}
    for key in ("plan", "wave", "gate"):
        t = by_key[key]
        for variable, option in entry_options(specs, t.role, t.entry).items():
            merged = options.setdefault(variable, dict(option))
            merged["required"] = bool(merged.get("required")) or bool(option.get("required"))
    return survey(WORKFLOW, options, leave_out=PER_NODE)


# --- natural keys, as awxkit writes them --------------------------------------------------------------------------

def nk_organization(name=ORGANIZATION):
    return {"name": name, "type": "organization"}


def nk_org_object(kind, name):
    return {"organization": nk_organization(), "name": name, "type": kind}


def nk_credential_type(name=CREDENTIAL_TYPE):
    return {"name": name, "kind": "cloud", "type": "credential_type"}


def nk_credential(name=CREDENTIAL):
    return {"organization": nk_organization(), "name": name, "credential_type": nk_credential_type(), "type": "credential"}


def nk_execution_environment(name=EXECUTION_ENVIRONMENT):
    return {"name": name, "type": "execution_environment"}


def nk_node(identifier):
    return {"workflow_job_template": nk_org_object("workflow_job_template", WORKFLOW), "identifier": identifier,
            "type": "workflow_job_template_node"}


# --- the assets ----------------------------------------------------------------------------------------------------

CREDENTIAL_TYPE_INPUTS = {
    "fields": [
        {"id": "hmac_key", "label": "Audit HMAC key", "type": "string", "secret": True, "multiline": True,
         "help_text": "The key of the HMAC-SHA256 of every audit record; written to a file for the job "
                      "(FLEETPATCH_AUDIT_HMAC_KEY_FILE)."},
        {"id": "dsn", "label": "Audit database DSN", "type": "string",
         "help_text": "PostgreSQL connection string of the audit trail, without a password "
                      "(postgresql://fleetpatch@db.example.com:5432/fleetpatch); FLEETPATCH_AUDIT_DSN."},
        {"id": "password", "label": "Audit database password", "type": "string", "secret": True,
         "help_text": "The database user's password, given to libpq as PGPASSWORD."},
    ],
    "required": ["hmac_key", "dsn"],
}

CREDENTIAL_TYPE_INJECTORS = {
    "file": {"template.hmac_key": "{{ hmac_key }}"},
    "env": {
        "FLEETPATCH_AUDIT_HMAC_KEY_FILE": "{{ tower.filename.hmac_key }}",
        "FLEETPATCH_AUDIT_DSN": "{{ dsn }}",
        "PGPASSWORD": "{{ password }}",
    },
}

CREDENTIAL_TYPE_DESCRIPTION = ("The audit trail of fleetpatch.rollout: its HMAC key (a file), the PostgreSQL DSN and "
                               "password, as the audit callback reads them from the environment.")


def project_playbook(template):
    return f"awx/playbooks/{template.playbook}.yml"


def project_playbook_text(template):
    return (f"---\n# Generated by tools/fleetpatch_dev/awx_assets.py: the job template \"{template.name}\" runs this file of the\n"
            f"# project, which runs the collection's playbook {FQCN}.{template.playbook} from the execution environment.\n"
            f"- name: Run {FQCN}.{template.playbook}\n"
            f"  ansible.builtin.import_playbook: {FQCN}.{template.playbook}\n")


def build(specs):
    """Every generated file, ``{path relative to the repository: text}``."""
    templates = present_templates(specs)
    surveys = {t.key: survey(t.name, entry_options(specs, t.role, t.entry)) for t in templates}
    steps = workflow_steps(specs)
    files = {}
    for t in templates:
        files[project_playbook(t)] = project_playbook_text(t)
        files[f"awx/surveys/{t.key}.json"] = _json(surveys[t.key])
    wf_survey = workflow_survey(specs) if steps else None
    if steps:
        files["awx/surveys/workflow.json"] = _json(wf_survey)
    files["awx/credential-type.json"] = _json({"credential_types": [credential_type_export()]})
    files["awx/assets.json"] = _json(export(templates, surveys, steps, wf_survey))
    files["awx/configure.yml"] = configure_playbook(templates, steps)
    return files


def _json(data):
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def credential_type_export():
    return {"name": CREDENTIAL_TYPE, "description": CREDENTIAL_TYPE_DESCRIPTION, "kind": "cloud",
            "inputs": CREDENTIAL_TYPE_INPUTS, "injectors": CREDENTIAL_TYPE_INJECTORS, "natural_key": nk_credential_type()}


def export(templates, surveys, steps, wf_survey):
    """The assets as ``awx export`` writes them (awxkit ``ApiV2.export_assets``).

    Without the credential of the audit trail, which the templates name: AWX refuses to create one without its
    required secret inputs, which no import file carries (``awx export`` writes them as ``$encrypted$`` and ``awx
    import`` drops those), and an import would replace an existing one's secrets with nothing. It is made between the
    import of ``credential-type.json`` and this file's."""
    data = {
        "credential_types": [credential_type_export()],
        "execution_environments": [{
            "name": EXECUTION_ENVIRONMENT, "description": "Built from awx/execution-environment.yml (ansible-builder 3).",
            "image": EE_IMAGE, "pull": "missing", "organization": None, "credential": None,
            "natural_key": nk_execution_environment(),
        }],
        "projects": [{
            "name": PROJECT, "description": "The fleetpatch.rollout source: its awx/playbooks are the templates' playbooks.",
            "local_path": "", "scm_type": "git", "scm_url": PROJECT_URL, "scm_branch": "main", "scm_refspec": "",
            "scm_clean": False, "scm_track_submodules": False, "scm_delete_on_update": False, "credential": None,
            "timeout": 0, "scm_update_on_launch": False, "scm_update_cache_timeout": 0, "allow_override": False,
            "default_environment": nk_execution_environment(), "signature_validation_credential": None,
            "organization": nk_organization(),
            "natural_key": nk_org_object("project", PROJECT),
            "related": {"notification_templates_error": [], "notification_templates_started": [],
                        "notification_templates_success": [], "schedules": []},
        }],
        "inventory": [{
            "name": INVENTORY, "description": "Your fleet: hosts with region, cluster, customer and maintenance_window.",
            "organization": nk_organization(), "kind": "", "host_filter": None, "variables": "",
            "prevent_instance_group_fallback": False,
            "natural_key": nk_org_object("inventory", INVENTORY),
            "related": {"labels": [], "hosts": [], "groups": [], "input_inventories": []},
        }],
        "job_templates": [_job_template(t, surveys[t.key]) for t in templates],
        "workflow_job_templates": [_workflow_export(steps, wf_survey)] if steps else [],
        "schedules": [_schedule_export()] if any(t.key == "rollout" for t in templates) else [],
    }
    return data


def _job_template(t, survey_spec):
    return {
        "name": t.name, "description": t.description, "job_type": "run",
        "inventory": nk_org_object("inventory", INVENTORY), "project": nk_org_object("project", PROJECT),
        "playbook": project_playbook(t), "scm_branch": "", "forks": 0, "limit": "", "verbosity": 0,
        "extra_vars": "---", "job_tags": "", "force_handlers": False, "skip_tags": "", "start_at_task": "",
        "timeout": 0, "use_fact_cache": False, "execution_environment": nk_execution_environment(),
        "host_config_key": "", "ask_scm_branch_on_launch": False, "ask_diff_mode_on_launch": False,
        "ask_variables_on_launch": True, "ask_limit_on_launch": True, "ask_tags_on_launch": False,
        "ask_skip_tags_on_launch": False, "ask_job_type_on_launch": False, "ask_verbosity_on_launch": False,
        "ask_inventory_on_launch": False, "ask_credential_on_launch": False, "survey_enabled": True,
        "become_enabled": False, "diff_mode": False, "allow_simultaneous": False, "job_slice_count": t.slices,
        "webhook_service": "", "webhook_credential": None, "prevent_instance_group_fallback": False,
        "organization": nk_organization(),
        "natural_key": nk_org_object("job_template", t.name),
        "related": {
            "labels": [], "credentials": [nk_credential()], "survey_spec": survey_spec,
            "notification_templates_error": [], "notification_templates_started": [],
            "notification_templates_success": [], "schedules": [],
        },
    }


def _edges(steps):
    """``{identifier: {"success": [...], "failure": [...]}}``: the chain, and failure edges to the rollback node."""
    edges = {step[0]: {"success": [], "failure": []} for step in steps}
    edges[ROLLBACK_NODE] = {"success": [], "failure": []}
    for step, following in zip(steps, steps[1:]):
        edges[step[0]]["success"].append(following[0])
    for step in steps:
        if step[1] in ("wave", "gate"):
            edges[step[0]]["failure"].append(ROLLBACK_NODE)
    return edges


def _node_extra_data(key, wave):
    return {"fleetpatch_wave": wave} if key in ("wave", "gate") and wave else {}


def _workflow_export(steps, wf_survey):
    by_key = {t.key: t for t in TEMPLATES}
    edges = _edges(steps)
    nodes = []
    for ident, key, extra in steps + [(ROLLBACK_NODE, "rollback", None)]:
        node = {
            "extra_data": _node_extra_data(key, extra), "inventory": None, "scm_branch": None, "job_type": None,
            "job_tags": None, "skip_tags": None, "limit": None, "diff_mode": None, "verbosity": None,
            "execution_environment": None, "forks": None, "job_slice_count": None, "timeout": None,
            "workflow_job_template": nk_org_object("workflow_job_template", WORKFLOW),
            "all_parents_must_converge": False, "identifier": ident,
        }
        related = {"credentials": [], "labels": [], "instance_groups": [],
                   "success_nodes": [nk_node(n) for n in edges[ident]["success"]],
                   "failure_nodes": [nk_node(n) for n in edges[ident]["failure"]],
                   "always_nodes": []}
        if key is None:
            related["create_approval_template"] = {"name": ident, "description": extra, "timeout": APPROVAL_TIMEOUT}
        else:
            node["unified_job_template"] = nk_org_object("job_template", by_key[key].name)
        node["natural_key"] = nk_node(ident)
        node["related"] = related
        nodes.append(node)
    return {
        "name": WORKFLOW,
        "description": ("detect, plan, the canary wave and its gate, an approval, each region's wave and gate "
                        f"(example regions: {', '.join(EXAMPLE_REGIONS)}), an approval, the follow-up; "
                        "a failed wave or gate goes to the rollback."),
        "extra_vars": "", "organization": nk_organization(), "survey_enabled": True, "allow_simultaneous": False,
        "ask_variables_on_launch": True, "inventory": nk_org_object("inventory", INVENTORY), "limit": None,
        "scm_branch": None, "ask_inventory_on_launch": False, "ask_scm_branch_on_launch": False,
        "ask_limit_on_launch": False, "webhook_service": "", "webhook_credential": None,
        "natural_key": nk_org_object("workflow_job_template", WORKFLOW),
        "related": {
            "labels": [], "workflow_nodes": nodes, "survey_spec": wf_survey,
            "notification_templates_approvals": [], "notification_templates_error": [],
            "notification_templates_started": [], "notification_templates_success": [], "schedules": [],
        },
    }


def _schedule_export():
    return {
        "rrule": FOLLOW_UP_RRULE, "name": SCHEDULE,
        "description": ("The forced-window wave: run the rollout again at the time the summary's 'A next run makes "
                        "progress at ...' line gives (set DTSTART to it, then enable)."),
        "extra_data": FOLLOW_UP_EXTRA_DATA, "inventory": None, "scm_branch": None, "job_type": None, "job_tags": None,
        "skip_tags": None, "limit": None, "diff_mode": None, "verbosity": None, "execution_environment": None,
        "forks": None, "job_slice_count": None, "timeout": None,
        "unified_job_template": nk_org_object("job_template", "fleetpatch rollout"), "enabled": False,
        "natural_key": {"unified_job_template": nk_org_object("job_template", "fleetpatch rollout"),
                        "name": SCHEDULE, "type": "schedule"},
        "related": {"credentials": [], "labels": [], "instance_groups": []},
    }


# --- the awx.awx playbook -------------------------------------------------------------------------------------------

class _Dumper(yaml.SafeDumper):
    """Block style with indented sequences (yamllint's and ansible-lint's taste)."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


class Unsafe(str):
    """Text that Ansible must not template (AWX's own Jinja, such as a credential type's injectors): ``!unsafe``."""


_Dumper.add_representer(Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value), style="'"))


def _unsafe(data):
    """``data`` with every string that holds Jinja marked :class:`Unsafe`."""
    if isinstance(data, dict):
        return {key: _unsafe(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_unsafe(value) for value in data]
    if isinstance(data, str) and ("{{" in data or "{%" in data):
        return Unsafe(data)
    return data


def _yaml(data):
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120, allow_unicode=True)


CONFIGURE_HEADER = """\
---
# Generated by tools/fleetpatch_dev/awx_assets.py from the roles' argument specs: do not edit, generate again.
#
# The AWX / Automation Controller assets of fleetpatch.rollout, made with the awx.awx collection (not a dependency of
# fleetpatch.rollout: `ansible-galaxy collection install awx.awx` where you run this). The same assets as
# awx/assets.json, which `awx import < awx/assets.json` reads. The modules find the controller and its token in the
# environment (CONTROLLER_HOST, CONTROLLER_OAUTH_TOKEN or CONTROLLER_USERNAME/CONTROLLER_PASSWORD):
#
#   ansible-playbook awx/configure.yml -e fleetpatch_awx_project_url=https://git.example.com/you/rollout.git
#
# Secrets are not here: give the audit trail's HMAC key as fleetpatch_awx_audit_hmac_key (AWX refuses the credential
# without it) and its database password, if any, as fleetpatch_awx_audit_db_password, both vaulted. A credential that
# exists keeps its secrets (update_secrets: false).
"""


def configure_playbook(templates, steps):
    org = "{{ fleetpatch_awx_organization }}"
    tasks = [
        {"name": "Create the credential type of the audit trail", "awx.awx.credential_type": {
            "name": CREDENTIAL_TYPE, "description": CREDENTIAL_TYPE_DESCRIPTION, "kind": "cloud",
            "inputs": CREDENTIAL_TYPE_INPUTS, "injectors": _unsafe(CREDENTIAL_TYPE_INJECTORS)}},
        {"name": "Create the audit trail credential", "no_log": True, "awx.awx.credential": {
            "name": CREDENTIAL, "organization": org, "credential_type": CREDENTIAL_TYPE,
            "inputs": {"dsn": "{{ fleetpatch_awx_audit_dsn }}",
                       "hmac_key": "{{ fleetpatch_awx_audit_hmac_key }}",
                       "password": "{{ fleetpatch_awx_audit_db_password | default(omit) }}"},
            "update_secrets": False}},
        {"name": "Create the execution environment", "awx.awx.execution_environment": {
            "name": EXECUTION_ENVIRONMENT, "image": "{{ fleetpatch_awx_ee_image }}", "pull": "missing"}},
        {"name": "Create the project", "awx.awx.project": {
            "name": PROJECT, "organization": org, "scm_type": "git", "scm_url": "{{ fleetpatch_awx_project_url }}",
            "scm_branch": "{{ fleetpatch_awx_project_branch }}", "default_environment": EXECUTION_ENVIRONMENT,
            "wait": True}},
        {"name": "Create the inventory (add your hosts or an inventory source to it)", "awx.awx.inventory": {
            "name": INVENTORY, "organization": org}},
    ]
    for t in templates:
        task = {
            "name": f"Create the job template {t.name}", "awx.awx.job_template": {
                "name": t.name, "description": t.description, "organization": org, "project": PROJECT,
                "inventory": INVENTORY, "playbook": project_playbook(t), "job_type": "run",
                "execution_environment": EXECUTION_ENVIRONMENT, "credentials": [CREDENTIAL],
                "ask_variables_on_launch": True, "ask_limit_on_launch": True, "survey_enabled": True,
                "survey_spec": f"{{{{ lookup('ansible.builtin.file', 'surveys/{t.key}.json') | from_json }}}}",
                "job_slice_count": t.slices, "allow_simultaneous": False}}
        tasks.append(task)
    if steps:
        tasks.append(_configure_workflow(steps, org))
    if any(t.key == "rollout" for t in templates):
        tasks.append({"name": "Create the follow-up schedule (disabled: set its DTSTART from the summary first)",
                      "awx.awx.schedule": {
                          "name": SCHEDULE, "organization": org, "unified_job_template": "fleetpatch rollout",
                          "rrule": FOLLOW_UP_RRULE, "extra_data": FOLLOW_UP_EXTRA_DATA, "enabled": False}})
    play = [{
        "name": "Create the AWX assets of fleetpatch.rollout",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": {
            "fleetpatch_awx_organization": ORGANIZATION,
            "fleetpatch_awx_project_url": PROJECT_URL,
            "fleetpatch_awx_project_branch": "main",
            "fleetpatch_awx_ee_image": EE_IMAGE,
            "fleetpatch_awx_audit_dsn": "postgresql://fleetpatch@db.example.com:5432/fleetpatch",
        },
        "tasks": tasks,
    }]
    return CONFIGURE_HEADER + _yaml(play)


def _configure_workflow(steps, org):
    by_key = {t.key: t for t in TEMPLATES}
    edges = _edges(steps)
    nodes = []
    for ident, key, extra in steps + [(ROLLBACK_NODE, "rollback", None)]:
        if key is None:
            ujt = {"name": ident, "type": "workflow_approval", "description": extra, "timeout": APPROVAL_TIMEOUT}
        else:
            ujt = {"name": by_key[key].name, "type": "job_template", "organization": {"name": org}}
        node = {"identifier": ident, "unified_job_template": ujt}
        extra_data = _node_extra_data(key, extra)
        if extra_data:
            node["extra_data"] = extra_data
        node["related"] = {"success_nodes": [{"identifier": n} for n in edges[ident]["success"]],
                           "failure_nodes": [{"identifier": n} for n in edges[ident]["failure"]],
                           "always_nodes": [], "credentials": []}
        nodes.append(node)
    return {"name": f"Create the workflow {WORKFLOW}", "awx.awx.workflow_job_template": {
        "name": WORKFLOW, "organization": org, "inventory": INVENTORY, "ask_variables_on_launch": True,
        "survey_enabled": True,
        "survey_spec": "{{ lookup('ansible.builtin.file', 'surveys/workflow.json') | from_json }}",
        "destroy_current_nodes": True, "workflow_nodes": nodes}}


# --- command line ----------------------------------------------------------------------------------------------------

def generated_paths(repo=REPO):
    """Every file under awx/ that the generator owns (written by it, or stale from an earlier run)."""
    awx = repo / "awx"
    owned = [awx / "assets.json", awx / "credential-type.json", awx / "configure.yml"]
    owned += sorted((awx / "playbooks").glob("*.yml")) + sorted((awx / "surveys").glob("*.json"))
    return {str(p.relative_to(repo)) for p in owned if p.exists()}


def check(repo=REPO):
    """The differences between the generated files and the files on disk, one line each (empty: none)."""
    want = build(load_specs(repo))
    problems = []
    for rel, text in sorted(want.items()):
        path = repo / rel
        if not path.exists():
            problems.append(f"{rel}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{rel}: differs from what the argument specs give")
    for rel in sorted(generated_paths(repo) - set(want)):
        problems.append(f"{rel}: not generated any more (stale)")
    return problems


def write(repo=REPO):
    files = build(load_specs(repo))
    for rel in generated_paths(repo) - set(files):
        (repo / rel).unlink()
    for rel, text in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return sorted(files)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a file differs")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print("generate them again: PYTHONPATH=tools python -m fleetpatch_dev.awx_assets", file=sys.stderr)
        return 1 if problems else 0
    for rel in write():
        print(rel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
