"""Compile the scheduler's and the simulator's hot modules with mypyc (zhisuan.native lists them).

Run by `make install`: a no-op when the stamp matches the sources; otherwise the old build is removed first, the
modules are compiled in place (extension modules beside the .py files, ignored by git), and the stamp is written
last, so an interrupted build leaves modules without a stamp, which zhisuan's guard treats as stale.
    python tools/compile.py [--force]
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def _native():  # type: ignore[no-untyped-def]
    """zhisuan.native by path: importing the package would run the guard that this build is about to satisfy."""
    spec = importlib.util.spec_from_file_location("_zhisuan_native", SRC / "zhisuan" / "native.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(force: bool) -> int:
    native = _native()
    if not force and native.built() and not native.stale():
        print("compiled modules are up to date")
        return 0
    native.STAMP.unlink(missing_ok=True)
    for old in native.leftovers(SRC):
        old.unlink()
    files = [str(native.source_of(m).relative_to(SRC)) for m in native.COMPILED]
    print(f"compiling {len(files)} modules with mypyc (about a minute)", flush=True)
    t0 = time.monotonic()
    # From src/, with mypy's defaults: the build needs only the modules' own annotations (make typecheck holds the
    # strict ones). The build directory is scratch.
    run = subprocess.run([sys.executable, "-m", "mypyc", *files], cwd=SRC, capture_output=True, text=True,
                         env={**os.environ, "MYPYC_OPT_LEVEL": "3"})
    shutil.rmtree(SRC / "build", ignore_errors=True)
    missing = [m for m in native.COMPILED if native.extension(m) is None]
    libraries = [p.name for p in native.leftovers(SRC) if p.parent == SRC]
    if run.returncode != 0 or missing or len(libraries) != 1:
        print(run.stdout[-4000:], run.stderr[-4000:], sep="\n", file=sys.stderr)
        print(f"mypyc failed (no extension for {', '.join(missing) or 'none'}; libraries {libraries}): zhisuan runs "
              "from the Python source, slower, until it compiles (needs a C compiler and Python's headers)",
              file=sys.stderr)
        for partial in native.leftovers(SRC):
            partial.unlink()
        return 0  # `make demo` still works; `make test` fails in tests/scheduler/test_native.py, which wants the build
    import mypy.version

    native.STAMP.write_text(json.dumps({"mypy": mypy.version.__version__, "python": sys.version.split()[0],
                                        "library": libraries[0], "sources": native.digests(),
                                        "depends": native.dependencies()}, indent=1) + "\n")
    print(f"compiled in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main("--force" in sys.argv[1:]))
