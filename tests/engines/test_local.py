"""The local engine with real subprocesses."""

import json
import time
from pathlib import Path

import pytest

from zhisuan.engines import LocalEngine


def ready(engine, handle, limit=10.0):
    """Until the job printed `ready` (it has set its traps): a signal before that would meet default handlers."""
    end = time.time() + limit
    while time.time() < end and "ready" not in engine.logs(handle):
        time.sleep(0.02)


def wait(engine, handle, limit=10.0):
    end = time.time() + limit
    while time.time() < end:
        st = engine.poll(handle)
        if st.state != "running":
            return st
        time.sleep(0.05)
    raise AssertionError("still running")


def test_gang_members_see_their_devices_and_logs_are_kept(tmp_path):
    eng = LocalEngine(tmp_path)
    h = eng.run("j1", 'echo "rank=$ZHISUAN_NODE_RANK of $ZHISUAN_NNODES sees $CUDA_VISIBLE_DEVICES"',
                   [["0", "1"], ["2", "3"]], "cuda")
    assert wait(eng, h).state == "succeeded"
    logs = eng.logs(h)
    assert "rank=0 of 2 sees 0,1" in logs and "rank=1 of 2 sees 2,3" in logs


def test_ascend_devices_and_failed_exit_code(tmp_path):
    eng = LocalEngine(tmp_path)
    h = eng.run("j2", 'echo "npu=$ASCEND_RT_VISIBLE_DEVICES"; echo boom >&2; exit 3', [["4"]], "cann")
    st = wait(eng, h)
    assert (st.state, st.exit_code) == ("failed", 3)
    assert "npu=4" in eng.logs(h) and "boom" in eng.logs(h)


def test_cancel_kills_the_whole_process_group(tmp_path):
    eng = LocalEngine(tmp_path, grace=0.5)
    h = eng.run("j3", "trap '' TERM; echo ready; sleep 30 & wait", [["0"]], "cuda")
    ready(eng, h)
    assert eng.poll(h).state == "running"
    eng.cancel(h)
    st = wait(eng, h)
    assert st.state == "failed" and "killed" in st.reason


def test_timeout_fails_the_job(tmp_path):
    eng = LocalEngine(tmp_path, grace=0.5)
    h = eng.run("j4", "sleep 30", [["0"]], "cuda", timeout=0.3)
    time.sleep(0.5)
    assert eng.poll(h).state == "running"  # SIGTERM at the time limit; it ends when its processes are gone
    st = wait(eng, h)
    assert st.state == "failed" and "timeout" in st.reason


def test_timeout_kills_what_ignores_sigterm_after_the_grace(tmp_path):
    eng = LocalEngine(tmp_path, grace=0.3)
    h = eng.run("j4b", "trap '' TERM; sleep 30 & wait", [["0"]], "cuda", timeout=0.2)
    time.sleep(0.3)
    assert eng.poll(h).state == "running"
    st = wait(eng, h)
    assert st.state == "failed" and "timeout" in st.reason


def test_stop_asks_and_returns_at_once_then_cancel_kills_after_the_grace(tmp_path):
    eng = LocalEngine(tmp_path, grace=0.4)
    h = eng.run("j8", 'trap "echo saving >> $ZHISUAN_CHECKPOINT_DIR/ckpt; sleep 30" TERM; echo ready; sleep 30 & wait',
                [["0"]], "cuda", attempt=2)
    ready(eng, h)
    t0 = time.time()
    eng.stop(h)
    assert time.time() - t0 < 0.1 and eng.poll(h).state == "running"  # it is saving its checkpoint
    time.sleep(0.5)  # the grace period has passed
    t0 = time.time()
    LocalEngine(tmp_path, grace=0.4).cancel(h)  # even a restarted engine knows the grace was given
    assert time.time() - t0 < 0.3
    assert wait(eng, h).state == "failed"
    assert (tmp_path / "j8" / "checkpoint" / "ckpt").read_text() == "saving\n"
    assert eng.handle_of("j8") == h == eng.handle_of("j8", 2) and eng.handle_of("j8", 1) is None


def test_a_new_engine_re_adopts_jobs_from_disk(tmp_path):
    h = LocalEngine(tmp_path).run("j5", "sleep 0.3; exit 0", [["0"]], "cuda")
    fresh = LocalEngine(tmp_path)  # as after a control-process restart
    assert fresh.poll(h).state == "running"
    assert wait(fresh, h).state == "succeeded"


