"""The AWX / Automation Controller assets under awx/: generated from the argument specs, and in the shapes AWX reads.

AWX itself cannot run here, so these are the checks that can be made without it:

- the files are what tools/fleetpatch_dev/awx_assets.py makes of the roles' argument specs (its ``--check``);
- every playbook a job template names is in the project (this repository) and imports a playbook of the collection;
- every survey variable and every extra variable (a template's, a workflow node's, the schedule's) is an option of
  the role entry point that template's playbook runs, found by reading the collection's playbook, not the generator;
- each survey passes the checks AWX's survey_spec endpoint makes, and asks each option in the type its spec gives;
- awx/assets.json has the shape ``awx export`` writes: its top-level keys are awxkit's exportable resources, each
  object carries the natural key awxkit builds for its kind, and each reference to another object is that object's
  natural key, found in the file;
- the credential type's injectors pass AWX's own checks and set exactly the audit callback's environment;
- the workflow chains its waves with gates, approvals and failure edges to the rollback, and awx/configure.yml (the
  awx.awx playbook) describes the same assets as the import file. With awx.awx installed
  (``FLEETPATCH_AWX_COLLECTIONS`` names a collections path that holds it) it passes ``ansible-playbook
  --syntax-check``; without it each task's options are checked against the awx.awx modules' argument specs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
AWX = REPO / "awx"
ASSETS = json.loads((AWX / "assets.json").read_text(encoding="utf-8"))
FQCN = "fleetpatch.rollout"

# awxkit's page class of each exportable resource kind, and the "type" its objects carry.
awxkit_pages = pytest.importorskip("awxkit.api.pages")
from awxkit.api.pages.api import EXPORTABLE_RESOURCES  # noqa: E402  (after the importorskip)

KINDS = {
    "credential_types": (awxkit_pages.CredentialType, "credential_type"),
    "credentials": (awxkit_pages.Credential, "credential"),
    "projects": (awxkit_pages.Project, "project"),
    "inventory": (awxkit_pages.Inventory, "inventory"),
    "job_templates": (awxkit_pages.JobTemplate, "job_template"),
    "workflow_job_templates": (awxkit_pages.WorkflowJobTemplate, "workflow_job_template"),
    "execution_environments": (awxkit_pages.ExecutionEnvironment, "execution_environment"),
    "schedules": (awxkit_pages.Schedule, "schedule"),
}

# What AWX's survey_spec endpoint accepts (awx/api/views JobTemplateSurveySpec: ALLOWED_TYPES and the default's type).
SURVEY_TYPES = {"text": str, "textarea": str, "password": str, "integer": int, "float": (float, int),
                "multiplechoice": str, "multiselect": (str, list)}
# The survey type each argument spec type must become.
EXPECTED_TYPE = {"str": "text", "path": "text", "raw": "text", "int": "integer", "float": "float", "bool": "multiplechoice"}

# The options of the awx.awx modules that awx/configure.yml uses (their argument_spec in awx.awx 24.x), for the check
# made when awx.awx is not installed.
AWX_AWX_OPTIONS = {
    "credential_type": {"name", "description", "kind", "inputs", "injectors", "state"},
    "credential": {"name", "new_name", "copy_from", "description", "organization", "team", "user", "credential_type",
                   "inputs", "update_secrets", "state"},
    "execution_environment": {"name", "new_name", "image", "description", "organization", "credential", "pull", "state"},
    "project": {"name", "new_name", "copy_from", "description", "scm_type", "scm_url", "local_path", "scm_branch",
                "scm_refspec", "credential", "scm_clean", "scm_delete_on_update", "scm_track_submodules",
                "scm_update_on_launch", "scm_update_cache_timeout", "allow_override", "timeout", "default_environment",
                "organization", "state", "wait", "update_project", "interval"},
    "inventory": {"name", "new_name", "copy_from", "description", "organization", "variables", "kind", "host_filter",
                  "instance_groups", "prevent_instance_group_fallback", "state"},
    "job_template": {"name", "new_name", "copy_from", "description", "job_type", "inventory", "organization", "project",
                     "playbook", "credentials", "execution_environment", "instance_groups", "forks", "limit",
                     "verbosity", "extra_vars", "job_tags", "force_handlers", "skip_tags", "start_at_task",
                     "diff_mode", "use_fact_cache", "host_config_key", "ask_variables_on_launch",
                     "ask_limit_on_launch", "ask_inventory_on_launch", "ask_credential_on_launch", "survey_enabled",
                     "survey_spec", "become_enabled", "allow_simultaneous", "timeout", "job_slice_count", "scm_branch",
                     "labels", "state", "prevent_instance_group_fallback"},
    "workflow_job_template": {"name", "new_name", "copy_from", "description", "extra_vars", "organization",
                              "allow_simultaneous", "ask_variables_on_launch", "inventory", "limit", "scm_branch",
                              "ask_inventory_on_launch", "ask_scm_branch_on_launch", "ask_limit_on_launch",
                              "survey_enabled", "survey_spec", "labels", "state", "workflow_nodes",
                              "destroy_current_nodes"},
    "schedule": {"rrule", "name", "new_name", "description", "extra_data", "inventory", "unified_job_template",
                 "organization", "enabled", "state", "credentials", "job_type", "limit"},
}
WORKFLOW_NODE_OPTIONS = {"identifier", "unified_job_template", "extra_data", "related", "all_parents_must_converge",
                         "inventory", "limit", "job_type", "state"}


def _specs():
    return {path.parent.parent.name: yaml.safe_load(path.read_text(encoding="utf-8"))["argument_specs"]
            for path in (REPO / "roles").glob("*/meta/argument_specs.yml")}


SPECS = _specs()


def _entry_point(project_playbook: str) -> tuple[str, str]:
    """(role, entry point) that a project playbook runs: the collection playbook it imports, read for its role."""
    plays = yaml.safe_load((REPO / project_playbook).read_text(encoding="utf-8"))
    imported = {play.get("ansible.builtin.import_playbook") for play in plays} - {None}
    assert len(imported) == 1 and next(iter(imported)).startswith(f"{FQCN}."), (project_playbook, imported)
    name = next(iter(imported)).removeprefix(f"{FQCN}.")
    collection_playbook = REPO / "playbooks" / f"{name}.yml"
    assert collection_playbook.is_file(), f"{project_playbook} imports {FQCN}.{name}, which has no playbooks/{name}.yml"
    found = set()
    for play in yaml.safe_load(collection_playbook.read_text(encoding="utf-8")):
        for role in play.get("roles", []):
            found.add((role["role"] if isinstance(role, dict) else role, "main"))
        for task in play.get("tasks", []):
            include = task.get("ansible.builtin.include_role") or task.get("ansible.builtin.import_role")
            if include:
                found.add((include["name"], include.get("tasks_from", "main")))
    assert len(found) == 1, (collection_playbook, found)
    role, entry = found.pop()
    return role.removeprefix(f"{FQCN}."), entry


def _options(role: str, entry: str) -> dict:
    assert entry in SPECS.get(role, {}), f"role {role} has no entry point {entry} in its argument specs"
    return SPECS[role][entry]["options"]


TEMPLATES = {jt["name"]: jt for jt in ASSETS["job_templates"]}
ENTRY = {name: _entry_point(jt["playbook"]) for name, jt in TEMPLATES.items()}
WORKFLOW = ASSETS["workflow_job_templates"][0] if ASSETS["workflow_job_templates"] else None


def test_generated_files_are_what_the_argument_specs_give():
    """The committed assets cannot drift from the specs: the generator's --check finds nothing to change."""
    result = subprocess.run([sys.executable, "-m", "fleetpatch_dev.awx_assets", "--check"], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO / "tools")}, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr


