"""State names as people and events write them, read by the one parser (StateType.parse)
that the API, the CLI and the SDK share."""

from __future__ import annotations

import pytest

from services.core.errors import InvalidInput
from services.core.states import StateType


@pytest.mark.parametrize(("text", "state"), [
    ("Failed", StateType.FAILED),
    ("FAILED", StateType.FAILED),
    ("awaitingretry", StateType.AWAITING_RETRY),
    ("flow-run.Completed", StateType.COMPLETED),
    ("task-run.Crashed", StateType.CRASHED),
    ("flow-run.cancelled", StateType.CANCELLED),
])
def test_a_state_is_read_in_any_case_and_from_a_state_event(text, state):
    assert StateType.parse(text) is state


@pytest.mark.parametrize("text", ["Done", "", "flow-run.", "deployment.Failed", "Failed "])
def test_a_name_that_is_no_state_is_refused_with_the_list_of_states(text):
    with pytest.raises(InvalidInput) as raised:
        StateType.parse(text)
    assert str(raised.value) == (f"'{text}' is not a state; one of Scheduled, Pending, Running, "
                                 "Completed, Failed, Crashed, Cancelling, Cancelled, "
                                 "AwaitingRetry, Retrying, Late, Paused, Resuming")


def test_every_state_reads_back_as_itself():
    assert [StateType.parse(state.value) for state in StateType] == list(StateType)
