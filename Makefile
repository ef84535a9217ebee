# spillway — one Makefile for the collector, its tools, tests and benchmarks.
#
#   make            build/spillway, build/spillway-mockup, build/spillway-loadgen
#   make deps       install missing Debian packages (no-op when all present)
#   make test       deps + build + every test; last line "N passed, N failed"
#   make SANITIZE=address,undefined test     the same under ASan/UBSan
#   make asan-test  make tsan-test           sanitizer passes in build-asan/, build-tsan/ (.ci/run)
#   make fuzz       libFuzzer targets (clang) into build/fuzz/
#   make bench      benchmarks, report in bench/report.md
#   make scenarios  fault scenarios, full length (~10 min), verdict table
#   make run        start spillway with configs/spillway.yaml

.DEFAULT_GOAL := all

CC       ?= gcc
BUILD    ?= build
GEN      := $(BUILD)/gen
OBJ      := $(BUILD)/obj
PKGS     := libevent libevent_pthreads libevent_openssl libprotobuf-c libzstd \
            openssl yaml-0.1 zlib json-c
PKGS     += libnghttp2
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
XCFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers \
            -I. -I$(GEN) -MMD -MP -pthread
LDLIBS   := -pthread -lm
ifneq ($(strip $(SANITIZE)),)
XCFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=$(SANITIZE)
endif
ALLCFLAGS = $(CFLAGS) $(XCFLAGS) $(PKG_CFLAGS)

VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GITREV   := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
VERSION_DEFS := -DSW_VERSION='"$(VERSION)"' -DSW_GITREV='"$(GITREV)"'
# Only the files that print the version see it, so a new commit does not
# rebuild everything.
VERSIONED := $(OBJ)/runtime/metrics.o $(OBJ)/exporters/otlp/exp_http.o $(OBJ)/cmd/spillway.o \
             $(OBJ)/cmd/spillway_mockup.o $(OBJ)/testing/unit/test_metrics.o
$(VERSIONED): XCFLAGS += $(VERSION_DEFS)
$(VERSIONED): $(BUILD)/.version
$(BUILD)/.version: FORCE
	@mkdir -p $(BUILD)
	@if [ "$$(cat $@ 2>/dev/null)" != '$(VERSION_DEFS)' ]; then echo '$(VERSION_DEFS)' > $@; fi

