"""Limits the kernel enforces on local jobs (engines/confine.py): memory, CPU and pids per member from the
spec, a /proc that shows a job its own processes only, private scratch folders, and uids that do not come
round again between runs folders. Real cgroups and namespaces: these need root (CI has it)."""

import os
import stat
import time
from pathlib import Path

import pytest

from zhisuan.engines import sandbox
from zhisuan.engines.base import Launch
from zhisuan.engines.confine import PARENT, Cgroups, Limits, can_unshare, limits_for
from zhisuan.engines.local import LocalEngine
from zhisuan.model import Pool

CONFINED = sandbox.isolating() and can_unshare() and Cgroups().version > 0
needs_kernel = pytest.mark.skipif(not CONFINED, reason="cgroups and mount namespaces need root (CI has both)")


def pool(**kw):
    return Pool(name="p", accelerator="A100", nodes=1, devices_per_node=8, price_per_device_hour=1.0, **kw)


def launch(job_id, command, devices=1, **kw):
    return Launch(job_id, job_id, command, pool(cpus_per_node=64, memory_gib_per_node=512.0), (0,), devices,
                  [[str(i) for i in range(devices)]], **kw)


def settle(eng, handles, limit=30.0):
    """Poll until every run ended; each one's first final status (as the control loop records it)."""
    done = {}
    end = time.time() + limit
    while len(done) < len(handles) and time.time() < end:
        for h in handles:
            if h not in done and (st := eng.poll(h)).state != "running":
                done[h] = st
        time.sleep(0.1)
    assert len(done) == len(handles), "runs did not end"
    return [done[h] for h in handles]


def test_limits_are_what_the_spec_asked_else_the_members_share_of_its_node():
    asked = limits_for(0.125, 4.0, 2.0, 64, 512.0)
    assert (asked.cpus, asked.memory) == (4.0, 2 * 2**30)
    share = limits_for(0.125, 0.0, 0.0, 64, 512.0)  # one of 8 devices: an eighth of the node
    assert (share.cpus, share.memory) == (8.0, 64 * 2**30)
    sliver = limits_for(0.001, 0.0, 0.0, 64, 512.0)
    assert sliver.cpus == 0.1 and sliver.memory == int(0.001 * 512 * 2**30)  # a floor to start an interpreter


@needs_kernel
def test_a_job_past_its_memory_is_killed_and_fails_saying_so_while_its_neighbour_runs_on(tmp_path):
    eng = LocalEngine(tmp_path, grace=1)
    hog = eng.submit(launch("hog", "head -c 600M /dev/zero | tail; echo went on", memory_gib=0.125))
    calm = eng.submit(launch("calm", "sleep 1; echo fine", memory_gib=0.125))
    hog_st, calm_st = settle(eng, [hog, calm])
    assert hog_st.state == "failed" and "out of memory" in hog_st.reason and "0.125 GiB" in hog_st.reason
    assert "resources.memory" in hog_st.reason and "Killed" in eng.logs(hog)
    assert hog_st.exit_code == 0  # its shell went on after `tail` was killed: failed all the same, as Slurm's OOM
    assert calm_st.state == "succeeded" and "fine" in eng.logs(calm)
    assert eng.poll(hog).reason == hog_st.reason  # asked again (a restarted loop): the same answer
    assert not Cgroups().names(f"{eng.uid_of(hog)}-")  # its groups are gone with it


@needs_kernel
def test_a_members_cpu_and_pids_limits_are_the_kernels(tmp_path):
    eng = LocalEngine(tmp_path, grace=1, pids=32)
    h = eng.submit(launch("bomb", "i=0; while [ $i -lt 100 ]; do sleep 3 & i=$((i+1)); done; echo forked-all",
                          cpus=1.5))
    uid = eng.uid_of(h)
    cg = Cgroups()
    group = (cg.v1["cpu"] if cg.v1 else cg.v2) / PARENT / f"{uid}-0"
    quota = group / ("cpu.cfs_quota_us" if cg.v1 else "cpu.max")
    assert quota.read_text().split()[0] == "150000"  # 1.5 CPUs of every 100 ms
    (st,) = settle(eng, [h])
    assert "forked-all" not in eng.logs(h) and st.state == "failed"  # it could not fork past 32
    end = time.time() + 5
    while sandbox.processes_of(uid) and time.time() < end:  # what it forked went with it
        time.sleep(0.05)
    assert not sandbox.processes_of(uid)


