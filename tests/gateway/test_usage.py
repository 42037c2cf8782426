"""What the gateway meters when a backend gives no usage: a relayed SSE stream read the same however it is cut
into chunks, and a prompt counted in any of its shapes."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from zhisuan.gateway.usage import StreamCounter


def stream(n: int, usage: bool) -> bytes:
    events = [b"data: " + json.dumps({"choices": [{"delta": {"content": f"w{i}"}}]}).encode() for i in range(n)]
    if usage:
        events.append(b"data: " + json.dumps({"choices": [], "usage": {"prompt_tokens": 3,
                                                                       "completion_tokens": n}}).encode())
    return b"\n\n".join([*events, b"data: [DONE]", b""])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 30), st.booleans(), st.lists(st.integers(1, 40), max_size=60))
def test_any_chunking_reads_the_same(n, usage, cuts):
    whole, parts = StreamCounter(), StreamCounter()
    data = stream(n, usage)
    whole.feed(data)
    at = 0
    for size in cuts:
        parts.feed(data[at:at + size])
        at += size
    parts.feed(data[at:])
    assert (parts.chunks, parts.usage) == (whole.chunks, whole.usage) and whole.chunks == n
    assert (whole.usage is not None) == usage


def test_a_separator_cut_between_two_chunks_still_ends_its_event():
    c = StreamCounter()
    c.feed(b'data: {"choices": [{"delta": {"content": "a"}}]}\n')
    c.feed(b'\ndata: {"choices": [{"delta": {"content": "b"}}]}\n\n')
    assert c.chunks == 2 and not c.buffer


def test_empty_events_and_an_endless_one_are_bounded():
    c = StreamCounter()
    c.feed(b"\n\n" * 500_000)  # a replica that streams only separators
    assert c.chunks == 0 and not c.buffer
    c.feed(b"x" * (StreamCounter.MAX_EVENT + 1))  # an event that never ends is dropped, not kept
    assert len(c.buffer) == 0


def test_a_prompt_in_any_shape_is_counted():
    """OpenAI's list form of content counted 0 prompt tokens when the backend gave no usage."""
    from zhisuan.gateway.usage import prompt_estimate

    text = "x" * 400
    plain = prompt_estimate({"messages": [{"role": "user", "content": text}]})
    parts = prompt_estimate({"messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]})
    image = prompt_estimate({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 400}}]}]})
    assert plain == parts == 100 and image > 100
    assert prompt_estimate({"prompt": ["ab" * 200]}) == 100
    deep: list = []
    for _ in range(100_000):  # nested past Python's own recursion limit
        deep = [deep]
    assert prompt_estimate({"messages": deep}) == 0
    assert prompt_estimate({"messages": True}) == 1  # malformed: counted, not a crash
