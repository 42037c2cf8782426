import pytest

from zhisuan.sim.readers import load_trace
from zhisuan.sim.trace import TraceError, parse_csv


def test_philly_is_the_full_trace_minus_unsized_vcs():
    tr = load_trace("philly")
    assert len(tr.jobs) == 82_247 - 18
    assert len(tr.homes) == 11 and sum(tr.homes.values()) == 352
    assert any("ASSUMPTION" in n for n in tr.notes)
    assert tr.busy_cdf and tr.busy_cdf[-1][1] == pytest.approx(100.0, abs=0.2)
    assert [j.submit for j in tr.jobs] == sorted(j.submit for j in tr.jobs)


@pytest.mark.parametrize(("name", "count"), [("gavel", 15_264), ("sia-saturn", 160), ("sia-philly", 160),
                                             ("sia-newtrace", 960), ("pollux", 160)])
def test_packaged_traces(name, count):
    tr = load_trace(name)
    assert len(tr.jobs) == count
    assert all(j.duration > 0 and j.devices > 0 for j in tr.jobs)


def test_own_csv_format():
    tr = parse_csv("submit,duration,devices,chip,tenant,home\n0,60,2,a100,acme,x\n5,30,1,,lab,\n", "t.csv",
                   chip="v100")
    assert [j.devices for j in tr.jobs] == [2, 1]
    assert tr.jobs[0].chip == "A100 SXM4 80GB" and tr.jobs[1].tenant == "lab" and tr.homes == {"x": 0}
    assert tr.jobs[1].chip == "V100 SXM2 32GB"  # a row without a chip: the one the trace was said to be measured on


@pytest.mark.parametrize(
    ("row", "words"),
    [("5,abc,1", "could not convert"), ("5,60,0", "CPU-only job: give its cpus"),
     ("5,60,1,B300", "unknown accelerator")],
)
def test_malformed_row_names_the_line(row, words):
    text = f"submit,duration,devices,chip\n0,60,1,v100\n{row}\n"
    with pytest.raises(TraceError) as e:
        parse_csv(text, "mine.csv")
    assert "mine.csv, line 3" in str(e.value) and words in str(e.value)
    tr = parse_csv(text, "mine.csv", skip_bad=True)
    assert len(tr.jobs) == 1 and "skipped 1 malformed row(s)" in tr.notes


def test_missing_columns():
    with pytest.raises(TraceError, match="lacks column"):
        parse_csv("time,gpus\n1,2\n")


def test_unknown_trace_name():
    with pytest.raises(ValueError, match="packaged: philly"):
        load_trace("alibaba")


def test_a_copied_trace_job_keeps_every_field_but_its_id_and_submit() -> None:
    """`TraceJob.copied` lists the fields by hand (for speed): a field added later and not copied fails here."""
    import dataclasses

    from zhisuan.sim.trace import TraceJob

    odd = {"id": "a", "submit": 1.0, "duration": 2.0, "devices": 3, "tenant": "t", "chip": "c", "home": "h",
           "application": "app", "nodes": 4, "allowed": ("x",), "milli": 5, "cpus": 6.0, "memory_gib": 7.0,
           "priority": 8, "censored": True, "inputs": ("d",)}
    assert set(odd) == {f.name for f in dataclasses.fields(TraceJob)}
    job = TraceJob(**odd)  # type: ignore[arg-type]
    assert job.copied("a~1", 9.0) == dataclasses.replace(job, id="a~1", submit=9.0)
