# podid: `make run` starts everything on this machine; `make test` runs the test suite.
SHELL := /bin/bash
export PODID_DATA_DIR ?= .podid

.PHONY: run test conformance build spec-check

build:
	swift build --product podid

# Builds podid and runs `podid dev`: a private PostgreSQL (unless PODID_DATABASE_URL is set),
# migrations, an admin token and the API on 127.0.0.1:8080. Ctrl-C stops all of it.
run: build
	exec "$$(swift build --show-bin-path)/podid" dev

# Installs what the tests need, starts a throwaway PostgreSQL and runs `swift test`.
test:
	scripts/test

# The Kubernetes scenarios against the simulator and a real kube-apiserver (built from Debian's
# source package on first use, then cached): scripts/conformance.
conformance:
	scripts/conformance

# Validates openapi.yaml with an independent validator.
spec-check:
	scripts/test-deps
	.venv/bin/openapi-spec-validator openapi.yaml