def test_a_relative_runs_folder_works(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    eng = LocalEngine("runs")
    h = eng.run("j6", "echo ok", [["0"]], "cuda")
    assert wait(eng, h).state == "succeeded" and eng.logs(h).strip() == "ok"


def test_log_delta_gives_whole_new_lines_per_member(tmp_path):
    eng = LocalEngine(tmp_path)
    h = eng.run("j7", 'echo "a$ZHISUAN_NODE_RANK"; printf "tail$ZHISUAN_NODE_RANK"', [["0"], ["1"]], "cuda")
    assert wait(eng, h).state == "succeeded"
    offsets: dict[str, int] = {}
    assert eng.log_delta(h, offsets) == "[node 0] a0\n[node 1] a1\n"
    assert eng.log_delta(h, offsets) == ""  # nothing new, the partial last lines wait
    assert eng.log_rest(h, offsets) == "[node 0] tail0[node 1] tail1"
    assert eng.log_rest(h, offsets) == ""


def test_logs_are_read_from_their_end_however_large(tmp_path):
    from zhisuan.engines.base import MAX_LOG

    eng = LocalEngine(tmp_path)
    h = eng.run("j9", "head -c 3000000 /dev/zero | tr '\\0' 'x'; echo; echo last line", [["0"]], "cuda")
    assert wait(eng, h).state == "succeeded"
    text = eng.logs(h)
    assert text.startswith("[... ") and text.endswith("last line\n") and len(text) < MAX_LOG + 100
    offsets: dict[str, int] = {}
    first = eng.log_delta(h, offsets)  # a follower that starts late begins at the last MAX_LOG bytes
    assert len(first) <= MAX_LOG and first.endswith("last line\n")


def test_a_start_that_fails_half_way_leaves_no_member_running(tmp_path, monkeypatch):
    import subprocess

    from zhisuan.engines import local
    from zhisuan.engines.sandbox import processes_of

    eng = LocalEngine(tmp_path, isolate=True)
    real, calls = subprocess.Popen, []

    def second_fails(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(*args, **kw)

    monkeypatch.setattr(local.subprocess, "Popen", second_fails)
    with pytest.raises(OSError, match="No space left"):
        eng.run("j10", "sleep 30", [["0"], ["1"]], "cuda")
    uid = json.loads((tmp_path / "j10" / "attempt-1" / "intent.json").read_text())["uid"]
    end = time.time() + 5
    while time.time() < end and processes_of(uid):
        time.sleep(0.05)
    assert processes_of(uid) == []  # the member that did start was killed
    with pytest.raises(OSError, match="begun before"):
        eng.run("j10", "true", [["0"]], "cuda")  # and the attempt is not started again


def test_a_two_node_gang_rendezvous_from_its_environment_alone(tmp_path):
    from tests.builders import RENDEZVOUS

    eng = LocalEngine(tmp_path)
    h = eng.run("gang", RENDEZVOUS, [["0", "1"], ["2", "3"]], "cuda")
    st = wait(eng, h, limit=30)
    logs = eng.logs(h)
    assert st.state == "succeeded", logs
    assert "rank 0/2 joined 3 via 127.0.0.1:" in logs and "rank 1/2 joined 3 via 127.0.0.1:" in logs
    assert "hosts localhost,localhost devices 2,3 of 2" in logs


def test_two_engines_on_one_machine_never_kill_each_others_jobs_through_a_reused_uid(tmp_path):
    """A server and an agent (or two servers) on one machine each run jobs under uids of their own: a uid the
    first one's ended job held may go to the second one's next job, and the first one's late look at its
    ended job must not kill that job ("every process of the uid")."""
    from zhisuan.engines import sandbox

    if not sandbox.isolating():
        pytest.skip("jobs get uids of their own only when run as root")
    a, b = LocalEngine(tmp_path / "a", grace=0.5), LocalEngine(tmp_path / "b", grace=0.5)
    done = a.run("ja", "true", [["0"]], "cuda")
    pid = json.loads((Path(done) / "handle.json").read_text())["pids"][0]
    end = time.time() + 10
    while time.time() < end and Path(f"/proc/{pid}").exists() and a._alive(done, a._run(done))[0]:
        time.sleep(0.02)  # its processes are gone; the engine has not looked yet
    b.uids.file.write_text(str(a.uid_of(done) - sandbox.UID_BASE))  # the machine's uids came round (1M runs on)
    running = b.run("jb", "sleep 30", [["0"]], "cuda")
    assert b.uid_of(running) == a.uid_of(done)  # the uid was free: the second engine took it
    assert a.poll(done).state == "succeeded"  # the first engine's late look at its ended job ...
    time.sleep(0.2)
    assert b.poll(running).state == "running"  # ... killed nothing of the other's
    b.cancel(running)
    assert b.poll(running).state == "failed"


def test_choosing_a_uid_reads_proc_once_however_many_leases_stand(tmp_path, monkeypatch):
    """A fresh runs folder starts at the range's first uid and walks past every uid another run holds: it used
    to scan /proc once per such uid (17 s for the first job on a busy machine); now once per choice."""
    from zhisuan.engines import sandbox

    leases = tmp_path / "leases"
    leases.mkdir()
    first = sandbox.UID_BASE + 999_000  # far from the uids the suite's running jobs hold
    for k in range(200):  # runs of other folders still going (no handle yet: being spawned)
        holder = tmp_path / "other" / f"a{k}"
        holder.mkdir(parents=True)
        (leases / str(first + k)).write_text(str(holder))
    scans = []
    real = sandbox.process_uids
    monkeypatch.setattr(sandbox, "process_uids", lambda: scans.append(1) or real())
    (tmp_path / "runs").mkdir()
    (leases / ".next").write_text(str(first - sandbox.UID_BASE))
    uid = sandbox.UidPool(leases, shared=()).take(str(tmp_path / "runs" / "j" / "attempt-1"))
    assert uid == first + 200 and len(scans) == 1


def test_a_uid_given_again_comes_without_what_its_last_holder_left_in_shared_scratch(tmp_path):
    """Another server (or a new runs folder) gave a new tenant's job a uid an earlier job had held, and it
    read that job's mode-600 file in /dev/shm. Taking a uid now clears what it owns in the shared folders."""
    import os

    from zhisuan.engines import sandbox

    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    shm, runs, leases = tmp_path / "shm", tmp_path / "runs", tmp_path / "leases"
    for d in (shm, runs):
        d.mkdir()
    secret, kept, folder = shm / "secret", shm / "someone-elses", shm / "cache"
    secret.write_text("tenant A's")
    kept.write_text("not that uid's")
    folder.mkdir()
    (folder / "inside").write_text("x")
    was = sandbox.UID_BASE + 999_000  # far from the uids the suite's running jobs hold
    leases.mkdir()
    (leases / ".next").write_text(str(was - sandbox.UID_BASE))
    for p in (secret, folder, folder / "inside"):
        os.chown(p, was, was)
    secret.chmod(0o600)
    uid = sandbox.UidPool(leases, shared=(shm,)).take(str(runs / "j" / "attempt-1"))
    assert uid == was and sorted(p.name for p in shm.iterdir()) == ["someone-elses"]


def test_a_job_printing_without_end_keeps_a_bounded_log_and_runs_on(tmp_path):
    """Its log is cut to its last part (a line says how much went) as it grows; the job is not killed, a
    follower reading from an offset past the cut starts again, and the job's last lines are all there."""
    from zhisuan.engines.base import file_delta

    eng = LocalEngine(tmp_path, log_cap=256 * 1024)
    script = ("i=0; while [ $i -lt 60 ]; do head -c 65536 /dev/zero | tr '\\0' x; echo; i=$((i+1)); "
              "sleep 0.02; done; echo the-end; exit 3")
    h = eng.run("loud", script, [["0"]], "cuda")
    offsets: dict[str, int] = {}
    read = 0
    end = time.time() + 30
    while (st := eng.poll(h)).state == "running" and time.time() < end:
        read += len(eng.log_delta(h, offsets))
        assert (Path(h) / "out-0.log").stat().st_size <= 256 * 1024 + 4 * 65536  # cut between polls
        time.sleep(0.05)
    assert st.state == "failed" and st.exit_code == 3  # it ran to its end: not killed for printing
    log = (Path(h) / "out-0.log").read_bytes()
    assert len(log) <= 256 * 1024 + 4 * 65536 and b"bytes of earlier output dropped" in log
    assert eng.logs(h).rstrip().endswith("the-end")
    assert read > 0 and file_delta([Path(h) / "out-0.log"], {"out-0.log": 10**9}, True, False)  # past the cut


def test_cap_file_keeps_the_end_from_a_line_start(tmp_path):
    from zhisuan.engines.base import cap_file

    f = tmp_path / "out-0.log"
    f.write_bytes(b"".join(f"line {k:05d}\n".encode() for k in range(10_000)))  # 110,000 bytes
    assert cap_file(f, 200_000) == 0 and f.stat().st_size == 110_000
    dropped = cap_file(f, 20_000, keep=10_000)
    text = f.read_text()
    first, second = text.splitlines()[:2]
    assert f"{dropped:,} bytes of earlier output dropped" in first and second.startswith("line ")
    assert text.endswith("line 09999\n") and len(text) <= 11_000 + len(first) + 1
