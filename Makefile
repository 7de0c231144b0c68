# Homing — the two commands a new machine needs are `make run` and `make test`.
GO        ?= go
BIN       := bin
HOMING    := $(BIN)/homing
PKGS      := ./...
# Benchmark parameters (make bench N=50000 C=20 SIZE=4096 ACCOUNTS=500 ROUNDS=3)
N        ?= 20000
C        ?= 20
SIZE     ?= 4096
ACCOUNTS ?= 500

.PHONY: build run cluster test bench bench-big bench-scale bench-cluster bench-imap soak fuzz proto vet fmt clean

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

# Side by side in one run (cmd/homing-load --targets): the same load
# client against a spawned Homing node, a private Postfix instance the
# benchmark sets up (virtual Maildirs, its normal fsyncs; needs root and
# Debian's postfix) and smtp-sink (the protocol's ceiling), in ROUNDS
# interleaved rounds, each on a fresh instance; then Homing paced at half
# its median rate. Prints every round, the medians and the ratios with
# issue #14's goals (JSON=1: as JSON).
# MODE=both (default) adds the cluster (1 frontend + 2 backends as three
# processes on loopback) to the rounds and prints cluster/single;
# MODE=single leaves it out; MODE=cluster is the cluster run alone.
MODE   ?= both
JSON   ?=
# ROUNDS is also bench-imap's (default 5 there): 3 here unless given.
BENCH_ROUNDS := $(if $(filter command line environment environment override,$(origin ROUNDS)),$(ROUNDS),3)
ifeq ($(MODE),both)
BENCH_TARGETS := homing,cluster,postfix,sink
else
BENCH_TARGETS := homing,postfix,sink
endif
bench: build
ifneq ($(MODE),cluster)
	$(BIN)/homing-load --spawn $(HOMING) --targets $(BENCH_TARGETS) --rounds $(BENCH_ROUNDS) --n $(N) --c $(C) --size $(SIZE) --accounts $(ACCOUNTS) $(if $(JSON),--json)
else
	$(BIN)/homing-load --spawn $(HOMING) --cluster --n $(N) --c $(C) --size $(SIZE) --accounts $(ACCOUNTS) $(if $(JSON),--json)
endif

bench-cluster:
	$(MAKE) bench MODE=cluster

# Large messages beside Postfix (issue #14's targets 2: MB/s): BIG_N
# messages of 5 MiB, then SMALL_N of 100 KiB, each over C sessions in
# ROUNDS interleaved rounds.
BIG_N   ?= 200
SMALL_N ?= 2000
bench-big: build
	$(BIN)/homing-load --spawn $(HOMING) --targets homing,postfix --half-load=false --rounds $(BENCH_ROUNDS) --n $(BIG_N) --c $(C) --size 5242880 --accounts $(ACCOUNTS) $(if $(JSON),--json)
	$(BIN)/homing-load --spawn $(HOMING) --targets homing,postfix --half-load=false --rounds $(BENCH_ROUNDS) --n $(SMALL_N) --c $(C) --size 102400 --accounts $(ACCOUNTS) $(if $(JSON),--json)

# Issue #14's scale targets, each a spawned node measured from /proc
# (RSS, peak RSS, CPU per message): SCALE_N messages to ACCOUNTS accounts,
# then the same to one account (one mailbox growing to SCALE_N: its rate
# against the first's), then SCALE_ACCOUNTS accounts with one message each
# and the idle node's CPU once every partition has closed its data.
SCALE_N        ?= 50000
SCALE_ACCOUNTS ?= 100000
bench-scale: build
	$(BIN)/homing-load --spawn $(HOMING) --n $(SCALE_N) --c $(C) --size $(SIZE) --accounts $(ACCOUNTS) $(if $(JSON),--json)
	$(BIN)/homing-load --spawn $(HOMING) --n $(SCALE_N) --c $(C) --size $(SIZE) --accounts 1 $(if $(JSON),--json)
	$(BIN)/homing-load --spawn $(HOMING) --n $(SCALE_ACCOUNTS) --c $(C) --size $(SIZE) --accounts $(SCALE_ACCOUNTS) --timeout 30m \
		--idle 30s --serve-arg=--account-idle=10s --serve-arg=--partition-idle=10s $(if $(JSON),--json)

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
	$(GO) test ./summary -run '^$$' -fuzz '^FuzzCompute$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pop3 -run '^$$' -fuzz '^FuzzParseCommand$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pop3 -run '^$$' -fuzz '^FuzzSession$$' -fuzztime $(FUZZTIME)
	$(GO) test ./inbound -run '^$$' -fuzz FuzzHeaderFilter -fuzztime $(FUZZTIME)
	$(GO) test ./inbound -run '^$$' -fuzz FuzzFromField -fuzztime $(FUZZTIME)
	$(GO) test ./smtp -run '^$$' -fuzz '^FuzzFastDataReader$$' -fuzztime $(FUZZTIME)
	$(GO) test ./summary -run '^$$' -fuzz '^FuzzDecodeEnvelope$$' -fuzztime $(FUZZTIME)
	$(GO) test ./summary -run '^$$' -fuzz '^FuzzEnvelopeDate$$' -fuzztime $(FUZZTIME)
	$(GO) test ./storage -run '^$$' -fuzz '^FuzzDecodeFolder$$' -fuzztime $(FUZZTIME)
	$(GO) test ./mtasts -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)

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
