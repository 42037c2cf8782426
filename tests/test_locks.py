"""The locks are the environments: every requirement in pyproject.toml and locks/*.in is met by its lock with
every file hashed, and the virtualenv the tests run in holds exactly the lock's packages (its `pip freeze`).
A dependency added to pyproject.toml without `make lock` fails here, in CI."""

import re
import sys
import sysconfig
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "locks"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s\\;]+)")


def blocks(lock: str) -> list[list[str]]:
    """A lock's entries: a pin line and the hash and comment lines under it."""
    out: list[list[str]] = []
    for line in (LOCKS / lock).read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            out.append([line])
        elif out and line.strip():
            out[-1].append(line)
    return out


def pins(lock: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for block in blocks(lock):
        m = PIN.match(block[0])
        assert m, f"locks/{lock}: not an exact pin: {block[0]!r}"
        found[canonicalize_name(m.group(1))] = m.group(2)
    return found


def inputs(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return reqs + inputs(LOCKS / "tools.in")


LOCKED = {
    "zhisuan.txt": pyproject_requirements,
    "pip.txt": lambda: inputs(LOCKS / "pip.in"),
    "litellm.txt": lambda: inputs(LOCKS / "litellm.in"),
    "llama-build.txt": lambda: inputs(LOCKS / "llama-build.in"),
    "llama.txt": lambda: inputs(LOCKS / "llama.in"),
}


@pytest.mark.parametrize("lock", sorted(LOCKED))
def test_every_requirement_is_met_by_its_lock(lock: str) -> None:
    pinned = pins(lock)
    unmet = []
    for req in LOCKED[lock]():
        if req.marker is not None and not req.marker.evaluate():
            continue
        version = pinned.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            unmet.append(f"{req} (locked: {version or 'absent'})")
    assert not unmet, f"locks/{lock} no longer satisfies its inputs, run `make lock`: {', '.join(unmet)}"


@pytest.mark.parametrize("lock", sorted(LOCKED))
def test_every_locked_package_is_hashed(lock: str) -> None:
    unhashed = [b[0] for b in blocks(lock) if not any("--hash=sha256:" in line for line in b[1:])]
    assert not unhashed, f"locks/{lock}: pins without hashes: {unhashed}"


@pytest.mark.parametrize("first, then", [("llama-build.txt", "llama.txt"), ("pip.txt", "zhisuan.txt")])
def test_locks_installed_in_turn_agree(first: str, then: str) -> None:
    before, after = pins(first), pins(then)
    differ = {n: (v, after[n]) for n, v in before.items() if n in after and after[n] != v}
    assert not differ, f"installed in turn into one virtualenv, these would be replaced: {differ}"


def test_the_test_virtualenv_is_exactly_the_lock() -> None:
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        pytest.skip(f"not the project's virtualenv ({sys.prefix}); `make test` runs in .venv")
    venv = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})  # not what others add to
    installed = {canonicalize_name(d.metadata["Name"]): d.version  # sys.path (Ray its vendored psutil, colorama)
                 for d in metadata.distributions(path=venv)}
    installed.pop("zhisuan", None)
    locked = pins("zhisuan.txt")
    extra = {n: v for n, v in installed.items() if locked.get(n) != v}
    missing = {n: v for n, v in locked.items() if installed.get(n) != v}
    assert not extra and not missing, (
        f".venv differs from locks/zhisuan.txt (`make install` rebuilds it): "
        f"not locked {extra}, locked but not installed {missing}")