LIB_DIRS  := runtime config receivers/otlp processors queue dlq exporters/otlp
LIB_DIRS  += pipeline
LIB_DIRS  += receivers/filelog
LIB_SRCS  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
PROTOS    := $(shell find proto -name '*.proto' | sort)
PB_SRCS   := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
LIB_OBJS  := $(patsubst %.c,$(OBJ)/%.o,$(LIB_SRCS) $(PB_SRCS))
TH_SRCS   := $(wildcard testing/lib/*.c)
TH_OBJS   := $(patsubst %.c,$(OBJ)/%.o,$(TH_SRCS))

BINS      := $(BUILD)/spillway $(BUILD)/spillway-mockup
ifneq ($(wildcard cmd/spillway_loadgen.c),)
BINS      += $(BUILD)/spillway-loadgen
endif

UNIT_SRCS  := $(wildcard testing/unit/test_*.c)
UNIT_BINS  := $(patsubst testing/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
ITEST_SRCS := $(wildcard testing/integration/itest_*.c)
ITEST_BINS := $(patsubst testing/integration/%.c,$(BUILD)/tests/integration/%,$(ITEST_SRCS))
FUZZ_SRCS  := $(wildcard testing/fuzz/fuzz_*.c)
REPLAY_BINS:= $(patsubst testing/fuzz/fuzz_%.c,$(BUILD)/tests/fuzz/replay_%,$(FUZZ_SRCS))
FUZZ_BINS  := $(patsubst testing/fuzz/fuzz_%.c,$(BUILD)/fuzz/fuzz_%,$(FUZZ_SRCS))

.PHONY: all deps test unit-test integration-test fuzz fuzz-run bench bench-floor bench-linger run demo scenarios clean valgrind-test
all: $(BINS)

deps:
	@sh mk/deps.sh

# Rebuild everything when the compiler flags change (e.g. SANITIZE=...).
FLAGS_STAMP := $(BUILD)/.flags
FLAGS_NOW   := $(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS)
$(FLAGS_STAMP): FORCE
	@mkdir -p $(BUILD)
	@if [ "$$(cat $@ 2>/dev/null)" != '$(FLAGS_NOW)' ]; then echo '$(FLAGS_NOW)' > $@; fi
.PHONY: FORCE
FORCE:

# Generated protobuf-c code (never committed).
$(GEN)/.stamp: $(PROTOS)
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Iproto $(PROTOS)
	@touch $@
$(PB_SRCS): $(GEN)/.stamp

$(OBJ)/%.o: %.c $(FLAGS_STAMP) | $(GEN)/.stamp
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -c $< -o $@

$(BUILD)/libspillway.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/libth.a: $(TH_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/spillway: $(OBJ)/cmd/spillway.o $(BUILD)/libspillway.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)
MOCK_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(wildcard testing/mockup/*.c))
$(BUILD)/spillway-mockup: $(OBJ)/cmd/spillway_mockup.o $(MOCK_OBJS) $(BUILD)/libspillway.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)
LG_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(wildcard testing/loadgen/*.c))
$(BUILD)/spillway-loadgen: $(OBJ)/cmd/spillway_loadgen.o $(LG_OBJS) $(BUILD)/libspillway.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(BUILD)/tests/unit/%: $(OBJ)/testing/unit/%.o $(BUILD)/libth.a $(BUILD)/libspillway.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)
$(BUILD)/tests/integration/%: $(OBJ)/testing/integration/%.o $(BUILD)/libth.a $(BUILD)/libspillway.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)
# itest_sdk_js runs the OpenTelemetry JS SDK: npm ci of the pinned
# testing/sdk-js lockfile into BUILD/npm, once (again when it changes).
NPM_DIR := $(BUILD)/npm
$(NPM_DIR)/.stamp: testing/sdk-js/package.json testing/sdk-js/package-lock.json
	@mkdir -p $(NPM_DIR)
	cp testing/sdk-js/package.json testing/sdk-js/package-lock.json $(NPM_DIR)/
	cd $(NPM_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@
$(BUILD)/tests/integration/itest_sdk_js: | $(NPM_DIR)/.stamp
# Fuzz targets also build as plain replay programs over their corpus.
$(BUILD)/tests/fuzz/replay_%: $(OBJ)/testing/fuzz/fuzz_%.o $(OBJ)/testing/fuzz/replay_main.o $(BUILD)/libth.a $(BUILD)/libspillway.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

TEST_BINS := $(UNIT_BINS) $(REPLAY_BINS) $(ITEST_BINS)
test: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all $(TEST_BINS)
	@sh testing/run_tests.sh $(TEST_BINS)

unit-test: all $(UNIT_BINS) $(REPLAY_BINS)
	@sh testing/run_tests.sh $(UNIT_BINS) $(REPLAY_BINS)
integration-test: all $(ITEST_BINS)
	@sh testing/run_tests.sh $(ITEST_BINS)
valgrind-test: all $(UNIT_BINS) $(REPLAY_BINS)
	@SW_TEST_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
	    sh testing/run_tests.sh $(UNIT_BINS) $(REPLAY_BINS)

# libFuzzer builds (clang), separate object tree.
FUZZ_OBJ := $(BUILD)/fuzzobj
FUZZ_CFLAGS = -O1 -g -std=c11 -D_GNU_SOURCE -I. -I$(GEN) -fsanitize=fuzzer-no-link,address,undefined $(PKG_CFLAGS) -DSW_VERSION='"$(VERSION)"' -DSW_GITREV='"$(GITREV)"'
FUZZ_LIB_OBJS := $(patsubst %.c,$(FUZZ_OBJ)/%.o,$(LIB_SRCS) $(PB_SRCS))
$(FUZZ_OBJ)/%.o: %.c | $(GEN)/.stamp
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -c $< -o $@
$(BUILD)/fuzz/fuzz_%: $(FUZZ_OBJ)/testing/fuzz/fuzz_%.o $(FUZZ_LIB_OBJS)
	@mkdir -p $(dir $@)
	clang -fsanitize=fuzzer,address,undefined -o $@ $^ $(PKG_LIBS) $(LDLIBS)
fuzz: deps
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
# Run each fuzzer for FUZZ_SECONDS (default 30) from its corpus.
FUZZ_SECONDS ?= 30
fuzz-run: fuzz
	@for f in $(FUZZ_BINS); do n=$${f##*/fuzz_}; mkdir -p $(BUILD)/fuzz/corpus-$$n; \
	  $$f -max_total_time=$(FUZZ_SECONDS) $(BUILD)/fuzz/corpus-$$n testing/fuzz/corpus/$$n || exit 1; done

BENCH_SRCS := $(wildcard testing/bench/micro_*.c)
BENCH_BINS := $(patsubst testing/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))
$(BUILD)/bench/%: $(OBJ)/testing/bench/%.o $(BUILD)/libspillway.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

bench: deps all $(BENCH_BINS)
	@sh testing/bench/run_bench.sh

# spillway's CPU beside a bare forwarder of the same traffic (docs/performance.md).
$(BUILD)/bench/floor_fwd: $(OBJ)/testing/bench/floor_fwd.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
bench-floor: deps all $(BUILD)/bench/floor_fwd
	@sh testing/bench/floor.sh

bench-linger: deps all
	@sh testing/bench/linger.sh

