"""The records a cycle and a replay make by the thousand write their `__init__` out (mypyc compiles that one; the
one `@dataclass` generates stays interpreted). Written out, a field added later could be left unset: each of them
must set every field it declares."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "zhisuan"
WRITTEN = [
    ("scheduler/capacity.py", "Allocation"),
    ("scheduler/decisions.py", "Why"),
    ("scheduler/decisions.py", "Start"),
    ("scheduler/decisions.py", "Reserve"),
    ("scheduler/decisions.py", "Unschedulable"),
    ("scheduler/decisions.py", "CycleResult"),
    ("scheduler/pending.py", "PendingJob"),
    ("sim/engine.py", "SimJob"),
]


def _class(path: str, name: str) -> ast.ClassDef:
    tree = ast.parse((SRC / path).read_text(encoding="utf-8"))
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)


@pytest.mark.parametrize(("path", "name"), WRITTEN)
def test_a_written_out_init_sets_every_field_of_its_dataclass(path: str, name: str) -> None:
    cls = _class(path, name)
    fields = [n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    assigned = {n.attr for n in ast.walk(init) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)
                and isinstance(n.value, ast.Name) and n.value.id == "self"}
    assert fields and assigned == set(fields), (name, set(fields) ^ assigned)
    decorator = next(d for d in cls.decorator_list
                     if isinstance(d, ast.Call) and getattr(d.func, "id", "") == "dataclass")
    assert any(k.arg == "init" and isinstance(k.value, ast.Constant) and k.value.value is False
               for k in decorator.keywords), f"{name}: @dataclass(init=False), or the generated one replaces it"