@needs_kernel
def test_a_job_sees_its_own_processes_and_scratch_only(tmp_path):
    eng = LocalEngine(tmp_path, grace=1)
    other = eng.submit(launch("other", "echo theirs > /tmp/t-file; echo theirs > /dev/shm/s-file; "
                                       "sleep 20 # marker-9e1"))
    time.sleep(0.5)
    spy = eng.submit(launch("spy", "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done; "
                                   "ls -a /tmp /dev/shm /var/tmp; echo mine > /tmp/m-file; "
                                   "grep NoNewPrivs /proc/self/status"))
    (st,) = settle(eng, [spy])
    out = eng.logs(spy)
    assert st.state == "succeeded" and "tr" in out  # it sees itself
    assert "NoNewPrivs:\t1" in out  # and no setuid program raises it again
    assert "marker-9e1" not in out and "setpriv" not in out and "t-file" not in out and "s-file" not in out
    assert not Path("/tmp/m-file").exists() and not Path("/tmp/t-file").exists()  # the host's /tmp is untouched
    eng.cancel(other)


@needs_kernel
def test_a_uid_does_not_come_round_again_in_another_runs_folder_and_what_it_left_is_closed(tmp_path):
    """A second server (or a new --runs) started handing out uids from the first again, so a new tenant's
    job got the uid of one that had just ended. The next uid is the machine's now; and what a run leaves on
    disk is closed to its uid when it ends."""
    one, two = LocalEngine(tmp_path / "one", grace=1), LocalEngine(tmp_path / "two", grace=1)
    a = one.submit(launch("a", "echo secret > $ZHISUAN_CHECKPOINT_DIR/state; echo secret > mine"))
    settle(one, [a])
    b = two.submit(launch("a", "true"))
    settle(two, [b])
    assert two.uid_of(b) != one.uid_of(a)
    folder, checkpoint = Path(a), Path(a).parent / "checkpoint"
    for d in (folder, checkpoint):
        st = d.stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o700), d
    again = one.submit(launch("a", "cat $ZHISUAN_CHECKPOINT_DIR/state", attempt=2))  # its own next attempt
    (st,) = settle(one, [again])
    assert st.state == "succeeded" and "secret" in one.logs(again)