def test_every_template_playbook_is_in_the_project_and_imports_a_collection_playbook():
    assert {"fleetpatch detect", "fleetpatch plan", "fleetpatch rollback", "fleetpatch rollout"} <= set(TEMPLATES)
    for name, jt in TEMPLATES.items():
        assert (REPO / jt["playbook"]).is_file(), (name, jt["playbook"])
        assert ENTRY[name]  # resolved to a role entry point that the specs have


def test_every_survey_and_extra_variable_is_an_option_of_the_entry_point():
    for name, jt in TEMPLATES.items():
        options = _options(*ENTRY[name])
        asked = [q["variable"] for q in jt["related"]["survey_spec"]["spec"]]
        assert set(asked) <= set(options), (name, set(asked) - set(options))
        extra = yaml.safe_load(jt["extra_vars"]) or {}
        assert set(extra) <= set(options), (name, extra)
    for schedule in ASSETS["schedules"]:
        name = schedule["unified_job_template"]["name"]
        assert set(schedule["extra_data"]) <= set(_options(*ENTRY[name])), schedule["name"]
    if WORKFLOW:
        reached = set()
        for node in WORKFLOW["related"]["workflow_nodes"]:
            if "unified_job_template" not in node:
                assert not node["extra_data"], node["identifier"]  # an approval node runs nothing
                continue
            options = _options(*ENTRY[node["unified_job_template"]["name"]])
            reached |= set(options)
            assert set(node["extra_data"]) <= set(options), node["identifier"]
        asked = {q["variable"] for q in WORKFLOW["related"]["survey_spec"]["spec"]}
        assert asked <= reached, asked - reached
        # A workflow job's variables take precedence over its nodes' extra_data: the wave is never asked there.
        assert "fleetpatch_wave" not in asked


