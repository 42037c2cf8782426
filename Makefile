# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs into .venv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# A stamp named by what was installed (the lock's and pyproject's contents), not by file times.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml locks/pip.txt locks/zhisuan.txt | sha256sum | cut -c1-16)

.PHONY: install native demo test lint typecheck bench litellm lock clean

# The virtualenv is the lock (locks/zhisuan.txt, every package pinned with its hashes), made afresh when the lock
# or pyproject.toml changes, so two clones installed a year apart hold the same packages. pyproject.toml keeps
# ranges for `pip install zhisuan` as a library; `make lock` re-resolves them into the locks.
LOCK := locks/zhisuan.txt
$(STAMP):
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install -q --require-hashes --no-deps -r locks/pip.txt
	$(PY) -m pip install -q --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The scheduler's and the simulator's hot modules compiled with mypyc (zhisuan/native.py lists them; a no-op when
# the build matches the sources, and zhisuan runs the Python source whenever it does not).
native: $(STAMP)
	$(PY) tools/compile.py

install: $(STAMP) native

demo: install
	$(VENV)/bin/zhisuan demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests tools
	$(VENV)/bin/lint-imports --no-cache

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The tests run against real daemons that this target starts on loopback and stops afterwards:
# PostgreSQL (scripts/postgres-up.sh), two Slurm clusters (scripts/slurm-up.sh, each in a network namespace of its
# own) and a Ray head (scripts/ray-up.sh); the agent tests make namespaces of their own (scripts/wan-up.sh);
# the dashboard tests drive Debian's Chromium (scripts/chromium-install.sh) with Playwright; the gateway's
# real-backend test runs llama-cpp-python's server, built from source into .venv-llama (scripts/llama-ensure.sh).
# The single sign-on tests run a real OpenID provider with Node.js (scripts/oidc-ensure.sh: oidc-provider from npm).
# pytest exits 5 when it collected no tests: that is a failure here, not a pass.
PG_ROOT ?= /tmp/zhisuan-pg
SLURM_ROOT ?= /tmp/zhisuan-slurm
RAY_ROOT ?= /tmp/zhisuan-ray
export ZHISUAN_APT_RECORD := $(CURDIR)/.apt-ensured
test: install lint typecheck
	rm -f $(ZHISUAN_APT_RECORD)
	bash scripts/postgres-up.sh
	ZHISUAN_SLURM_ROOT=$(SLURM_ROOT) bash scripts/slurm-up.sh
	ZHISUAN_RAY_ROOT=$(RAY_ROOT) ZHISUAN_RAY_PY=$(PY) bash scripts/ray-up.sh
	bash scripts/chromium-install.sh
	bash scripts/apt-ensure.sh prometheus faketime iproute2 wrk
	bash scripts/apt-ensure.sh g++ cmake ninja-build
	bash scripts/llama-ensure.sh >/dev/null
	bash scripts/oidc-ensure.sh >/dev/null
	bash scripts/apt-versions.sh $(ZHISUAN_APT_RECORD)
	. $(PG_ROOT)/env.sh; . $(RAY_ROOT)/env.sh; ZHISUAN_TEST_OIDC=$$(bash scripts/oidc-ensure.sh) ZHISUAN_TEST_LLAMA=$$(bash scripts/llama-ensure.sh) ZHISUAN_TEST_RAY=$$RAY_ADDRESS ZHISUAN_TEST_RAY_CLIENT=$$ZHISUAN_RAY_CLIENT ZHISUAN_TEST_SLURM=$(SLURM_ROOT) \
	  $(PY) -m pytest -q --durations=30; rc=$$?; \
	  bash scripts/postgres-down.sh; ZHISUAN_SLURM_ROOT=$(SLURM_ROOT) bash scripts/slurm-down.sh; \
	  ZHISUAN_RAY_ROOT=$(RAY_ROOT) bash scripts/ray-down.sh; bash scripts/wan-down.sh; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

bench: install
	$(VENV)/bin/zhisuan bench scheduler

# LiteLLM's proxy in a virtualenv of its own (its pins stay out of ours), for `zhisuan bench gateway`.
LITELLM_STAMP := .venv-litellm/.installed-$(shell cat locks/pip.txt locks/litellm.txt | sha256sum | cut -c1-16)
litellm: $(LITELLM_STAMP)
$(LITELLM_STAMP):
	$(PYTHON) -m venv --clear .venv-litellm
	.venv-litellm/bin/pip install -q --require-hashes --no-deps -r locks/pip.txt
	.venv-litellm/bin/pip install -q --require-hashes --no-deps -r locks/litellm.txt
	touch $@

# Re-resolve the locks from pyproject.toml and locks/*.in with uv (itself locked): the pins already in a lock
# are kept where they still satisfy it; `make lock UPGRADE=--upgrade` takes the newest releases instead.
# CPython 3.11 on x86-64 Linux, the machines `make test` runs on; every file of a release is hashed.
UPGRADE ?=
COMPILE = $(VENV)/bin/uv pip compile -q $(UPGRADE) --generate-hashes --python-version 3.11 \
	--python-platform x86_64-unknown-linux-gnu --custom-compile-command 'make lock'
lock: $(STAMP)
	$(COMPILE) pyproject.toml locks/tools.in --extra dev -o locks/zhisuan.txt
	$(COMPILE) locks/pip.in -c locks/zhisuan.txt -o locks/pip.txt
	$(COMPILE) locks/litellm.in -o locks/litellm.txt
	$(COMPILE) locks/llama-build.in -o locks/llama-build.txt
	$(COMPILE) locks/llama.in -c locks/llama-build.txt -o locks/llama.txt

clean:
	rm -rf $(VENV) .venv-litellm .venv-llama .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
	find src -name "*.so" -delete; rm -f src/zhisuan/_compiled.json
