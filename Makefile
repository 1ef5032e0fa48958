# Two commands on a fresh machine: `make demo` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PROTOS := $(wildcard proto/clearinghouse/v1/*.proto)
GENERATED := gen/.generated

.PHONY: demo test soak bench proto lint clean venv docs

demo: $(GENERATED)
	$(VENV)/bin/clearing-admin demo

# Two pytest-xdist workers, one test module at a time each (a module's own stack stays on one worker);
# `make test TEST_WORKERS=0` runs the suite in one process. Tests marked `serial` compare latencies, which
# another worker's load would blur: they run after the others, alone.
TEST_WORKERS ?= 2
test: $(GENERATED) lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not serial"
	$(PY) -m pytest -m serial

# Five minutes of discharges while services are SIGKILLed every few seconds and links cut and
# delayed; prints the counts and every invariant (services/faults). Exit 1 if one fails.
soak: $(GENERATED)
	$(VENV)/bin/clearing-admin simulate --seed 1 --faults --duration 300

bench: $(GENERATED)
	$(PY) -m services.bench

proto: $(GENERATED)

# Generated parts of the docs (a unit test fails while they are stale): the authorisation table in
# docs/security.md, and docs/api.md, the API reference, from the protos' comments.
docs: $(GENERATED)
	$(PY) -m services.security.policy docs/security.md
	$(PY) -m services.common.api_docs docs/api.md

venv: $(INSTALLED)

# The virtualenv is rebuilt when pyproject.toml changes. gen/ goes on its import path via a .pth
# file because generated modules import each other as `clearinghouse.v1.*` (TOOLCHAIN.md).
$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	echo "$(CURDIR)/gen" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/clearinghouse_gen.pth"
	touch $@

$(GENERATED): $(INSTALLED) $(PROTOS) Makefile
	rm -rf gen && mkdir -p gen
	$(PY) -m grpc_tools.protoc -I proto --python_out=gen --grpc_python_out=gen --pyi_out=gen $(PROTOS)
	# The same files with their comments, for reflection to serve (services/common/descriptors.py).
	$(PY) -m grpc_tools.protoc -I proto --include_imports --include_source_info \
		--descriptor_set_out=gen/clearinghouse/v1/descriptors.binpb $(PROTOS)
	touch $@

lint: $(INSTALLED)
	cd proto && ../$(VENV)/bin/buf lint

clean:
	rm -rf gen var .hypothesis
