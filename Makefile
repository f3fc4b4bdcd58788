# Attune. `make run` starts every role against the local PostgreSQL; `make test` runs every
# test with the race detector.

SHELL     := /bin/bash
GO        ?= go
BIN       := bin/attune
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X github.com/attune-go/attune/app.version=$(VERSION) -X github.com/attune-go/attune/app.commit=$(COMMIT)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Tests find PostgreSQL and RabbitMQ through ATTUNE_TEST_DATABASE_URL and ATTUNE_TEST_AMQP_URL.
# When they are unset and the services answer on their usual local ports, use those; otherwise
# the tests try testcontainers and skip without a Docker engine (they fail instead under CI=true).
ifeq ($(ATTUNE_TEST_DATABASE_URL),)
  ifneq ($(shell (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && echo up),)
    export ATTUNE_TEST_DATABASE_URL := postgres://127.0.0.1:5432/postgres?sslmode=disable
  endif
endif
ifeq ($(ATTUNE_TEST_AMQP_URL),)
  ifneq ($(shell (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && echo up),)
    export ATTUNE_TEST_AMQP_URL := amqp://guest:guest@127.0.0.1:5672/
  endif
endif

.PHONY: help build run test test-broker-restart test-faults test-cluster ui-screenshots lint bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

build: ## build bin/attune
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) .

run: build ## run every role in one process against the local PostgreSQL (in-process broker)
	./$(BIN) serve --roles=all

test: ## run every test with the race detector
	$(GO) test -race -count=1 -timeout 15m ./...

test-broker-restart: ## stop and start the local RabbitMQ under running tests (alone: it disturbs everything else)
	ATTUNE_TEST_RESTART_BROKER=1 $(GO) test -race -count=1 -p 1 -run 'RabbitMQRestart' ./app/ ./broker/amqpbroker/

test-faults: ## the fault suite: kills, restarts and outages under load, on a PostgreSQL and a RabbitMQ of its own (see docs/reliability.md)
	ATTUNE_TEST_FAULTS=1 $(GO) test -count=1 -v -timeout 20m -run '^TestFaults$$' ./app/

test-cluster: ## a three-node RabbitMQ cluster of its own with quorum queues, one node crashed under load (see docs/reliability.md)
	ATTUNE_TEST_CLUSTER=1 $(GO) test -count=1 -v -timeout 10m -run '^TestSurvivesANodeCrash$$' ./broker/amqpbroker/
	ATTUNE_TEST_CLUSTER=1 $(GO) test -count=1 -v -timeout 10m -run '^TestRabbitMQCluster$$' ./app/

ui-screenshots: ## take the web UI's screenshots in docs/ui with the browser tests (needs Chromium)
	ATTUNE_UI_SCREENSHOTS=$(CURDIR)/docs/ui $(GO) test -count=1 -run 'TestUI' ./app/

lint: ## gofmt, go vet, staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt wants to rewrite:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

comma := ,
BENCH_BROKERS := inprocess$(if $(ATTUNE_TEST_AMQP_URL),$(comma)rabbitmq)

bench: build ## run the Go benchmarks, then attune bench through the whole pipeline (see docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./...
	./$(BIN) bench --brokers $(BENCH_BROKERS) --events 5000
	./$(BIN) bench --brokers $(BENCH_BROKERS) --backlog 20000
	./$(BIN) bench --brokers $(BENCH_BROKERS) --workflow

clean: ## remove build output
	rm -rf bin
