# agentbox: make demo runs the example agent in the full sandbox; make test runs everything,
# privileged suites included (as root). Each target installs only what it needs and a fresh
# Debian machine lacks (scripts/setup.sh <purpose>): the demo needs nothing beyond Go.

GO      ?= go
BIN     := bin/agentbox
# agentboxd is the daemon; agentbox-init is the sandbox child both start tasks from (it
# carries none of their client, server or NATS code).
BINS    := agentbox agentboxd agentbox-init
# The sandbox child re-executes this binary inside an empty root with no dynamic loader,
# so every binary that spawns tasks (agentbox and the test binaries) is built static.
export CGO_ENABLED := 0
# Privileged suites may not skip here: a skip under this variable is a failure.
export AGENTBOX_REQUIRE_PRIVILEGED := 1
# Landlock is best effort in the sandbox, but hosts of the kind this project targets have it
# (Linux 5.19+ with landlock in lsm=): its tests may not skip here either. On an older
# kernel: make test AGENTBOX_REQUIRE_LANDLOCK=0. The cgroup-v2 VM decides on its own.
AGENTBOX_REQUIRE_LANDLOCK ?= 1
export AGENTBOX_REQUIRE_LANDLOCK

EXAMPLES := examples/hello/hello.wasm examples/jsonagent/jsonagent.wasm
# A count, not a duration: Go 1.26's fuzz coordinator can fail a target at the end of a
# -fuzztime duration with a bare "context deadline exceeded" and no crasher (golang/go#75804,
# fixed in 1.27; seen here on FuzzWASICalls). A count has no such deadline.
FUZZTIME ?= 3000x
RACE_PKGS := ./supervisor/ ./supervisor/sched/ ./supervisor/task/ ./supervisor/store/ ./supervisor/api/ ./supervisor/client/ ./supervisor/metrics/

.PHONY: all setup build demo test test-unit test-cgroupv2 check generate examples fuzz fuzz-long bench load soak mutate clean

all: build

# Everything every target needs; each target below asks only for its own part.
setup:
	@bash scripts/setup.sh

# -buildvcs=auto: `agentbox version` names the commit even where GOFLAGS turns VCS stamping
# off (this machine's go env does); auto leaves it out, not fails, outside a git checkout.
# All three from one tree in one go: the child must be the same build as its parent.
build:
	for b in $(BINS); do $(GO) build -trimpath -buildvcs=auto -o bin/$$b ./cmd/$$b || exit 1; done

# The demo: the hello agent, then the JSON agent fed a task on stdin, each in the sandbox;
# then the same agents through agentboxd on a temporary socket. The example modules are
# committed, so the demo builds nothing but bin/.
demo:
	@bash scripts/setup.sh demo
	$(MAKE) build
	@echo '== agentbox check'
	./$(BIN) check
	@echo '== agentbox run examples/hello/hello.wasm -- alice bob'
	./$(BIN) run examples/hello/hello.wasm -- alice bob
	@echo '== agentbox run --json --stdin examples/jsonagent/task.json examples/jsonagent/jsonagent.wasm'
	./$(BIN) run --json --memory 128Mi --stdin examples/jsonagent/task.json examples/jsonagent/jsonagent.wasm
	bash scripts/demo-daemon.sh

test: setup check test-unit fuzz test-cgroupv2

test-unit: build
	@bash scripts/setup.sh unit
	$(GO) test -count=1 $$($(GO) list ./... | grep -v '/test/load$$')
	# The sandbox and security suites again, every task they can in a warm pool's child
	# (privtest.WarmPool): each wall shown for a child started for its task and for one
	# that waited for it.
	AGENTBOX_TEST_WARM_POOL=2 $(GO) test -count=1 ./sandbox/ ./test/security/
	# And the security suite a third time, every task it can in a hot child made for it
	# (privtest.Hot): past its exec and behind its filter before the task came.
	AGENTBOX_TEST_HOT=1 $(GO) test -count=1 ./test/security/
	# The load test alone: 120 agents at once would starve the timing-sensitive tests of
	# other packages that go test runs beside it.
	$(GO) test -count=1 ./test/load/
	# The policy generator's own tests need libseccomp (cgo).
	CGO_ENABLED=1 $(GO) test -count=1 ./seccomp/
	# The daemon's packages under the race detector. It needs cgo, and a sandbox child must be
	# static: the service's tests spawn their tasks from a separately built agentbox-init.
	CGO_ENABLED=1 $(GO) test -race -count=1 $(RACE_PKGS)

# Every generated file must be current: test modules, examples, the seccomp program. The
# second vet builds for a laptop: Linux-only code stays in _linux.go files behind stubs.
check:
	@bash scripts/setup.sh check
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	bash scripts/build-wat.sh --check
	bash scripts/check-generated.sh

generate:
	@bash scripts/setup.sh check
	bash scripts/build-wat.sh
	$(MAKE) examples
	CGO_ENABLED=1 $(GO) generate ./seccomp/

examples:
	for d in hello jsonagent; do GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -ldflags=-s -o examples/$$d/$$d.wasm ./examples/$$d; done

# Short fuzzing of every decoder of untrusted bytes (CI); fuzz-long for a real session.
fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

fuzz-long:
	bash scripts/fuzz.sh 10m

test-cgroupv2:
	@bash scripts/setup.sh vm
	bash test/vm/cgroupv2.sh

# The benchmark suite of issue 9 and its report, bench/REPORT.md (scripts/bench.sh): about
# 6 minutes, as root. Benchmarks only: `make test` runs none of them.
bench:
	@bash scripts/setup.sh bench
	$(MAKE) build
	bash scripts/bench.sh

# Load and soak through agentboxd (test/load, as root): AGENTS concurrent agents, every
# verdict checked, then a leak check of the daemon and the host; the soak submits the
# mixed load for DURATION and fails on a steady rise of RSS, fds or goroutines.
AGENTS   ?= 120
DURATION ?= 10m
load:
	AGENTBOX_LOAD_AGENTS=$(AGENTS) $(GO) test -count=1 -v -timeout 60m -run TestLoadConcurrentAgents ./test/load/

soak:
	AGENTBOX_SOAK=$(DURATION) $(GO) test -count=1 -v -timeout 0 -run TestSoak ./test/load/

# Every wall removed in turn (scripts/mutate/mutants.go), each in a copy of the working tree:
# the suite must fail for every one. Slow (about an hour and a half), so not part of test;
# MUTANTS="close-fds no-seccomp" runs only those. libseccomp: policy mutants regenerate
# the embedded seccomp programs.
mutate:
	@bash scripts/setup.sh unit
	MUTANTS="$(MUTANTS)" bash scripts/mutate.sh

clean:
	rm -rf bin
