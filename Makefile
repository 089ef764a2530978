# rtmphub — common tasks. `make test` is what CI runs (.ci/run).

GO       ?= go
BIN      ?= bin/rtmphub
# `make fuzz`: time per target, bound on minimizing a new input, workers
# per target (empty: GOMAXPROCS), and a regular expression of the targets
# to run, matched against "<dir> <target>" (see scripts/fuzz.sh).
FUZZTIME ?= 20s
FUZZMINIMIZETIME ?= 5s
FUZZPARALLEL ?=
FUZZTARGETS ?= .
# Extra flags for `make bench`, e.g. BENCHFLAGS="-players 100,500".
BENCHFLAGS ?=
# The golangci-lint that `make lint` runs: where scripts/install-test-tools.sh
# puts the pinned version (GOBIN, else the first GOPATH entry's bin).
GOLANGCI_LINT ?= $(or $(shell $(GO) env GOBIN),$(firstword $(subst :, ,$(shell $(GO) env GOPATH)))/bin)/golangci-lint

.PHONY: all build test tools vet lint unit e2e e2e-race bench fuzz clean

all: build

## build: the server binary in bin/
build:
	$(GO) build -o $(BIN) ./cmd/rtmphub

## tools: install golangci-lint (go install) and the external tools the e2e
##        tests drive (apt-get)
tools:
	GO='$(GO)' bash ./scripts/install-test-tools.sh

## vet: go vet every package
vet:
	$(GO) vet ./...

## lint: golangci-lint over the whole module, tests included (.golangci.yml);
##       installs the pinned version first if it is missing
lint:
	GO='$(GO)' bash ./scripts/install-test-tools.sh golangci-lint
	$(GOLANGCI_LINT) run ./...

## test: tools, vet, lint, then every unit and e2e test with the race detector
test: tools vet lint
	$(GO) test -race -count=1 -timeout 20m ./...

## unit: the tests without the e2e suite
unit:
	$(GO) test -race -count=1 -short ./...

## e2e: only the end-to-end suite, verbose
e2e: tools
	$(GO) test -race -count=1 -timeout 20m -v ./e2e/

## e2e-race: the end-to-end suite against a server built with -race
e2e-race: tools
	RTMPHUB_E2E_RACE=1 $(GO) test -race -count=1 -timeout 20m -v ./e2e/

## bench: the load benchmark (cmd/rtmpbench)
bench:
	$(GO) run ./cmd/rtmpbench $(BENCHFLAGS)

## fuzz: every Fuzz* target (or those FUZZTARGETS matches) for FUZZTIME each,
##       FUZZPARALLEL workers; e.g. make fuzz FUZZTARGETS=session FUZZPARALLEL=1
fuzz:
	FUZZTIME='$(FUZZTIME)' FUZZMINIMIZETIME='$(FUZZMINIMIZETIME)' FUZZPARALLEL='$(FUZZPARALLEL)' \
		FUZZTARGETS='$(FUZZTARGETS)' GO='$(GO)' bash ./scripts/fuzz.sh

clean:
	rm -rf bin