def _check_survey(survey: dict, options: dict | None):
    """The checks of AWX's survey_spec endpoint, and (with the entry point's ``options``) the type of each question."""
    assert isinstance(survey["name"], str) and isinstance(survey["description"], str)
    assert isinstance(survey["spec"], list) and survey["spec"], "a survey without questions is refused"
    seen = set()
    for item in survey["spec"]:
        for key in ("type", "question_name", "variable"):
            assert isinstance(item[key], str), (key, item)
        assert isinstance(item["required"], bool), item
        assert item["variable"] not in seen, f"{item['variable']} asked twice"
        seen.add(item["variable"])
        qtype = item["type"]
        assert qtype in SURVEY_TYPES, item
        if "default" in item and item["default"] != "":
            assert isinstance(item["default"], SURVEY_TYPES[qtype]), item
        for key in ("min", "max"):
            assert item.get(key) is None or isinstance(item[key], int), item
        if qtype in ("multiplechoice", "multiselect"):
            assert item["choices"], item
            if "default" in item:
                assert item["default"] in item["choices"], item
        assert not re.search(r"\b(?:[OVCIBEMPLU]|RV)\(", item.get("question_description", "")), item  # markup stripped
        if options is None:
            continue
        option = options[item["variable"]]
        kind = option.get("type", "str")
        expected = "multiplechoice" if option.get("choices") else EXPECTED_TYPE[kind]
        assert qtype == expected, (item["variable"], kind, qtype)
        if option.get("choices"):
            assert item["choices"] == [str(c) for c in option["choices"]]
        if kind == "bool":
            assert item["choices"] == ["true", "false"]
        if "default" in option and option["default"] is not None:
            assert str(item["default"]).lower() == str(option["default"]).lower(), item
        else:
            assert "default" not in item, f"{item['variable']}: a default the spec does not give would always be sent"


def test_surveys_are_valid_and_follow_the_argument_specs():
    for name, jt in TEMPLATES.items():
        options = _options(*ENTRY[name])
        survey = jt["related"]["survey_spec"]
        _check_survey(survey, options)
        for variable, option in options.items():
            if option.get("required"):
                assert {"variable": variable, "required": True}.items() <= next(
                    q for q in survey["spec"] if q["variable"] == variable).items(), (name, variable)
        assert json.loads((AWX / "surveys" / f"{Path(jt['playbook']).stem}.json").read_text(encoding="utf-8")) == survey
        # Under AWX the implementer is who launched the job: never a survey's free text.
        assert "fleetpatch_implemented_by" not in {q["variable"] for q in survey["spec"]}
    if WORKFLOW:
        _check_survey(WORKFLOW["related"]["survey_spec"], None)


def _natural_keys():
    """Every natural key in the file, frozen, with the object it names."""
    from awxkit.api.utils import freeze
    keys = {}
    for kind, objects in ASSETS.items():
        for obj in objects:
            keys[freeze(obj["natural_key"])] = obj
            for node in obj.get("related", {}).get("workflow_nodes", []):
                keys[freeze(node["natural_key"])] = node
    return keys


