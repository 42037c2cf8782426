"""What users already have, as a zhisuan spec: an `#SBATCH` script or a SkyPilot task YAML.

Each translator returns the spec as a mapping (validated later like any spec) and notes on what was
mapped loosely or left out; an option whose meaning zhisuan cannot keep (a job array, a dependency, a
file mount) is a SpecError naming it, never silently dropped.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from zhisuan.model.jobspec import SpecError
from zhisuan.model.units import parse_memory_gib, slurm_time

Translation = tuple[dict[str, Any], list[str]]

# sbatch options: short -> long, and what becomes of the ones without an equivalent
_SHORT = {"J": "job-name", "N": "nodes", "t": "time", "G": "gpus", "c": "cpus-per-task", "o": "output",
          "e": "error", "p": "partition", "A": "account", "q": "qos", "n": "ntasks", "D": "chdir",
          "a": "array", "d": "dependency", "w": "nodelist", "x": "exclude", "C": "constraint"}
_IGNORED = {"output": "zhisuan keeps the job's log itself (zhisuan logs ID)", "error": "stderr goes to the same log",
            "partition": "zhisuan chooses the center and pool", "account": "the token's tenant is billed",
            "qos": "priority comes from the spec", "ntasks": "one task per node; run srun/torchrun inside",
            "ntasks-per-node": "one process group per node; start your ranks inside",
            "mail-type": "no mail", "mail-user": "no mail", "open-mode": "logs are appended",
            "export": "the job gets the spec's env and ZHISUAN_* variables", "exclusive": "gangs hold whole devices",
            "chdir": "the job runs in its own run folder", "requeue": "recovery: requeue is the default"}
_REFUSED = {"array": "job arrays: submit one spec per task", "dependency": "dependencies: submit after the first ends",
            "nodelist": "nodes are chosen by the scheduler", "exclude": "nodes are chosen by the scheduler",
            "constraint": "name the chip in --gres instead", "reservation": "Slurm reservations are per cluster",
            "begin": "deferred starts: use constraints.deadline with the profile's defer", "wrap": "put the command "
            "in the script"}
_SLURM_VARS = re.compile(r"\$\{?SLURM_[A-Z_]+")


def looks_like_sbatch(text: str) -> bool:
    return text.startswith("#!") or any(line.startswith("#SBATCH") for line in text.splitlines())


def _sbatch_options(text: str) -> list[tuple[str, str | None]]:
    """(long option, value) from the #SBATCH lines before the first command, as sbatch reads them."""
    out: list[tuple[str, str | None]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break  # sbatch stops at the first command
        if not stripped.startswith("#SBATCH"):
            continue
        try:
            words = shlex.split(stripped[len("#SBATCH"):], comments=True)
        except ValueError as e:
            raise SpecError([("#SBATCH", f"{stripped[:80]!r}: {e}")]) from e
        i = 0
        while i < len(words):
            word = words[i]
            if word.startswith("--"):
                name, eq, value = word[2:].partition("=")
                if not eq and i + 1 < len(words) and not words[i + 1].startswith("-"):
                    value, i = words[i + 1], i + 1
                out.append((name, value if (eq or value) else None))
            elif word.startswith("-") and len(word) >= 2:
                name = _SHORT.get(word[1], word[1])
                value = word[2:] or (words[i + 1] if i + 1 < len(words) else "")
                i += 0 if word[2:] else 1
                out.append((name, value or None))
            else:
                raise SpecError([("#SBATCH", f"cannot read {word!r} in {stripped[:80]!r}")])
            i += 1
    return out


def _count(option: str, value: str | None) -> int:
    if value is None or not value.isdigit() or int(value) < 1:
        raise SpecError([(f"#SBATCH --{option}", f"expected a positive whole number, got {value!r}")])
    return int(value)


def _gpus(option: str, value: str | None) -> tuple[str | None, int]:
    """`[gpu:][TYPE:]N` -> (chip or None, count)."""
    parts = (value or "").split(",")[0].split(":")
    if parts and parts[0] == "gpu":
        parts = parts[1:]
    if len((value or "").split(",")) > 1:
        raise SpecError([(f"#SBATCH --{option}", f"one GPU kind per job, got {value!r}")])
    if len(parts) == 1:
        return None, _count(option, parts[0])
    if len(parts) == 2:
        return parts[0], _count(option, parts[1])
    raise SpecError([(f"#SBATCH --{option}", f"expected [gpu:]TYPE:N, got {value!r}")])


def from_sbatch(text: str, name: str) -> Translation:
    """An sbatch script -> (spec, notes). The script itself becomes the job's command."""
    notes: list[str] = []
    nodes, per_node, total, chip, cpus_per_task, tasks = 1, 0, 0, None, None, 1
    spec: dict[str, Any] = {"name": re.sub(r"[^A-Za-z0-9._-]", "-", name).lstrip("-._") or "job"}
    constraints: dict[str, Any] = {}
    resources: dict[str, Any] = {}
    memory = ""
    for option, value in _sbatch_options(text):
        if option in _REFUSED:
            raise SpecError([(f"#SBATCH --{option}", f"has no zhisuan equivalent ({_REFUSED[option]})")])
        if option == "job-name":
            spec["name"] = value or spec["name"]
        elif option == "nodes":
            nodes = _count(option, value)
        elif option == "time":
            given = value or ""
            if given.upper() in ("UNLIMITED", "INFINITE"):
                notes.append("--time UNLIMITED: no time limit")
                continue
            if not ((given.isdigit() and int(given) > 0) or slurm_time(given)):  # sbatch: a number is minutes
                raise SpecError([("#SBATCH --time", f"expected minutes, MM:SS, HH:MM:SS or D-HH:MM:SS, got {value!r}")])
            constraints["time_limit"] = f"{given}m" if given.isdigit() else given
        elif option in ("gres", "gpus-per-node"):
            chip, per_node = _gpus(option, value)
        elif option == "gpus":
            chip, total = _gpus(option, value)
        elif option == "cpus-per-task":
            cpus_per_task = _count(option, value)
        elif option == "ntasks-per-node":
            tasks = _count(option, value)
            notes.append(f"--ntasks-per-node={tasks}: {_IGNORED[option]} (CPUs per node count all tasks)")
        elif option == "mem":
            m = re.fullmatch(r"(\d+)([KMGT]?)B?", (value or "").strip(), re.IGNORECASE)
            if not m or int(m[1]) < 1:
                raise SpecError([("#SBATCH --mem", f"expected a size such as 64G or 4096 (MB), got {value!r}")])
            memory = f"{m[1]}{(m[2] or 'M').upper()}i"  # sbatch: MB by default, units are powers of 1024
            parse_memory_gib(memory)
        elif option in _IGNORED:
            notes.append(f"--{option} ignored: {_IGNORED[option]}")
        else:
            raise SpecError([(f"#SBATCH --{option}", "unknown or unsupported sbatch option")])
    if total:
        if total % nodes:
            raise SpecError([("#SBATCH --gpus", f"{total} GPUs do not split evenly over {nodes} nodes")])
        per_node = total // nodes
    if not per_node:
        raise SpecError([("#SBATCH --gres", "the script asks for no GPU; give --gres=gpu:TYPE:N or --gpus-per-node")])
    if chip is None:
        raise SpecError([("#SBATCH --gres", f"name the chip, e.g. gpu:a100:{per_node} (zhisuan spans vendors)")])
    resources.update(accelerators=f"{chip}:{per_node}", nodes=nodes)
    if cpus_per_task:
        resources["cpus"] = cpus_per_task * tasks
    if memory:
        resources["memory"] = memory
    spec["resources"] = resources
    if constraints:
        spec["constraints"] = constraints
    body = text.split("\n", 1)[1] if text.startswith("#!") else text
    spec["run"] = body.strip("\n")
    if _SLURM_VARS.search(body):
        notes.append("the script reads $SLURM_* variables: only Slurm centers set them; every engine sets "
                     "ZHISUAN_NNODES, ZHISUAN_NODE_RANK and ZHISUAN_JOB_ID")
    return spec, notes


_SKY_ONLY = {"num_nodes", "setup", "envs", "workdir", "file_mounts", "service", "secrets", "config"}
_SKY_RESOURCES_ONLY = {"cloud", "infra", "use_spot", "disk_size", "any_of", "ordered", "ports", "image_id",
                       "zone", "region", "instance_type", "disk_tier", "job_recovery", "labels"}


def looks_like_skypilot(doc: Any) -> bool:
    if not isinstance(doc, dict):
        return False
    res = doc.get("resources")
    return bool(_SKY_ONLY & set(doc)) or (isinstance(res, dict) and bool(_SKY_RESOURCES_ONLY & set(res)))


def _sky_accelerator(value: Any, notes: list[str]) -> str:
    """SkyPilot's accelerator, or its alternatives ({A100: 8, H100: 8}, [A100:8, H100:8]) as zhisuan's
    any-of list (`A100|H100:8`): the scheduler picks among them. Alternatives must ask the same count."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, dict):
        value = [f"{chip}:{count}" for chip, count in value.items()]
    if not isinstance(value, list | set | tuple):
        raise SpecError([("resources.accelerators", f"expected NAME:COUNT, got {value!r}")])
    if not value:
        raise SpecError([("resources.accelerators", "an empty list")])
    kinds = []
    for item in value:
        if isinstance(item, dict) and len(item) == 1:
            (chip, count), = item.items()
            item = f"{chip}:{count}"
        if not isinstance(item, str):
            raise SpecError([("resources.accelerators", f"expected NAME:COUNT, got {item!r}")])
        chip, _, count = item.partition(":")
        kinds.append((chip.strip(), count.strip() or "1"))
    counts = {c for _, c in kinds}
    if len(counts) > 1:
        raise SpecError([("resources.accelerators", f"alternatives ask different counts {sorted(counts)}: "
                                                    "zhisuan's any-of list takes one count per node")])
    if len(kinds) > 1:
        notes.append(f"resources.accelerators: {len(kinds)} alternatives; the scheduler chooses among them "
                     "(run-time estimates refer to the first)")
    return "|".join(c for c, _ in kinds) + f":{counts.pop()}"


def _at_least(field: str, value: Any, notes: list[str]) -> Any:
    """SkyPilot's `8+` (at least 8) -> 8, noted; a number given as text becomes a number."""
    if isinstance(value, str) and value.endswith("+"):
        notes.append(f"resources.{field}: {value} read as exactly {value[:-1]}")
        value = value[:-1]
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def from_skypilot(doc: dict[str, Any], name: str) -> Translation:
    """A SkyPilot task -> (spec, notes). setup runs before run, in the same job."""
    notes: list[str] = []
    if "file_mounts" in doc:
        raise SpecError([("file_mounts", "no zhisuan equivalent: keep data at a center and name it in "
                                         "constraints.data")])
    if "service" in doc:
        raise SpecError([("service", "SkyServe services are not zhisuan jobs")])
    res = doc.get("resources") or {}
    if not isinstance(res, dict):
        raise SpecError([("resources", "expected a mapping")])
    for key in ("any_of", "ordered"):
        if key in res:
            raise SpecError([(f"resources.{key}", "alternatives of whole resource sets are not supported")])
    if "accelerators" not in res:
        raise SpecError([("resources.accelerators", "zhisuan runs accelerator jobs; name one, e.g. A100:8")])
    resources: dict[str, Any] = {"accelerators": _sky_accelerator(res["accelerators"], notes)}
    nodes = doc.get("num_nodes", 1)
    if not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1:
        raise SpecError([("num_nodes", f"expected a positive whole number, got {nodes!r}")])
    resources["nodes"] = nodes
    for field in ("cpus", "memory"):
        if field in res:
            resources[field] = _at_least(field, res[field], notes)
    for key in sorted(set(res) & (_SKY_RESOURCES_ONLY - {"any_of", "ordered", "image_id"})):
        notes.append(f"resources.{key} ignored: zhisuan places across its own centers by time, price and carbon")
    run = doc.get("run")
    if not isinstance(run, str) or not run.strip():
        raise SpecError([("run", "a SkyPilot task needs a run command")])
    setup = doc.get("setup")
    if setup is not None and not isinstance(setup, str):
        raise SpecError([("setup", "expected a shell command")])
    spec: dict[str, Any] = {"name": doc.get("name") or name, "resources": resources,
                            "run": f"{setup.rstrip()}\n{run}" if setup else run}
    image = res.get("image_id")
    if isinstance(image, str):
        spec["image"] = image.removeprefix("docker:")
    envs = doc.get("envs") or {}
    if not isinstance(envs, dict):
        raise SpecError([("envs", "expected a mapping of names to values")])
    missing = [k for k, v in envs.items() if v is None]
    if missing:
        raise SpecError([(f"envs.{missing[0]}", "no value (SkyPilot asks for it with --env; set it in the file)")])
    if envs:
        spec["env"] = {str(k): str(v) for k, v in envs.items()}
    if "workdir" in doc:
        notes.append("workdir is not synced: the job starts in its own run folder (put code at the center first)")
    return spec, notes
