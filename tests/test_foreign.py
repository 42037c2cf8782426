"""Users' own formats: #SBATCH scripts and SkyPilot tasks become zhisuan specs; what cannot be kept is an
error naming the option."""

import pytest
from typer.testing import CliRunner

from tests.builders import ROOT
from zhisuan.cli.main import app
from zhisuan.model import SpecError, parse_job_spec
from zhisuan.model.foreign import from_sbatch, from_skypilot, looks_like_skypilot
from zhisuan.model.parsing import load_document
from zhisuan.model.units import parse_duration


@pytest.mark.parametrize(("text", "seconds"), [("04:00:00", 14400), ("1-00:00:00", 86400), ("30:00", 1800),
                                               ("2-12", 216000), ("1-2:30", 95400), ("90m", 5400), ("45", 45)])
def test_slurm_time_formats_are_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["1:2:3:4", "a-1", "1-", "4:", "0:00", "-1"])
def test_malformed_times_are_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_an_sbatch_script_keeps_its_resources_and_runs_itself():
    spec, notes = from_sbatch((ROOT / "examples/jobs/train.sbatch").read_text(), "train")
    job = parse_job_spec(spec, tenant="acme")
    assert (job.name, job.resources.nodes, job.resources.devices_per_node) == ("resnet-train", 2, 8)
    assert (job.resources.cpus, job.resources.memory, job.constraints.time_limit) == (16, 256.0, 86400.0)
    assert job.resources.accelerators.name == "A100 SXM4 80GB" and "torchrun" in job.run
    assert any("--partition ignored" in n for n in notes) and any("SLURM_" in n for n in notes)


def test_sbatch_short_options_minutes_and_total_gpus():
    text = "#!/bin/sh\n#SBATCH -N 2 -t 90 -J small\n#SBATCH -G a100:4 -c 4 --ntasks-per-node=2 --mem 4096\nhostname\n"
    job = parse_job_spec(from_sbatch(text, "x")[0], tenant="acme")
    assert (job.name, job.resources.nodes, job.resources.devices_per_node) == ("small", 2, 2)
    assert (job.constraints.time_limit, job.resources.cpus, job.resources.memory) == (5400.0, 8, 4.0)
    assert from_sbatch("#SBATCH --gres=gpu:h100:1\necho\n#SBATCH --array=1-3\n", "x")[0]["run"]  # after a command


@pytest.mark.parametrize(("script", "field"), [
    ("#SBATCH --array=1-10 --gres=gpu:a100:1\n", "#SBATCH --array"),
    ("#SBATCH -d afterok:12 --gres=gpu:a100:1\n", "#SBATCH --dependency"),
    ("#SBATCH --gres=gpu:8\n", "#SBATCH --gres"),
    ("#SBATCH --nodes=2\n", "#SBATCH --gres"),
    ("#SBATCH --gpus=3 --nodes=2 --gres=gpu:a100:1\n", "#SBATCH --gpus"),
    ("#SBATCH --time=soon --gres=gpu:a100:1\n", "#SBATCH --time"),
    ("#SBATCH --mem=lots --gres=gpu:a100:1\n", "#SBATCH --mem"),
    ("#SBATCH --frobnicate --gres=gpu:a100:1\n", "#SBATCH --frobnicate"),
])
def test_sbatch_options_without_an_equivalent_are_named(script, field):
    with pytest.raises(SpecError) as e:
        from_sbatch(script + "true\n", "x")
    assert e.value.errors[0][0] == field


def test_a_skypilot_task_keeps_setup_envs_and_nodes():
    doc = load_document((ROOT / "examples/jobs/skypilot-task.yaml").read_text())
    assert looks_like_skypilot(doc) and not looks_like_skypilot({"name": "x", "run": "y", "resources": {}})
    spec, notes = from_skypilot(doc, "task")
    job = parse_job_spec(spec, tenant="acme")
    assert (job.resources.nodes, job.resources.cpus, job.env) == (2, 32, {"MODEL": "llama-7b"})
    assert job.run.startswith("pip install -r requirements.txt\ntorchrun")
    assert any("use_spot ignored" in n for n in notes)
    alternatives = from_skypilot({"resources": {"accelerators": {"H100": 8}}, "run": "x"}, "t")[0]
    assert alternatives["resources"]["accelerators"] == "H100:8"


@pytest.mark.parametrize(("doc", "field"), [
    ({"resources": {"accelerators": "A100:1"}, "run": "x", "file_mounts": {"/d": "s3://b"}}, "file_mounts"),
    ({"resources": {"accelerators": "A100:1", "any_of": []}, "run": "x"}, "resources.any_of"),
    ({"resources": {"cpus": 4}, "run": "x"}, "resources.accelerators"),
    ({"resources": {"accelerators": "A100:1"}, "num_nodes": 0, "run": "x"}, "num_nodes"),
    ({"resources": {"accelerators": "A100:1"}, "envs": {"KEY": None}, "run": "x"}, "envs.KEY"),
    ({"resources": {"accelerators": "A100:1"}, "setup": "x"}, "run"),
])
def test_skypilot_fields_without_an_equivalent_are_named(doc, field):
    with pytest.raises(SpecError) as e:
        from_skypilot(doc, "t")
    assert e.value.errors[0][0] == field


def test_submit_dry_run_prints_the_translation_and_refuses_with_the_option_named(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["submit", str(ROOT / "examples/jobs/train.sbatch"), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "read as an #SBATCH script" in res.output and "accelerators: a100:8" in res.output
    bad = tmp_path / "array.sh"
    bad.write_text("#!/bin/bash\n#SBATCH --array=1-4\n#SBATCH --gres=gpu:a100:1\necho\n")
    res = runner.invoke(app, ["submit", str(bad), "--dry-run"])
    assert res.exit_code == 2 and "#SBATCH --array" in res.output
    res = runner.invoke(app, ["submit", str(ROOT / "examples/jobs/skypilot-task.yaml"), "--dry-run"])
    assert res.exit_code == 0 and "read as a SkyPilot task" in res.output


def test_skypilot_alternatives_become_an_allowed_list():
    spec, notes = from_skypilot({"resources": {"accelerators": {"A100": 8, "H100": 8}}, "run": "x"}, "t")
    assert spec["resources"]["accelerators"] == "A100|H100:8" and any("chooses among" in n for n in notes)
    with pytest.raises(SpecError, match="different counts"):
        from_skypilot({"resources": {"accelerators": ["A100:8", "H100:4"]}, "run": "x"}, "t")
