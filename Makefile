# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs into .venv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint typecheck bench litellm clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
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
# pytest exits 5 when it collected no tests: that is a failure here, not a pass.
PG_ROOT ?= /tmp/zhisuan-pg
SLURM_ROOT ?= /tmp/zhisuan-slurm
RAY_ROOT ?= /tmp/zhisuan-ray
test: lint typecheck
	bash scripts/postgres-up.sh
	ZHISUAN_SLURM_ROOT=$(SLURM_ROOT) bash scripts/slurm-up.sh
	ZHISUAN_RAY_ROOT=$(RAY_ROOT) ZHISUAN_RAY_PY=$(PY) bash scripts/ray-up.sh
	bash scripts/chromium-install.sh
	bash scripts/apt-ensure.sh prometheus faketime iproute2
	bash scripts/apt-ensure.sh g++ cmake
	bash scripts/llama-ensure.sh >/dev/null
	. $(PG_ROOT)/env.sh; . $(RAY_ROOT)/env.sh; ZHISUAN_TEST_LLAMA=$$(bash scripts/llama-ensure.sh) ZHISUAN_TEST_RAY=$$RAY_ADDRESS ZHISUAN_TEST_RAY_CLIENT=$$ZHISUAN_RAY_CLIENT ZHISUAN_TEST_SLURM=$(SLURM_ROOT) \
	  $(PY) -m pytest -q; rc=$$?; \
	  bash scripts/postgres-down.sh; ZHISUAN_SLURM_ROOT=$(SLURM_ROOT) bash scripts/slurm-down.sh; \
	  ZHISUAN_RAY_ROOT=$(RAY_ROOT) bash scripts/ray-down.sh; bash scripts/wan-down.sh; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

bench: $(STAMP)
	$(VENV)/bin/zhisuan bench scheduler

# LiteLLM's proxy in a virtualenv of its own (its pins stay out of ours), for `zhisuan bench gateway`.
litellm: .venv-litellm/bin/litellm
.venv-litellm/bin/litellm:
	$(PYTHON) -m venv .venv-litellm
	.venv-litellm/bin/pip install -q 'litellm[proxy]'

clean:
	rm -rf $(VENV) .venv-litellm .venv-llama .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
