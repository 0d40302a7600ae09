# btclient: `make demo` shows a local swarm sharing a file through the overlay;
# `make test` runs every test (installing what the tests need first).

SHELL     := /bin/bash
GO        ?= go
BIN       := bin
# The short pass counts executions: a -fuzztime duration races Go 1.26's
# fuzz coordinator at the deadline (golang/go#75804) and fails with a bare
# "context deadline exceeded"; a count has no deadline to race.
FUZZTIME  ?= 100000x
FUZZLONG  ?= 10m
PKGS      := ./...

.PHONY: all build image test deps lint unit e2e chaos fuzz-short fuzz demo docker-e2e bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/btclient ./cmd/btclient

# The Docker image (btclient:latest, FROM scratch) in one step: the script
# builds the static binary first.
image:
	./scripts/swarm-e2e.sh image

deps:
	./scripts/install-test-deps.sh

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet $(PKGS)
	$(BIN)/staticcheck $(PKGS)

# Unit tests of every package, with the race detector.
unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)
	# The index's million-name flood, too slow under -race (which floods a tenth).
	$(GO) test -count=1 -run '^TestHostilePublisherCannotDrownTheIndex$$' ./index/

# Real processes on loopback: btclient against itself and real clients
# (the chaos tests run through scripts/chaos.sh below).
e2e:
	$(GO) test -count=1 -timeout 20m -v -skip '^TestChaos' ./e2e/ 2>&1 | tee /tmp/btclient-e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|measured:|convergence' ; \
	status=$${PIPESTATUS[0]}; \
	if [ $$status -ne 0 ]; then \
		echo '--- the failing tests in full (all of it: /tmp/btclient-e2e.log) ---'; \
		awk '/^=== RUN/ {buf = ""} {buf = buf $$0 "\n"} /^ *--- FAIL/ {printf "%s", buf; buf = ""}' /tmp/btclient-e2e.log; \
	fi; \
	exit $$status

# A short pass of every fuzz target (make fuzz runs them for FUZZLONG each).
fuzz-short:
	./scripts/fuzz.sh $(FUZZTIME)

fuzz:
	./scripts/fuzz.sh $(FUZZLONG)

# The seed's reliability promises under churn, short variant, as a table.
chaos:
	./scripts/chaos.sh --short

docker-e2e:
	./scripts/swarm-e2e.sh

test: deps lint unit fuzz-short e2e chaos docker-e2e

demo: build
	./scripts/demo.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./peerwire/ ./swarm/ ./storage/

clean:
	rm -rf $(BIN)
