# Homing — the two commands a new machine needs are `make run` and `make test`.
GO        ?= go
BIN       := bin
HOMING    := $(BIN)/homing
PKGS      := ./...
# Benchmark parameters (make bench N=50000 C=20 SIZE=4096 ACCOUNTS=500)
N        ?= 20000
C        ?= 20
SIZE     ?= 4096
ACCOUNTS ?= 500

.PHONY: build run cluster test bench bench-cluster bench-imap soak fuzz proto vet fmt clean

# -buildvcs=auto: homing version names the commit when built in a git
# clone (a GOFLAGS=-buildvcs=false of the environment would drop it).
build:
	$(GO) build -buildvcs=auto -o $(HOMING) ./cmd/homing
	$(GO) build -o $(BIN)/homing-load ./cmd/homing-load
	$(GO) build -o $(BIN)/homing-filter-example ./cmd/homing-filter-example
	$(GO) build -o $(BIN)/homing-imap-bench ./cmd/homing-imap-bench

# The default single node: data under ./data, SMTP 127.0.0.1:2525, admin and
# console 127.0.0.1:8025, and the demo account (--demo: only here and in
# homing dev, never by default).
run: build
	$(HOMING) serve --demo

# A local cluster of real processes: 1 frontend, 2 backends (Ctrl-C stops it).
cluster: build
	$(HOMING) dev

# Unit and integration tests (real SMTP on loopback, real badger, real
# processes). The second run is the in-process cluster tests of testkit,
# which cannot run under -race: protoactor's remote has data races when
# several nodes share one process (files tagged !race).
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -shuffle=on -timeout 25m $(PKGS)
	$(GO) test -shuffle=on -timeout 5m ./testkit

# MODE=single (one node), cluster (1 frontend + 2 backends as three
# processes on loopback) or both (default).
MODE ?= both
bench: build
ifneq ($(MODE),cluster)
	$(BIN)/homing-load --spawn $(HOMING) --n $(N) --c $(C) --size $(SIZE) --accounts $(ACCOUNTS) --smtp-source
endif
ifneq ($(MODE),single)
	$(BIN)/homing-load --spawn $(HOMING) --cluster --n $(N) --c $(C) --size $(SIZE) --accounts $(ACCOUNTS)
endif

bench-cluster:
	$(MAKE) bench MODE=cluster

# IMAP side by side with Dovecot (Debian's dovecot-imapd, started by the
# benchmark on loopback with its own configuration, not as a service):
# SIZES-message mailboxes, ROUNDS rounds (CONC_ROUNDS of the concurrent
# loop), SESSIONS concurrent sessions;
# PPROF=FILE writes a CPU profile of Homing's concurrent loop.
SIZES    ?= 10000,100000
ROUNDS   ?= 5
CONC_ROUNDS ?= 3
SESSIONS ?= 50
PPROF    ?=
bench-imap: build
	@test -x /usr/sbin/dovecot || { echo "bench-imap needs Dovecot: apt-get install dovecot-imapd (the benchmark starts its own, on loopback; the system service is not used)"; exit 1; }
	$(BIN)/homing-imap-bench --homing $(HOMING) --dovecot /usr/sbin/dovecot --sizes $(SIZES) --rounds $(ROUNDS) --conc-rounds $(CONC_ROUNDS) --sessions $(SESSIONS) $(if $(PPROF),--pprof $(PPROF))

# The chaos soak with real processes (1 frontend + 2 backends; kill -9,
# restarts, SIGSTOP/SIGCONT while clients stream mail), DURATION per queue
# mode (make test runs it for 45s each); prints acknowledged, lost and
# duplicated.
DURATION ?= 5m
soak:
	HOMING_SOAK_DURATION=$(DURATION) $(GO) test ./node -run '^TestSoak$$' -count=1 -v -timeout 0 | grep -E 'soak (locally|remotely):|^(---|ok|FAIL)'

# Each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./mail -run '^$$' -fuzz FuzzParseAddress -fuzztime $(FUZZTIME)
	$(GO) test ./smtp -run '^$$' -fuzz '^FuzzSession$$' -fuzztime $(FUZZTIME)
	$(GO) test ./smtp -run '^$$' -fuzz '^FuzzEnvelopeRecord$$' -fuzztime $(FUZZTIME)
	$(GO) test ./smtp -run '^$$' -fuzz '^FuzzClusterAuth$$' -fuzztime $(FUZZTIME)
	$(GO) test ./cluster -run '^$$' -fuzz FuzzDecodeMeta -fuzztime $(FUZZTIME)
	$(GO) test ./rules -run '^$$' -fuzz '^FuzzParseHeader$$' -fuzztime $(FUZZTIME)
	$(GO) test ./rules -run '^$$' -fuzz '^FuzzEvaluate$$' -fuzztime $(FUZZTIME)
	$(GO) test ./rules -run '^$$' -fuzz '^FuzzAutoReply$$' -fuzztime $(FUZZTIME)
	$(GO) test ./filter -run '^$$' -fuzz FuzzParseResponse -fuzztime $(FUZZTIME)
	$(GO) test ./imap -run '^$$' -fuzz '^FuzzSession$$' -fuzztime $(FUZZTIME)
	$(GO) test ./summary -run '^$$' -fuzz FuzzCompute -fuzztime $(FUZZTIME)
	$(GO) test ./pop3 -run '^$$' -fuzz '^FuzzParseCommand$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pop3 -run '^$$' -fuzz '^FuzzSession$$' -fuzztime $(FUZZTIME)
	$(GO) test ./inbound -run '^$$' -fuzz FuzzHeaderFilter -fuzztime $(FUZZTIME)

# Regenerate protobuf code (needs protoc and protoc-gen-go; the output is committed).
proto:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc --go_out=. --go_opt=paths=source_relative actors/pb/actors.proto actors/pb/provision.proto

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w .

clean:
	rm -rf $(BIN)
