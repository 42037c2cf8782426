"""What the gateway meters when a backend gives no usage: a relayed SSE stream read the same however it is cut
into chunks, and a prompt counted in any of its shapes."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from zhisuan.gateway.usage import StreamCounter, Tokens


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


TEXT = st.lists(st.sampled_from(['a', '"', "\\", "{", "}", "[", "]", ":", " ", "é", "\n", "usage", "x" * 70,
                                 '"usage": {"prompt_tokens": 999}']), max_size=12).map("".join)
JSON = st.recursive(st.none() | st.integers() | TEXT, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["usage", "a", "b"]), inner, max_size=3), max_leaves=12)
USAGE = st.fixed_dictionaries({"prompt_tokens": st.integers(0, 999), "completion_tokens": st.integers(0, 999)},
                              optional={"details": JSON})


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["id", "choices", "data", "model"]), JSON, max_size=4), st.none() | USAGE,
       st.integers(0, 4), st.booleans(), st.lists(st.integers(1, 50), max_size=80))
def test_a_large_answer_passing_through_is_metered_with_its_top_level_usage(rest, usage, at, ascii_only, cuts):
    """However the answer is cut into chunks, wherever its `usage` is among its keys, whatever its text quotes:
    the usage found is json.loads's, and text (or a nested object) that says `"usage"` is not taken for it."""
    from zhisuan.gateway.usage import BodyUsage, from_body

    items = list(rest.items())
    if usage is not None:
        items.insert(min(at, len(items)), ("usage", usage))
    data = json.dumps(dict(items), ensure_ascii=ascii_only).encode()
    body = BodyUsage()
    for size in cuts:
        body.feed(data[:size])
        data = data[size:]
    body.feed(data)
    want = from_body(dict(items))
    assert body.usage == want and body.tokens({"prompt": "abcd"}) == (want or Tokens(1, 0, measured=False))


def test_only_the_outermost_usage_counts_however_the_answer_is_cut():
    from zhisuan.gateway.usage import BodyUsage

    answer = {"choices": [{"usage": {"prompt_tokens": 1}, "text": "x" * 100 + '"[{ "usage": {"prompt_tokens": 9}'}],
              "usage": {"prompt_tokens": 5, "completion_tokens": 7}}
    data = json.dumps(answer).encode()
    for cut in range(len(data)):  # at every byte: inside a key, after an escaping backslash, in a long string
        for middle in (0, 1, 7):
            body = BodyUsage()
            for chunk in (data[:cut], data[cut:cut + middle], data[cut + middle:]):
                body.feed(chunk)
            assert body.usage == Tokens(5, 7), (cut, middle)


def test_what_a_large_answer_costs_to_meter_is_bounded():
    from zhisuan.gateway.usage import BodyUsage

    usage = b'"usage": {"prompt_tokens": 5, "completion_tokens": 7}}'
    long = BodyUsage()  # a long string cut into chunks, its usage after it
    for chunk in (b'{"data": "' + b"\\\\" * 100_000, b"x" * 100_000 + b'", ', usage):
        long.feed(chunk)
    assert long.usage == Tokens(5, 7)
    many = BodyUsage()  # more steps than it may take: it gives up, and the tokens are estimated
    many.feed(b'{"data": ' + b"[" * (BodyUsage.MAX_STEPS + 1) + b"], " + usage)
    assert many.done and many.usage is None and not many.tokens({}).measured
    big = BodyUsage()  # a usage too large to keep
    big.feed(b'{"usage": {"prompt_tokens": 5, "pad": "' + b"x" * BodyUsage.MAX_USAGE + b'"}}')
    assert big.done and big.usage is None and big.capture is None
