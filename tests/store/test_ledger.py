"""The funds ledger on SQLite and PostgreSQL: racing submits cannot both take the last yuan, racing first
top-ups both count, a run is charged per month exactly its usage rounded to the fen however many runs it
took, and every transaction balances."""

import threading
import time

import pytest

from zhisuan.model import JobState, parse_job_spec
from zhisuan.store import JobStore, connect, migrate
from zhisuan.store.audit import By
from zhisuan.store.ledger import InsufficientFunds, Ledger, month_of

OPS = By("admin ops", "10.0.0.1")


def spec(name):
    return parse_job_spec(f"name: {name}\ntenant: acme\nresources: {{accelerators: 'a100:1'}}\nrun: 'true'\n")


@pytest.fixture
def world(db_url):
    engine = connect(db_url)
    migrate(engine)
    yield JobStore(engine), Ledger(engine)
    engine.dispose()


def test_racing_submits_cannot_both_take_the_last_yuan(world):
    store, ledger = world
    ledger.topup("acme", 40_000, time.time(), OPS)  # ¥400: four jobs holding ¥100 each
    barrier = threading.Barrier(10)
    outcome: list[str] = []

    def submit(k):
        barrier.wait()
        try:
            store.submit_record(spec(f"j{k}"), time.time(), "acme", hold_fen=10_000)
            outcome.append("stored")
        except InsufficientFunds as e:
            outcome.append(str(e))

    threads = [threading.Thread(target=submit, args=(k,)) for k in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcome.count("stored") == 4 and len(store.find()) == 4
    assert all("¥0.00 free" in o for o in outcome if o != "stored")
    acct = ledger.account("acme")
    assert (acct.available_fen, acct.held_fen) == (0, 40_000)
    assert ledger.trial() == []


def test_racing_first_top_ups_all_count(world):
    _, ledger = world
    barrier = threading.Barrier(6)

    def pay(k):
        barrier.wait()
        ledger.topup("acme", 100 + k, time.time(), OPS, f"payment {k}")

    threads = [threading.Thread(target=pay, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.account("acme").available_fen == sum(100 + k for k in range(6)) == ledger.paid()["acme"]
    assert ledger.trial() == []


def usage(job_id, start, cny):
    return {"job_id": job_id, "attempt": 1, "tenant": "acme", "center": "c", "pool": "p", "chip": "A100",
            "start": start, "end": start + 60, "devices": 1.0, "allocated_device_s": 60.0, "measured_device_s": 0.0,
            "busy_device_s": None, "busy_source": "unmeasured", "peak_memory_gib": None, "kwh": 0.1,
            "energy_model": "TDP", "kg_co2": 0.05, "tou_period": "flat", "tou_multiplier": 1.0, "cny": cny,
            "price_version": "v", "assumptions": "", "cpu_s": 0.0, "gib_s": 0.0}


def test_runs_are_charged_per_month_to_the_fen_and_the_hold_goes_at_the_end(world):
    store, ledger = world
    now = time.time()
    ledger.topup("acme", 100_000, now, OPS)
    job = store.submit_record(spec("j"), now, "acme", hold_fen=5_000).id
    for k, cny in enumerate((0.333, 0.333, 0.335)):  # three runs: rounded per run would be 33+33+34 = 100 fen
        store.transition(job, JobState.SCHEDULED, now)
        store.transition(job, JobState.RUNNING, now)
        store.transition(job, JobState.PREEMPTED, now, usage=[usage(job, now + k, cny)])
        store.transition(job, JobState.PENDING, now)
    store.transition(job, JobState.CANCELLED, now)
    month = month_of(now)
    assert ledger.charges("acme", month) == {job: round((0.333 + 0.333 + 0.335) * 100)}  # 100 fen, the invoice's
    acct = ledger.account("acme")
    assert (acct.available_fen, acct.held_fen, acct.spent_fen) == (100_000 - 100, 0, 100)
    assert ledger.trial() == []
    kinds = [e["kind"] for e in ledger.entries("acme")]
    assert kinds.count("hold") == 2 and kinds.count("release") == 2 and kinds.count("topup") == 2


def test_an_unfunded_project_pays_nothing_through_the_ledger(world):
    store, ledger = world
    now = time.time()
    job = store.submit_record(spec("j"), now, "acme", hold_fen=5_000).id  # not funded: nothing held
    store.transition(job, JobState.SCHEDULED, now)
    store.transition(job, JobState.RUNNING, now)
    store.transition(job, JobState.SUCCEEDED, now, usage=[usage(job, now, 1.0)])
    assert ledger.entries() == [] and ledger.account("acme") is None and ledger.trial() == []


def test_a_budget_only_project_that_turns_prepaid_does_not_pay_twice_for_what_was_invoiced(world):
    store, ledger = world
    now = time.time()
    ledger.configure("acme", now, OPS, budget_fen=100_000)
    job = store.submit_record(spec("j"), now, "acme", hold_fen=5_000).id
    store.transition(job, JobState.SCHEDULED, now)
    store.transition(job, JobState.RUNNING, now)
    store.transition(job, JobState.SUCCEEDED, now, usage=[usage(job, now, 30.0)])
    acct = ledger.account("acme")
    assert (acct.available_fen, acct.held_fen, acct.spent_fen) == (0, 0, 3_000)  # billed after the fact
    ledger.topup("acme", 1_000, now, OPS)
    assert ledger.account("acme").available_fen == 1_000  # the top-up is all there: nothing owed out of it
    assert ledger.charges("acme", month_of(now)) == {job: 3_000} and ledger.trial() == []


def test_a_retried_submit_with_its_key_gets_its_job_even_when_nothing_is_left_to_hold(world):
    store, ledger = world
    ledger.topup("acme", 1_000, time.time(), OPS)
    first = store.submit_record(spec("j"), time.time(), "acme", "key-1", hold_fen=1_000)
    again = store.submit_record(spec("j"), time.time(), "acme", "key-1", hold_fen=1_000)
    assert again.id == first.id and len(store.find()) == 1 and ledger.account("acme").held_fen == 1_000
    with pytest.raises(InsufficientFunds):
        store.submit_record(spec("k"), time.time(), "acme", "key-2", hold_fen=1_000)
