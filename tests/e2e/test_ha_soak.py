"""The soak against three replicas on the real PostgreSQL (the short version of `zhisuan bench soak
--replicas 3`): clients submit, cancel and call a model through the gateway while the leader is SIGKILLed
and SIGSTOPped, then every replica is restarted in turn. Nothing acknowledged is lost or stored twice, no
attempt runs twice, no run or model call is billed twice, and another replica leads within the lease."""

import signal

import pytest

from zhisuan.bench.hasoak import HaSoak
from zhisuan.engines.sandbox import isolating

pytestmark = pytest.mark.skipif(not isolating(), reason="job isolation needs root and setpriv (CI has both)")
LEASE = 2.0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_leaders_killed_and_frozen_then_a_rolling_restart_lose_nothing(db_url, tmp_path):
    soak = HaSoak(db_url, tmp_path, replicas=3, lease=LEASE)
    r, f = soak.run_ha(clients=4, disruptions=4, uptime=(1.0, 2.0), pause=0.2,
                       signals=[signal.SIGKILL, signal.SIGSTOP])
    assert len(f.seconds) == 4 and f.restarted == 3
    assert r.accepted > 20 and r.cancelled > 0 and r.answered > 0  # the load was mixed and real
    assert (r.lost, r.duplicated) == (0, 0), "every acknowledged submit stored once, nothing else"
    assert r.stored == r.accepted
    assert r.ran_twice == 0 and r.billed_twice == 0, "no attempt ran or was billed twice"
    assert r.unfinished == 0 and r.unseen == 0
    assert 0 < r.billed_calls <= r.answered, "model calls billed, none twice"
    assert max(f.seconds) <= LEASE + 3.0, f.seconds
