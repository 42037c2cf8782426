"""The gateway's token meter in the store: flushes from several API workers at once add up, none lost."""

import threading

from zhisuan.store import connect, migrate
from zhisuan.store.services import TOKEN_FIELDS, TokenUsageStore


def test_concurrent_flushes_into_one_hour_lose_no_count(db_url):
    engine = connect(db_url)
    migrate(engine)
    meters = [TokenUsageStore(engine) for _ in range(6)]  # as API workers each flush their own counters
    rounds, errors = 25, []
    start = threading.Barrier(len(meters))

    def flush(meter):
        try:
            start.wait()
            for _ in range(rounds):
                meter.add([("acme", "qwen", {"requests": 1, "prompt_tokens": 7, "completion_tokens": 3})], 7200.5)
        except Exception as e:  # the test reports what a worker hit
            errors.append(e)

    workers = [threading.Thread(target=flush, args=(m,)) for m in meters]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    got = meters[0].totals("acme", 0.0, 10_800.0)["qwen"]
    n = rounds * len(meters)
    assert got == {**dict.fromkeys(TOKEN_FIELDS, 0), "requests": n, "prompt_tokens": 7 * n, "completion_tokens": 3 * n}
    engine.dispose()