scenarios: deps all
	@SW_BIN_DIR=$(BUILD) sh testing/scenarios/run.sh --full

demo: deps all
	@SW_BIN_DIR=$(BUILD) sh testing/scenarios/demo.sh $(DEMO_FLAGS)

# Container image built and run for real with podman (docs/deploy.md); .ci/run
# calls it after make test.
.PHONY: image-test lint-deploy
image-test: deps all
	@SW_BIN_DIR=$(BUILD) sh testing/deploy/image_test.sh
# Deployment files checked by the tools that read them (make test runs the
# same through itest_lint_deploy and itest_prometheus).
lint-deploy: deps all
	@SW_BIN_DIR=$(BUILD) sh testing/deploy/lint_deploy.sh && SW_BIN_DIR=$(BUILD) sh testing/deploy/prom_live.sh

# Bounded long runs (docs/testing.md): SOAK_SECONDS, DURABILITY_MODE,
# DURABILITY_ITEMS, DURABILITY_SECONDS.
.PHONY: soak durability
$(BUILD)/soak-hostile: $(OBJ)/testing/soak/hostile.o
	$(CC) $(LDFLAGS) -o $@ $^ -lz $(LDLIBS)
soak: deps all $(BUILD)/soak-hostile
	@SW_BIN_DIR=$(BUILD) sh testing/soak/soak.sh
durability: deps all
	@SW_BIN_DIR=$(BUILD) sh testing/soak/durability.sh

run: all
	$(BUILD)/spillway --config configs/spillway.yaml

clean:
	rm -rf $(BUILD)

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)

# Each fuzz target for FUZZ_SMOKE_SECONDS (default 5) from its checked-in
# corpus; new inputs go to build/fuzz/smoke-<name>/, never into the repo.
FUZZ_SMOKE_SECONDS ?= 5
.PHONY: fuzz-smoke attack
fuzz-smoke: fuzz
	@for f in $(FUZZ_BINS); do n=$${f##*/fuzz_}; d=$(BUILD)/fuzz/smoke-$$n; mkdir -p $$d; \
	  $$f -max_total_time=$(FUZZ_SMOKE_SECONDS) -print_final_stats=1 $$d \
	    testing/fuzz/corpus/$$n > $$d.log 2>&1; rc=$$?; \
	  echo "fuzz-smoke $$n: exit $$rc, $$(grep -o 'number_of_executed_units: *[0-9]*' $$d.log), $$(grep -o 'cov: [0-9]*' $$d.log | tail -1)"; \
	  if [ $$rc -ne 0 ]; then tail -40 $$d.log; exit 1; fi; done

# The attack integration test at the sizes of issue 14 (1,000 x 16 MiB
# announced, 300 x 16 MiB bodies, 10,000 idle connections, 10,000
# pipelined requests), bounded by ulimit -n; prints peak and after RSS.
attack: all $(BUILD)/tests/integration/itest_attack
	@SW_ATTACK_FULL=1 $(BUILD)/tests/integration/itest_attack

# Sanitizer passes (docs/testing.md, "Sanitizers"; .ci/run runs both):
# asan-test is the whole suite under ASan+UBSan in build-asan; tsan-test the
# tests that hand items between threads under ThreadSanitizer in build-tsan.
# TSAN_TESTS: queue, DLQ port/writer/journal, replay, exporter, pipeline,
# filelog, receiver ingest, and the threads reading shared counters.
# SW_TEST_SLOW (default 4 under a sanitizer) scales the tests' deadlines.
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
TSAN_TESTS := test_apq test_item_track test_dlq test_dlq_replay test_dlq_sink test_dlq_health \
              test_dlq_rejected test_exp_replay test_exp_delivery test_exporter test_pipeline \
              test_filelog
TSAN_TESTS += test_exp_poison test_exp_replay_batches test_dlq_journal test_receiver test_httpd test_telemetry test_metrics
TSAN_TESTS += test_exp_spill test_exp_hurry test_metrics_registry
.PHONY: asan-test tsan-test
asan-test: deps
	@SW_BIN_DIR=$(ASAN_BUILD) SW_TEST_SLOW=$${SW_TEST_SLOW:-4} \
	    $(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) SANITIZE=address,undefined test
tsan-test: deps
	@$(MAKE) --no-print-directory -j$$(nproc) BUILD=$(TSAN_BUILD) SANITIZE=thread \
	    $(addprefix $(TSAN_BUILD)/tests/unit/,$(TSAN_TESTS))
	@SW_BIN_DIR=$(TSAN_BUILD) SW_TEST_SLOW=$${SW_TEST_SLOW:-4} \
	    TSAN_OPTIONS="$${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/testing/tsan.supp}" \
	    sh testing/run_tests.sh $(addprefix $(TSAN_BUILD)/tests/unit/,$(TSAN_TESTS))
