"""Projects' funds in the live loop with the real local engine: a submit holds its expected cost or is refused
with the figures, a project that runs out of money mid-run has its queued jobs held (and, if it chose, its
running ones stopped) until a top-up, and the ledger balances and reconciles with the invoice to the fen."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from zhisuan.control import ControlLoop
from zhisuan.control.errors import PaymentRequired
from zhisuan.control.service import Service
from zhisuan.engines import LocalEngine
from zhisuan.metering.invoice import local_month
from zhisuan.model import JobState, parse_network
from zhisuan.store import JobStore, Principal, connect, migrate

ACME = Principal("acme", False)
ADMIN = Principal("ops", True)
NETWORK = """
name: one
tenants: [{{name: acme}}]
control: {{grace: 1s{hook}}}
centers:
  - name: here
    region: east
    pue: 1.2
    carbon_kg_per_kwh: 0.5
    pools:
      - {{name: gpu, accelerator: a100, nodes: 1, devices_per_node: 2, price_per_device_hour: 3600,
         device_ids: ["g0", "g1"]}}
"""


def job(name, devices, run, limit=None):
    return (f"name: {name}\ntenant: acme\nresources: {{accelerators: a100:{devices}}}\n"
            + (f"constraints: {{time_limit: {limit}}}\n" if limit else "") + f"run: {run!r}\n")


@pytest.fixture
def world(tmp_path):
    made = []

    def build(hook=""):
        network = parse_network(NETWORK.format(hook=hook))
        engine = connect(f"sqlite:///{tmp_path / 'z.db'}")
        migrate(engine)
        store = JobStore(engine)
        loop = ControlLoop(store, network, LocalEngine(tmp_path / "runs", grace=0.5))
        svc = Service(store, network, loop)
        made.append((store, svc))
        return store, loop, svc

    yield build
    for store, svc in made:
        for rec in store.find():
            if not rec.state.terminal:
                svc.cancel(rec.id, ADMIN, time.time())


def step_until(loop, store, job_id, states, limit=20.0, also=lambda: True):
    end = time.time() + limit
    while time.time() < end:
        loop.step(time.time())
        rec = store.get(job_id)
        if rec.state in states and also():
            return rec
        time.sleep(0.05)
    raise AssertionError((store.get(job_id).state, store.get(job_id).wait_reason))


def held(store, job_id):
    return "out of funds" in (store.get(job_id).wait_reason or "")


def test_a_submit_holds_its_expected_cost_or_is_refused_with_the_figures(world):
    store, _, svc = world()
    svc.funds.configure(ADMIN, "acme", time.time(), True, False, None)
    with pytest.raises(PaymentRequired, match=r"expected to cost up to ¥3,600\.00.*¥0\.00 free"):
        svc.submit(job("a", 1, "true", limit=3600), ACME, time.time())
    assert store.find() == []  # nothing half-written
    svc.funds.topup(ADMIN, "acme", 5000, "bank transfer 42", time.time())
    a = svc.submit(job("a", 1, "true", limit=3600), ACME, time.time())
    [acct] = svc.funds.show(ACME, time.time())
    assert (acct["held_fen"], acct["available_fen"]) == (360_000, 140_000)
    with pytest.raises(PaymentRequired, match=r"¥1,400\.00 free"):
        svc.submit(job("b", 1, "true", limit=3600), ACME, time.time())
    svc.cancel(a.id, ACME, time.time())  # a pending job cancelled: its hold goes back, nothing charged
    [acct] = svc.funds.show(ACME, time.time())
    assert (acct["held_fen"], acct["available_fen"]) == (0, 500_000)
    assert svc.funds.ledger.trial() == []


def test_a_budget_below_what_is_committed_is_refused_and_bad_amounts_name_the_field(world):
    from zhisuan.model import SpecError

    _, _, svc = world()
    svc.funds.configure(ADMIN, "acme", time.time(), None, 1_000_000, None)  # ¥10,000 a month
    svc.submit(job("a", 2, "true", limit=3600), ACME, time.time())  # holds ¥7,200
    with pytest.raises(SpecError, match=r"budget_yuan.*below what project acme already committed"):
        svc.funds.configure(ADMIN, "acme", time.time(), None, 500_000, None)
    for bad in (-5, 0, 0.001, float("nan"), float("inf"), 1e12, 1.7e308):
        with pytest.raises(SpecError, match="amount_yuan"):
            svc.funds.topup(ADMIN, "acme", bad, "", time.time())
    with pytest.raises(PermissionError):
        svc.funds.topup(ACME, "acme", 100, "", time.time())
    [acct] = svc.funds.show(ADMIN, time.time())
    assert acct["budget_fen"] == 1_000_000 and acct["held_fen"] == 720_000 and acct["available_fen"] == 0
    assert svc.funds.ledger.trial() == []


def test_racing_top_ups_all_count(world):
    _, _, svc = world()
    threads = [threading.Thread(target=svc.funds.topup, args=(ADMIN, "acme", 1.01, f"t{i}", time.time()))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [acct] = svc.funds.show(ADMIN, time.time())
    assert acct["available_fen"] == 808 and svc.funds.ledger.paid() == {"acme": 808}
    assert svc.funds.ledger.trial() == []


@pytest.fixture
def webhook():
    told = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            import json

            told.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/funds", told
    server.shutdown()
    server.server_close()


def test_a_project_out_of_money_mid_run_is_held_then_resumed_by_a_top_up(world, webhook):
    url, told = webhook
    store, loop, svc = world(hook=f", funds_webhook: '{url}'")
    # a job of acme runs before acme is funded (it holds nothing); then acme becomes prepaid, and a second job
    # that needs both devices is admitted, holding its expected cost and leaving ¥5: the first job's run
    # (¥1 a second) spends that within seconds
    a = svc.submit(job("a", 1, "sleep 600"), ACME, time.time()).id
    step_until(loop, store, a, {JobState.RUNNING})
    svc.funds.configure(ADMIN, "acme", time.time(), True, False, "hold")
    hold = svc.funds.hold_for(svc.validate(job("b", 2, "echo b ran", limit=600), ACME), time.time())
    svc.funds.topup(ADMIN, "acme", hold / 100 + 5, "first payment", time.time())
    b = svc.submit(job("b", 2, "echo b ran", limit=600), ACME, time.time()).id
    rec = step_until(loop, store, b, {JobState.PENDING}, also=lambda: held(store, b))
    assert "held: project acme is out of funds" in rec.wait_reason and "a top-up" in rec.wait_reason
    assert store.get(a).state is JobState.RUNNING  # at_zero: hold — running jobs go on
    svc.cancel(a, ACME, time.time())  # the devices are free now, but acme owes money: b stays held
    for _ in range(10):
        loop.step(time.time())
        time.sleep(0.2)
    assert store.get(b).state is JobState.PENDING and "out of funds" in store.get(b).wait_reason
    [acct] = svc.funds.show(ACME, time.time())
    assert acct["out_of_funds"] and acct["available_fen"] < 0
    alerts = svc.overview(ACME, time.time() + 10)["alerts"]  # the console says so
    assert {"kind": "funds", "subject": "acme", "message": "project acme is out of funds: its jobs are held"} in alerts
    svc.funds.topup(ADMIN, "acme", 100, "second payment", time.time())
    rec = step_until(loop, store, b, {JobState.SUCCEEDED})
    assert "b ran" in svc.logs(b, ACME)
    [acct] = svc.funds.show(ACME, time.time())
    assert acct["held_fen"] == 0 and not acct["out_of_funds"]
    assert svc.funds.ledger.trial() == []
    # the ledger's charges are the invoice, job by job, to the fen
    [rec] = svc.funds.reconcile_month(local_month(time.time()), ADMIN, time.time())
    assert rec["reconciles"] and rec["invoice_fen"] == rec["ledger_fen"] > 0 and rec["differences"] == {}
    legs = svc.funds.ledger.entries("acme")
    assert {x["kind"] for x in legs} == {"topup", "hold", "charge", "release"}
    # alerts: the audit trail has the crossing of 100%, and the webhook was told
    events = [e for e in svc.funds.audit.search(action="funds.alert")]
    assert any("100%" in e.detail for e in events)
    end = time.time() + 5
    while time.time() < end and not any(t["level_pct"] == 100 for t in told):
        time.sleep(0.1)
    assert any(t["tenant"] == "acme" and t["level_pct"] == 100 for t in told)


def test_a_project_that_chose_stop_has_its_running_jobs_stopped_and_requeued(world):
    store, loop, svc = world()
    a = svc.submit(job("a", 1, "sleep 600"), ACME, time.time()).id
    step_until(loop, store, a, {JobState.RUNNING})
    svc.funds.configure(ADMIN, "acme", time.time(), True, False, "stop")
    svc.funds.topup(ADMIN, "acme", 3, "", time.time())  # three seconds of the running job
    rec = step_until(loop, store, a, {JobState.PENDING}, also=lambda: held(store, a))
    states = [t.to_state.value for t in store.transitions(a)]
    assert states[-2:] == ["preempted", "pending"] and rec.attempts == 1
    svc.funds.topup(ADMIN, "acme", 7200, "", time.time())
    step_until(loop, store, a, {JobState.RUNNING})
    svc.cancel(a, ACME, time.time())
    assert svc.funds.ledger.trial() == []


def test_storage_and_transfers_draw_on_the_same_balance(world):
    from zhisuan.control.funds import DATA_EVERY
    from zhisuan.store.ledger import month_of

    _, _, svc = world()
    svc.funds.topup(ADMIN, "acme", 10, "", time.time())
    so_far = {"cny": (1.234, 0.5)}  # this month's storage and transfers as the invoice would price them
    svc.funds.data_bill = lambda tenant, month, now: so_far["cny"] if month == month_of(now) else (0.0, 0.0)
    now = time.time()
    svc.funds.check(now)
    assert svc.funds.ledger.data_charged("acme", month_of(now)) == 173
    so_far["cny"] = (2.0, 0.5)
    svc.funds.check(now + 1)  # not yet: charged every DATA_EVERY seconds
    assert svc.funds.ledger.data_charged("acme", month_of(now)) == 173
    svc.funds.check(now + DATA_EVERY)
    assert svc.funds.ledger.data_charged("acme", month_of(now)) == 250
    [acct] = svc.funds.show(ACME, now)
    assert acct["available_fen"] == 1000 - 250 and svc.funds.ledger.trial() == []
