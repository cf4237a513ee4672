"""Tag rules, states, codes and timing from PROTOCOL.md."""

import pytest

from arkrelay_core.protocol import (
    ENCRYPTED_KINDS,
    EPHEMERAL_KINDS,
    FINAL_STATES,
    ErrorCode,
    Kind,
    SessionState,
    batch_confirmation_d,
    can_transition,
    challenge_d,
    confirmation_d,
    expiration_tag,
    failure_d,
    is_stale,
    l1_commitment_d,
    lift_confirmation_d,
    notification_d,
    parse_session_state,
    service_response_d,
    session_id_for,
)


def test_kinds_and_their_classes():
    assert [int(k) for k in Kind] == [31500, 31501, 31502, 31510, 31511, 31512, 31340, 31341, 31342]
    assert all(30000 <= k <= 39999 for k in Kind)  # addressable: every one needs a d tag
    assert {Kind.INTENT, Kind.CONFIRMATION, Kind.L1_COMMITMENT}.isdisjoint(ENCRYPTED_KINDS)
    assert {31501, 31502, 31511, 31341} == set(EPHEMERAL_KINDS)


def test_d_tags():
    intent_id = "0123456789abcdef" * 4
    sid = session_id_for(intent_id)
    assert sid == "sess_0123456789abcdef01234567"
    assert challenge_d(sid, 3) == f"{sid}:3"
    assert confirmation_d("act") == "act"
    assert batch_confirmation_d("b1") == "batch:b1"
    assert lift_confirmation_d("ph") == "lift:ph"
    assert failure_d("act") == "fail:act"
    assert service_response_d("ev") == "resp:ev"
    assert notification_d("u") == "note:u"
    assert l1_commitment_d("s1") == "l1:s1"
    assert expiration_tag(1000) == ["expiration", "4600"]


def test_error_codes_are_the_published_table():
    assert {int(c) for c in ErrorCode} == {
        1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008,
        2001, 2002, 2003, 2004, 2005,
        3001, 3002, 3003, 3004, 3005,
        4001,
        5001, 5002, 5003, 5004, 5005,
        9001,
    }  # fmt: skip
    assert ErrorCode(1004).message == "replayed action_id"
    assert not ErrorCode.INVALID_SIGNATURE.answered
    assert all(c.answered for c in ErrorCode if c != 1001)


def test_state_aliases_and_transitions():
    assert parse_session_state("pending") is SessionState.INTENT_RECEIVED
    assert parse_session_state("awaiting_signature") is SessionState.ARK_TX_PREPARED
    assert parse_session_state("active") is SessionState.ARK_TX_PREPARED
    assert parse_session_state("response_received") is SessionState.SIGNATURES_COLLECTED
    assert parse_session_state("completed") is SessionState.COMPLETED
    with pytest.raises(ValueError, match="unknown session state"):
        parse_session_state("done")
    S = SessionState
    assert can_transition(S.INTENT_RECEIVED, S.ARK_TX_PREPARED)
    assert can_transition(S.ARK_TX_PREPARED, S.SIGNATURES_COLLECTED)  # sign_payload: no checkpoint
    assert not can_transition(S.ARK_EXECUTED, S.ARK_TX_PREPARED)
    for final in FINAL_STATES:
        assert not can_transition(final, S.FAILED)
        assert not can_transition(final, S.COMPLETED)
    for state in set(S) - FINAL_STATES:
        assert can_transition(state, S.EXPIRED)
        assert can_transition(state, S.CANCELLED)


def test_staleness_window():
    now = 1_000_000
    assert not is_stale(now, now)
    assert not is_stale(now + 600, now)
    assert is_stale(now + 601, now)
    assert not is_stale(now - 3600, now)
    assert is_stale(now - 3601, now)
    assert not is_stale(now - 7000, now, window=7200)