def _check_natural_key(key: dict, page_class, type_name: str):
    fields = set(page_class.NATURAL_KEY) | {"type"}
    assert key["type"] == type_name, key
    assert set(key) <= fields and set(key) >= fields - {"organization"} - ({"kind"} if type_name != "credential_type" else set()), (key, fields)


def test_import_file_has_the_shape_awx_export_writes():
    from awxkit.api.utils import freeze
    assert set(ASSETS) <= set(EXPORTABLE_RESOURCES), set(ASSETS) - set(EXPORTABLE_RESOURCES)
    keys = _natural_keys()
    organization = {"name": "Default", "type": "organization"}

    (credential_type,) = ASSETS["credential_types"]
    # Made by the administrator between the two imports (it holds secrets), of the credential type in the file.
    audit_credential = {"organization": organization, "name": "fleetpatch audit trail",
                        "credential_type": credential_type["natural_key"], "type": "credential"}
    _check_natural_key(audit_credential, awxkit_pages.Credential, "credential")

    def resolves(ref):
        # The organization is AWX's default one, there on every installation; anything else must be in the file.
        return ref in (organization, audit_credential) or freeze(ref) in keys

    for kind, objects in ASSETS.items():
        page_class, type_name = KINDS[kind]
        names = [freeze(obj["natural_key"]) for obj in objects]
        assert len(names) == len(set(names)), f"{kind}: two objects with one natural key"
        for obj in objects:
            assert "id" not in obj and "url" not in obj, obj.get("name")
            _check_natural_key(obj["natural_key"], page_class, type_name)
            for field in page_class.NATURAL_KEY:
                if field in obj["natural_key"] and not isinstance(obj["natural_key"][field], dict):
                    assert obj[field] == obj["natural_key"][field], (kind, field)
            for field, value in obj.items():
                if field != "natural_key" and isinstance(value, dict) and "type" in value:
                    assert resolves(value), (kind, obj.get("name"), field, value)
            for rel, value in obj.get("related", {}).items():
                if rel == "survey_spec":
                    continue
                for ref in value if isinstance(value, list) else []:
                    if rel == "workflow_nodes":
                        _check_natural_key(ref["natural_key"], awxkit_pages.WorkflowJobTemplateNode,
                                           "workflow_job_template_node")
                        assert ref["natural_key"]["workflow_job_template"] == obj["natural_key"]
                        for field, fvalue in ref.items():
                            if field != "natural_key" and isinstance(fvalue, dict) and "type" in fvalue:
                                assert resolves(fvalue), (ref["identifier"], field)
                        for edge in ("success_nodes", "failure_nodes", "always_nodes"):
                            for target in ref["related"][edge]:
                                assert resolves(target), (ref["identifier"], edge, target)
                    else:
                        assert resolves(ref), (kind, obj.get("name"), rel, ref)
    # Every node runs a template, or is an approval (which awx export writes as create_approval_template).
    for node in WORKFLOW["related"]["workflow_nodes"] if WORKFLOW else []:
        assert ("unified_job_template" in node) != ("create_approval_template" in node["related"]), node["identifier"]


