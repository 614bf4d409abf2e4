"""The two-person rule: who may approve and implement a patch, with the exact refusals."""

from __future__ import annotations

import pytest

from ansible_collections.fleetpatch.rollout.plugins.plugin_utils._approvals import ApprovalError, check_approval


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("alice", "bob"), {"approved_by": "alice", "implemented_by": "bob", "urgency": "routine", "two_person": True}),
        ((" alice ", "bob\t", "urgent"), {"approved_by": "alice", "implemented_by": "bob", "urgency": "urgent", "two_person": True}),
        # an emergency with two people is fine, and a justification given is recorded anyway
        (("alice", "bob", "emergency", " CVE exploited in the wild "),
         {"approved_by": "alice", "implemented_by": "bob", "urgency": "emergency", "two_person": True, "justification": "CVE exploited in the wild"}),
        # one person, emergency, justified: allowed and recorded as such
        (("alice", "Alice ", "emergency", "on-call alone, exploit in the wild"),
         {"approved_by": "alice", "implemented_by": "Alice", "urgency": "emergency", "two_person": False,
          "justification": "on-call alone, exploit in the wild"}),
    ],
)
def test_accepted(args, expected):
    assert check_approval(*args) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((None, "bob"), "approved_by is required: name the person"),
        (("alice", None), "implemented_by is required: name the person"),
        (("", "bob"), "approved_by must not be empty, got ''"),
        (("alice", "   "), "implemented_by must not be empty, got '   '"),
        ((["alice"], "bob"), "approved_by must be a person's name (a string), got list ['alice']"),
        (("alice", 7), "implemented_by must be a person's name (a string), got int 7"),
        (("alice", "bob", "soon"), "urgency must be one of routine, urgent, emergency, got 'soon'"),
        (("alice", "bob", "routine", ["why"]), "justification must be text, got list ['why']"),
        (("alice", "alice"),
         "approved_by 'alice' and implemented_by 'alice' are the same person: the two-person rule needs someone else to approve a patch of urgency 'routine'"),
        # trimmed and case-insensitive: still one person
        (("Alice", " alice ", "urgent"),
         "approved_by 'Alice' and implemented_by ' alice ' are the same person: the two-person rule needs someone else to approve a patch of urgency 'urgent'"),
        (("ALICE", "alice", "emergency"),
         "approved_by 'ALICE' and implemented_by 'alice' are the same person: an emergency patch may skip the two-person rule only with a "
         "written justification, got None"),
        (("alice", "alice", "emergency", "  \n"),
         "approved_by 'alice' and implemented_by 'alice' are the same person: an emergency patch may skip the two-person rule only with a "
         "written justification, got '  \\n'"),
    ],
)
def test_refused(args, message):
    with pytest.raises(ApprovalError) as raised:
        check_approval(*args)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("implemented_by", "expected"),
    [(None, "carol"), (" Carol ", "carol"), ("carol", "carol")],
)
def test_under_awx_the_launching_user_implements(implemented_by, expected):
    approval = check_approval("alice", implemented_by, platform_user="carol")
    assert approval == {"approved_by": "alice", "implemented_by": expected, "urgency": "routine", "two_person": True}


@pytest.mark.parametrize(
    ("args", "platform_user", "message"),
    [
        (("alice", "mallory"), "carol",
         "implemented_by 'mallory' is not the AWX user 'carol' who launched this job: under AWX the implementer is whoever launched the job; "
         "leave implemented_by out, or let 'mallory' launch it"),
        (("alice", ["carol"]), "carol",
         "implemented_by ['carol'] is not the AWX user 'carol' who launched this job: under AWX the implementer is whoever launched the job; "
         "leave implemented_by out, or let ['carol'] launch it"),
        (("Carol", None), "carol",
         "approved_by 'Carol' and implemented_by 'carol' are the same person: the two-person rule needs someone else to approve a patch of "
         "urgency 'routine'"),
        (("alice", None), "  ", "awx_user_name must not be empty, got '  '"),
    ],
)
def test_under_awx_refused(args, platform_user, message):
    with pytest.raises(ApprovalError) as raised:
        check_approval(*args, platform_user=platform_user)
    assert str(raised.value) == message
