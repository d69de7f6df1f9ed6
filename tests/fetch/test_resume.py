"""The pure resume rules: what to ask a server for, and what its answer means."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webmodels.fetch.resume import (
    Action,
    ResumeState,
    classify,
    remember,
    request_headers,
)

URL = "https://models.example/model.onnx"
MIRROR = "https://mirror.example/model.onnx"
STRONG = '"abc123"'
WEAK = 'W/"abc123"'
DATE = "Tue, 14 Nov 2023 22:13:20 GMT"


def fresh(headers: dict[str, str], *, url: str = URL, total: int | None = 1000) -> ResumeState:
    """The state saved before a 200 body from `url` with `headers`."""
    return remember(ResumeState(), url=url, headers=headers, total=total)


# --- request_headers: resume only when a changed file cannot be spliced on ---------------


def test_resumes_with_strong_etag_on_same_url() -> None:
    state = fresh({"ETag": STRONG, "Last-Modified": DATE})

    assert request_headers(state, url=URL, offset=500) == {
        "Range": "bytes=500-",
        "If-Range": STRONG,  # preferred over the date: exact, not second-granular
    }


def test_resumes_with_last_modified_when_no_etag() -> None:
    state = fresh({"Last-Modified": DATE})

    assert request_headers(state, url=URL, offset=7) == {"Range": "bytes=7-", "If-Range": DATE}


def test_weak_etag_is_dropped_and_last_modified_used() -> None:
    state = fresh({"ETag": WEAK, "Last-Modified": DATE})

    assert state.etag is None
    assert request_headers(state, url=URL, offset=7)["If-Range"] == DATE


def test_weak_etag_alone_means_no_resume() -> None:
    state = fresh({"ETag": WEAK})

    assert request_headers(state, url=URL, offset=7) == {}


def test_weak_etag_from_an_old_sidecar_is_never_sent() -> None:
    # RFC 9110 §13.1.5: a client MUST NOT send a weak entity tag in If-Range.
    state = ResumeState.from_json({"url": URL, "etag": WEAK, "last_modified": DATE})

    headers = request_headers(state, url=URL, offset=7)

    assert WEAK not in headers.values()
    assert headers.get("If-Range") == DATE


def test_no_validator_means_no_resume() -> None:
    assert request_headers(fresh({}), url=URL, offset=500) == {}


def test_other_url_starts_over() -> None:
    state = fresh({"ETag": STRONG})

    assert request_headers(state, url=MIRROR, offset=500) == {}


def test_nothing_on_disk_asks_for_the_whole_file() -> None:
    state = fresh({"ETag": STRONG})

    assert request_headers(state, url=URL, offset=0) == {}


def test_empty_state_asks_for_the_whole_file() -> None:
    assert request_headers(ResumeState(), url=URL, offset=500) == {}


def test_remember_replaces_the_previous_validators() -> None:
    old = fresh({"ETag": STRONG, "Last-Modified": DATE})

    new = remember(old, url=MIRROR, headers={}, total=None)

    assert new == ResumeState(url=MIRROR)


# --- classify: what a reply means for the bytes on disk --------------------------------


def test_200_to_a_range_request_starts_over() -> None:
    reply = classify(200, {"Content-Length": "1000"}, offset=500, ranged=True)

    assert reply.action is Action.RESTART
    assert reply.total == 1000


def test_200_without_length_starts_over_with_unknown_total() -> None:
    reply = classify(200, {"Content-Length": "lots"}, offset=0, ranged=False)

    assert (reply.action, reply.total) == (Action.RESTART, None)


def test_206_that_continues_where_we_stopped_is_appended() -> None:
    reply = classify(206, {"Content-Range": "bytes 500-999/1000"}, offset=500, ranged=True)

    assert (reply.action, reply.total) == (Action.APPEND, 1000)


def test_206_with_unknown_total_is_appended() -> None:
    reply = classify(206, {"Content-Range": "bytes 500-999/*"}, offset=500, ranged=True)

    assert (reply.action, reply.total) == (Action.APPEND, None)


def test_206_starting_elsewhere_is_not_spliced() -> None:
    reply = classify(206, {"Content-Range": "bytes 501-999/1000"}, offset=500, ranged=True)

    assert reply.action is Action.RETRY_FROM_ZERO
    assert "501" in reply.reason


@pytest.mark.parametrize(
    "content_range",
    [
        None,
        "",
        "bytes",
        "bytes 500-/1000",
        "bytes */1000",
        "items 500-999/1000",
        "bytes 500-999/1000, 0-10",
        "bytes 500-999",
        "bytes -500-999/1000",
        "bytes 500-400/1000",  # last before first (RFC 9110 §14.4: invalid)
        "bytes 500-1000/1000",  # last byte past the end
        "bytes 500-999/600",  # complete length not past the last byte
    ],
)
def test_206_with_malformed_content_range_is_not_spliced(content_range: str | None) -> None:
    headers = {} if content_range is None else {"Content-Range": content_range}

    reply = classify(206, headers, offset=500, ranged=True)

    assert reply.action is Action.RETRY_FROM_ZERO


def test_206_to_a_request_without_range_is_not_trusted() -> None:
    reply = classify(206, {"Content-Range": "bytes 0-999/1000"}, offset=0, ranged=False)

    assert reply.action is Action.RETRY_FROM_ZERO


def test_416_starts_over() -> None:
    reply = classify(416, {"Content-Range": "bytes */1000"}, offset=1000, ranged=True)

    assert reply.action is Action.RETRY_FROM_ZERO


@pytest.mark.parametrize("status", [403, 404, 410, 401, 400])
def test_client_errors_give_up_on_the_mirror(status: int) -> None:
    reply = classify(status, {}, offset=0, ranged=False)

    assert reply.action is Action.FAIL_MIRROR
    assert str(status) in reply.reason


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408])
def test_passing_errors_are_retried(status: int) -> None:
    reply = classify(status, {}, offset=500, ranged=True)

    assert reply.action is Action.RETRY
    assert str(status) in reply.reason


# --- Content-Range parsing for any offset and total (hypothesis) ------------------------

SIZES = st.integers(min_value=1, max_value=2**63)
# Pure and fast: an example that is slow only because the machine is busy is no failure.
NO_DEADLINE = settings(deadline=None)


@NO_DEADLINE
@given(data=st.data(), total=SIZES)
def test_any_matching_content_range_is_appended(data: st.DataObject, total: int) -> None:
    offset = data.draw(st.integers(min_value=0, max_value=total - 1))
    last = data.draw(st.integers(min_value=offset, max_value=total - 1))

    reply = classify(
        206, {"Content-Range": f"bytes {offset}-{last}/{total}"}, offset=offset, ranged=True
    )

    assert (reply.action, reply.total) == (Action.APPEND, total)


@NO_DEADLINE
@given(data=st.data(), total=SIZES)
def test_any_content_range_starting_elsewhere_restarts(data: st.DataObject, total: int) -> None:
    offset = data.draw(st.integers(min_value=0, max_value=total - 1))
    start = data.draw(st.integers(min_value=0, max_value=total - 1).filter(lambda s: s != offset))

    reply = classify(
        206, {"Content-Range": f"bytes {start}-{total - 1}/{total}"}, offset=offset, ranged=True
    )

    assert reply.action is Action.RETRY_FROM_ZERO


@NO_DEADLINE
@given(offset=st.integers(min_value=0, max_value=2**63), length=st.integers(1, 2**63))
def test_any_content_range_with_unknown_total_is_appended(offset: int, length: int) -> None:
    content_range = f"bytes {offset}-{offset + length - 1}/*"

    reply = classify(206, {"Content-Range": content_range}, offset=offset, ranged=True)

    assert (reply.action, reply.total) == (Action.APPEND, None)


@NO_DEADLINE
@given(offset=st.integers(min_value=0, max_value=2**63), text=st.text(max_size=40))
def test_any_text_as_content_range_never_crashes(offset: int, text: str) -> None:
    reply = classify(206, {"Content-Range": text}, offset=offset, ranged=True)

    assert reply.action in (Action.APPEND, Action.RETRY_FROM_ZERO)
    if reply.action is Action.APPEND:
        assert text.strip().lower().startswith("bytes")


# --- the sidecar's JSON ---------------------------------------------------------------


def test_state_round_trips_through_json() -> None:
    state = ResumeState(url=URL, etag=STRONG, last_modified=DATE, total=123_456_789_012)

    assert ResumeState.from_json(json.loads(json.dumps(state.to_json()))) == state


def test_empty_state_round_trips_through_json() -> None:
    assert ResumeState.from_json(json.loads(json.dumps(ResumeState().to_json()))) == ResumeState()


@pytest.mark.parametrize(
    "garbage",
    [
        {},
        {"url": 5, "etag": ["x"], "last_modified": {"a": 1}, "total": "12"},
        {"total": True},
        {"total": 1.5},
        {"total": None, "url": None},
        {"unknown": "key"},
    ],
)
def test_garbage_in_the_sidecar_is_ignored_field_by_field(garbage: dict[str, object]) -> None:
    state = ResumeState.from_json(garbage)

    assert state == ResumeState()
    assert request_headers(state, url=URL, offset=500) == {}


def test_good_fields_survive_next_to_bad_ones() -> None:
    state = ResumeState.from_json({"url": URL, "etag": 7, "last_modified": DATE, "total": "x"})

    assert state == ResumeState(url=URL, last_modified=DATE)


@NO_DEADLINE
@given(
    st.dictionaries(
        st.sampled_from(["url", "etag", "last_modified", "total", "other"]),
        st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.lists(st.none()),
    )
)
def test_any_json_object_gives_a_usable_state(value: dict[str, object]) -> None:
    state = ResumeState.from_json(value)

    assert all(isinstance(v, str | None) for v in (state.url, state.etag, state.last_modified))
    assert state.total is None or type(state.total) is int
    assert ResumeState.from_json(json.loads(json.dumps(state.to_json()))) == state