def test_credential_type_sets_exactly_the_audit_callbacks_environment():
    """The injectors name the audit callback's own environment variables (from its documentation) and PGPASSWORD,
    pass AWX's checks (no ANSIBLE_ variable, every template renders from the defined fields), and keep the secrets
    secret."""
    import ansible.plugins.loader  # noqa: F401  (ansible-core present)
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    documented = {}
    for source, marker in ((REPO / "plugins" / "callback" / "audit.py", 'DOCUMENTATION = r"""'),
                           (REPO / "plugins" / "doc_fragments" / "audit.py", 'DOCUMENTATION = r"""')):
        text = source.read_text(encoding="utf-8")
        doc = yaml.safe_load(text.split(marker, 1)[1].split('"""', 1)[0])
        for option, spec in doc["options"].items():
            documented[option] = [env["name"] for env in spec.get("env", [])]
    (credential_type,) = ASSETS["credential_types"]
    env = credential_type["injectors"]["env"]
    assert set(env) == {*documented["hmac_key_file"], *documented["dsn"], "PGPASSWORD"}
    assert not [name for name in env if name.startswith("ANSIBLE_")]
    fields = {field["id"]: field for field in credential_type["inputs"]["fields"]}
    assert fields["hmac_key"]["secret"] and fields["password"]["secret"] and not fields["dsn"].get("secret")
    assert env["PGPASSWORD"] == "{{ password }}"

    class Filenames:
        pass

    class Tower:
        filename = Filenames()

    namespace = {name: "EXAMPLE" for name in fields}
    namespace["tower"] = Tower()
    for name in credential_type["injectors"].get("file", {}):
        setattr(Tower.filename, name.split(".", 1)[1], "EXAMPLE_FILENAME")
    sandbox = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    for section in credential_type["injectors"].values():
        for template in section.values():
            sandbox.from_string(template).render(namespace)
    # The import file carries no credential (AWX refuses one without its required secrets); the type comes first.
    assert "credentials" not in ASSETS
    assert json.loads((AWX / "credential-type.json").read_text(encoding="utf-8")) == {"credential_types": [credential_type]}
    assert set(credential_type["inputs"]["required"]) == {"hmac_key", "dsn"}  # an empty key file stops the callback


def _graph():
    nodes = {node["identifier"]: node for node in WORKFLOW["related"]["workflow_nodes"]}

    def edges(ident, kind):
        return [target["identifier"] for target in nodes[ident]["related"][kind]]
    return nodes, edges


@pytest.mark.skipif(WORKFLOW is None, reason="the argument specs have no wave and gate entry points yet")
def test_workflow_runs_each_wave_then_its_gate_with_approvals_and_failure_edges_to_the_rollback():
    nodes, edges = _graph()
    targets = {t for ident in nodes for kind in ("success_nodes", "failure_nodes", "always_nodes") for t in edges(ident, kind)}
    roots = [ident for ident in nodes if ident not in targets]
    assert roots == ["detect"]
    path, ident = [], "detect"
    while ident:
        path.append(ident)
        nxt = edges(ident, "success_nodes")
        assert len(nxt) <= 1, ident
        ident = nxt[0] if nxt else None
    assert len(path) == len(set(path)) == len(nodes) - 1  # one chain, no cycle; the rollback is off it

    def template(ident):
        ujt = nodes[ident].get("unified_job_template")
        return ENTRY[ujt["name"]][1] if ujt else "approval"
    kinds = [template(ident) for ident in path]
    assert kinds[:2] == ["main", "plan"] and ENTRY[nodes["detect"]["unified_job_template"]["name"]][0] == "detect"
    waves = [nodes[ident]["extra_data"]["fleetpatch_wave"] for ident in path if template(ident) == "wave"]
    assert waves[0] == "canary" and len(waves) >= 2
    for ident in path:
        if template(ident) == "wave":
            gate = edges(ident, "success_nodes")[0]
            assert template(gate) == "gate"
            assert nodes[gate]["extra_data"] == nodes[ident]["extra_data"], (ident, gate)
            assert edges(ident, "failure_nodes") == edges(gate, "failure_nodes") == ["rollback"]
    assert template(path[path.index("gate canary") + 1]) == "approval"  # the regions wait for a person
    assert kinds[-2:] == ["approval", "main"]  # then the follow-up (forced-window wave), approved too
    assert ENTRY[nodes["rollback"]["unified_job_template"]["name"]] == ("rollback", "main")
    # Job slicing: on the wave template only, whose slices run one wave's hosts at once.
    for name, jt in TEMPLATES.items():
        assert jt["job_slice_count"] == (2 if ENTRY[name] == ("rollout", "wave") else 1), name


def test_follow_up_schedule_runs_the_rollout_once_and_ships_disabled():
    from dateutil.rrule import rrulestr
    (schedule,) = ASSETS["schedules"]
    assert ENTRY[schedule["unified_job_template"]["name"]] == ("rollout", "main")
    assert schedule["enabled"] is False
    dtstart, rule = schedule["rrule"].split(" ")
    assert re.fullmatch(r"DTSTART:\d{8}T\d{6}Z", dtstart) and "INTERVAL=" in rule and "COUNT=1" in rule
    assert len(list(rrulestr(schedule["rrule"].replace(" ", "\n")))) == 1
    # A scheduled job has no launching user (awx_user_name): the schedule names the people.
    assert {"fleetpatch_approved_by", "fleetpatch_implemented_by"} <= set(schedule["extra_data"])


