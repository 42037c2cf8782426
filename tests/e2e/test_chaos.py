"""Chaos: a real `zhisuan server` is killed with SIGKILL at 20 random points while clients submit (with
idempotency keys, retrying what was not acknowledged), cancel, and jobs run and end (bench/soak.py drives
it). Afterwards every acknowledged submit is stored exactly once, every submit retried after a kill is
one job, and no job ran twice in one attempt. On SQLite and on PostgreSQL. Twenty kills each keeps `make test`
near its 20 minutes; `zhisuan bench soak` runs the long version."""

import pytest

from zhisuan.bench.soak import Soak
from zhisuan.engines.sandbox import isolating

pytestmark = pytest.mark.skipif(not isolating(), reason="job isolation needs root and setpriv (CI has both)")


def test_kill_9_at_random_points_loses_nothing_and_runs_nothing_twice(db_url, tmp_path):
    r = Soak(db_url, tmp_path).run(clients=2, until=lambda rep: rep.kills >= 20, uptime=(0.1, 0.8))
    assert r.kills == 20 and r.accepted > 40 and r.cancelled > 0  # the load was mixed and real
    assert (r.lost, r.duplicated) == (0, 0), "every acknowledged submit stored once, nothing else"
    assert r.stored == r.accepted
    assert r.ran_twice == 0, "no job ran twice in one attempt"
    assert r.unfinished == 0 and r.unseen == 0  # everything ended, and what succeeded did run