def test_cgroup_v2_is_set_up_as_documented(tmp_path):
    """This machine has cgroup v1; the v2 path writes these files (a v2 tree laid out in a folder)."""
    root = tmp_path / "cg"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    info = tmp_path / "mountinfo"
    info.write_text(f"41 31 0:38 / {root} rw,relatime - cgroup2 cgroup2 rw\n")
    cg = Cgroups(info)
    assert cg.version == 2
    procs = cg.create("7-0", Limits(2**30, 0.5, 64))
    d = root / PARENT / "7-0"
    assert procs == [d / "cgroup.procs"]
    assert (d / "memory.max").read_text() == str(2**30) and (d / "cpu.max").read_text() == "50000 100000"
    assert (d / "pids.max").read_text() == "64"
    assert (root / PARENT / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert cg.oom_kills("7-0") == 1 and cg.names("7-") == ["7-0"]


@needs_kernel
def test_a_checkout_in_tmp_stays_visible_read_only_while_the_rest_of_tmp_is_the_jobs_own(tmp_path):
    """A CI clone lives in /tmp: the server's Python and package must stay reachable by jobs and replicas
    (`python -m zhisuan.gateway.backend`), read-only; the runs folder stays writable inside it."""
    code = tmp_path / "checkout"
    code.mkdir()
    (tmp_path / "beside-it").write_text("not the job's")
    (code / "tool.sh").write_text("echo tool-ran\n")
    code.chmod(0o755)
    (code / "tool.sh").chmod(0o755)
    eng = LocalEngine(code / "runs", grace=1)
    eng.shown = (code,)
    was = os.umask(0o077)  # as the server runs: the folders leading to the checkout must still be passable
    try:
        h = eng.submit(launch("j", f"sh {code}/tool.sh; touch {code}/mine 2>&1 || echo refused; ls {tmp_path}; "
                                   "echo ok > state && cat state"))
    finally:
        os.umask(was)
    (st,) = settle(eng, [h])
    out = eng.logs(h)
    assert st.state == "succeeded" and "tool-ran" in out and "Read-only" in out and "refused" in out
    lines = out.splitlines()
    assert "checkout" in lines and "beside-it" not in out  # of /tmp, only the checkout's path
    assert lines[-1] == "ok"  # its work folder (in the runs folder, in the checkout) is writable
    assert not (code / "mine").exists()


@needs_kernel
def test_a_runs_end_kills_what_it_left_through_its_cgroups_without_scanning_every_process(tmp_path, monkeypatch):
    """Ending a run killed "every process of its uid" by reading all of /proc, on the loop's thread, twice per
    job (a job may hold 4,096 processes, and so may each of its neighbours); its cgroups list exactly its own."""
    eng = LocalEngine(tmp_path, grace=1)
    h = eng.submit(launch("daemon", "setsid sleep 60 > /dev/null 2>&1 & echo left-one"))
    uid = eng.uid_of(h)
    scans = []
    real = sandbox.process_uids
    monkeypatch.setattr(sandbox, "process_uids", lambda: scans.append(1) or real())
    (st,) = settle(eng, [h])
    assert st.state == "succeeded" and not scans  # its daemon killed, and not one look at all of /proc
    monkeypatch.setattr(sandbox, "process_uids", real)
    end = time.time() + 5
    while sandbox.processes_of(uid) and time.time() < end:
        time.sleep(0.05)
    assert not sandbox.processes_of(uid) and not Cgroups().names(f"{uid}-")


@needs_kernel
def test_without_a_namespace_a_job_gets_no_cgroup_and_is_still_stopped_by_its_uid(tmp_path):
    """A container may let the server write cgroups but not unshare: a member joins its groups as it unshares,
    so there it has none — and must then be signalled by its uid, not through empty groups."""
    eng = LocalEngine(tmp_path, grace=0.5)
    eng.namespaces = False
    h = eng.submit(launch("plain", "sleep 60", memory_gib=0.5))
    uid = eng.uid_of(h)
    assert eng._run(h).memory is None and not Cgroups().names(f"{uid}-")
    end = time.time() + 5
    while not sandbox.processes_of(uid) and time.time() < end:
        time.sleep(0.05)
    eng.cancel(h)
    end = time.time() + 5
    while sandbox.processes_of(uid) and time.time() < end:
        time.sleep(0.05)
    assert not sandbox.processes_of(uid)


@needs_kernel
def test_groups_left_by_a_crash_go_when_an_engine_starts(tmp_path):
    """A server killed while a member's cgroup was being removed leaves an empty group: the next engine on the
    machine removes those whose uid no run holds, or whose run has ended (28 had piled up over four CI runs);
    a run being started keeps its groups."""
    cg = Cgroups()
    left = cg.create("3999990-0", Limits(2**30, 1.0))  # no lease names uid 3999990
    held, starting = sandbox.LEASES / "3999991", tmp_path / "someone" / "attempt-1"
    starting.mkdir(parents=True)  # a run being started: its folder, no handle yet
    held.write_text(str(starting))
    kept = cg.create("3999991-0", Limits(2**30, 1.0))
    try:
        LocalEngine(tmp_path / "runs", grace=1)
        assert not left[0].parent.exists() and kept[0].parent.exists()
    finally:
        held.unlink()
        cg.remove("3999991-0")
        cg.remove("3999990-0")