class _Loader(yaml.SafeLoader):
    """YAML with Ansible's !unsafe (text never templated), read as plain text."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _configure_tasks():
    (play,) = yaml.load((AWX / "configure.yml").read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
    return play["tasks"]


def test_configure_playbook_makes_the_same_assets_with_known_awx_awx_options():
    tasks = _configure_tasks()
    by_module = {}
    for task in tasks:
        (module,) = [key for key in task if key.startswith("awx.awx.")]
        options = task[module]
        short = module.removeprefix("awx.awx.")
        assert set(options) <= AWX_AWX_OPTIONS[short], (task["name"], set(options) - AWX_AWX_OPTIONS[short])
        by_module.setdefault(short, []).append(options)
    jts = {o["name"]: o for o in by_module["job_template"]}
    assert set(jts) == set(TEMPLATES)
    for name, options in jts.items():
        jt = TEMPLATES[name]
        assert (options["playbook"], options["job_slice_count"]) == (jt["playbook"], jt["job_slice_count"]), name
        assert f"surveys/{Path(jt['playbook']).stem}.json" in options["survey_spec"]
    (credential_type,) = by_module["credential_type"]
    assert credential_type["injectors"] == ASSETS["credential_types"][0]["injectors"]
    assert credential_type["inputs"] == ASSETS["credential_types"][0]["inputs"]
    if WORKFLOW:
        (workflow,) = by_module["workflow_job_template"]
        nodes, edges = _graph()
        assert [n["identifier"] for n in workflow["workflow_nodes"]] == list(nodes)
        for node in workflow["workflow_nodes"]:
            assert set(node) <= WORKFLOW_NODE_OPTIONS, node["identifier"]
            assert node.get("extra_data", {}) == nodes[node["identifier"]]["extra_data"]
            for kind in ("success_nodes", "failure_nodes"):
                assert [t["identifier"] for t in node["related"][kind]] == edges(node["identifier"], kind)
            ujt = node["unified_job_template"]
            if ujt["type"] == "workflow_approval":
                assert ujt["name"] == nodes[node["identifier"]]["related"]["create_approval_template"]["name"]
            else:
                assert ujt["name"] == nodes[node["identifier"]]["unified_job_template"]["name"]
    (schedule,) = by_module["schedule"]
    assert schedule["rrule"] == ASSETS["schedules"][0]["rrule"]
    assert schedule["extra_data"] == ASSETS["schedules"][0]["extra_data"]


def test_configure_playbook_passes_syntax_check_with_awx_awx():
    """With the real awx.awx: scripts/bootstrap unpacks it into .build/awx from the Ansible community package (Galaxy
    cannot be reached from the build machines; it is not a dependency of the collection), or FLEETPATCH_AWX_COLLECTIONS
    names another collections path that holds it."""
    path = os.environ.get("FLEETPATCH_AWX_COLLECTIONS") or str(REPO / ".build" / "awx")
    assert (Path(path) / "ansible_collections" / "awx" / "awx" / "MANIFEST.json").is_file(), f"awx.awx is not in {path}: run scripts/bootstrap"
    result = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "--syntax-check",
                             str(AWX / "configure.yml")], cwd=REPO, capture_output=True, text=True, check=False,
                            env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": f"{path}:{REPO / '.build' / 'lint'}"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_project_playbooks_pass_syntax_check_with_the_collection(tmp_path):
    """What a job of each template runs: its project playbook, importing the collection's playbook by FQCN."""
    collections = tmp_path / "ansible_collections" / "fleetpatch"
    collections.mkdir(parents=True)
    (collections / "rollout").symlink_to(REPO)
    playbooks = sorted(str(REPO / jt["playbook"]) for jt in TEMPLATES.values())
    result = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "--syntax-check", *playbooks],
                            cwd=tmp_path, capture_output=True, text=True, check=False,
                            env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
