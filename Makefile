# fidx - one Makefile, explicit source lists (ntpd's SRCS=), -MMD deps.
#
#   make          release build: build/fidx
#   make run      install missing packages, build, show fidx on this tree
#   make test     install missing packages, build with ASan+UBSan, run tests
#   make bench-filter   fidx filter vs fzf and fzy (see bench/)
#   make bench-daemon   fidxd vs fd, find, fzy and fzf (see bench/)
#   make bench-watch    the inotify watcher vs inotifywait and watchman
#   make bench-pick     fidx pick's keystroke to screen vs fzf, in tmux
#   make bench-soak     fidxd under every load at once for SOAK_SECONDS (600)
#   make bench-rank     ranking on labelled queries vs fzf and fzy
#   make fuzz     libFuzzer targets (clang), each for FUZZ_SECONDS (60)
#   make install  the binaries, man pages, systemd user units and shell
#                 completions under PREFIX (/usr/local), staged under
#                 DESTDIR; make uninstall

VERSION  = 0.1.0
CC      ?= cc
BUILD    = build
PKGS     = libpcre2-8 jansson libutf8proc libgit2

# Debian packages the build, the tests and `make run` need.
DEB_PKGS = gcc make pkg-config git python3 libgit2-dev libpcre2-dev \
           libinotifytools0-dev inotify-tools libjansson-dev libcmocka-dev \
           libutf8proc-dev valgrind tmux zsh fish

WARN     = -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes \
           -Wstrict-prototypes -Wpointer-arith -Werror=vla
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE -DFIDX_VERSION='"$(VERSION)"' $(WARN) \
           -MMD -MP $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS     = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -linotifytools -lpthread -lm
# fidx loads libgit2 only when it must find a root (cli/client.c).
CLI_LIBS = $(shell pkg-config --libs libpcre2-8 jansson libutf8proc 2>/dev/null) \
           -lpthread -ldl

COMMON_SRCS = common/log.c common/alloc.c common/match.c common/typo.c \
              common/topk.c common/sockpath.c common/size.c common/regex.c \
              common/query.c common/query_run.c common/proto.c common/fold.c \
              common/thread.c common/shquote.c
CLI_SRCS    = cli/fidx.c cli/cli.c cli/filter.c cli/client.c cli/cmd.c \
              cli/output.c cli/pick.c cli/term.c cli/shell.c
# cli/shell/'s scripts, embedded in fidx (cli/shell/embed.sh) and installed.
SHELL_SCRIPTS = $(foreach s,bash zsh fish,cli/shell/key-bindings.$(s) \
                cli/shell/completion.$(s))
SHELL_GEN   = gen/shell_scripts.c
INDEXER_SRCS = indexer/main.c indexer/server.c indexer/ops.c \
               indexer/project.c indexer/search.c indexer/index.c \
               indexer/walk.c indexer/repo.c indexer/visits.c indexer/loop.c \
               indexer/work.c indexer/fidxd.c indexer/ops_query.c \
               indexer/ops_git.c indexer/gitcache.c indexer/watch.c
UNIT_TESTS  = $(patsubst tests/%.c,%,$(wildcard tests/test_*.c))
# Fuzz targets (tests/fuzz/): make test replays each one's seed corpus.
FUZZ_TARGETS = query proto size visits delta ops
UNIT_TESTS  += $(addprefix fuzz_,$(FUZZ_TARGETS))
SCRIPT_TESTS = tests/filter.sh tests/cli.sh \
               tests/daemon_protocol.py tests/daemon_projects.py \
               tests/daemon_queries.py tests/daemon_trees.py \
               tests/daemon_waits.py tests/daemon_bounds.py \
               tests/daemon_visits.py tests/daemon_process.py \
               tests/daemon_cancel.py tests/daemon_git.py \
               tests/daemon_watch.py tests/daemon_faults.py tests/pick.sh \
               tests/shell.sh \
               tests/install.sh tests/readme.py tests/limits.py \
               tests/valgrind.sh

# Release objects in build/obj, sanitized ones in build/asan/obj.
OPT_CFLAGS  = -O2 -g
SAN_CFLAGS  = -O1 -g -fno-omit-frame-pointer \
              -fsanitize=address,undefined -fno-sanitize-recover=all

obj = $(patsubst %.c,$(1)/obj/%.o,$(2))

.PHONY: all run test deps test-build bench-filter bench-daemon bench-watch bench-pick \
        bench-soak bench-rank clean
all: $(BUILD)/fidx $(BUILD)/fidxd

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(OPT_CFLAGS) -c $< -o $@

$(BUILD)/asan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SAN_CFLAGS) -c $< -o $@

# The generated C file is made in $(BUILD)/gen and compiled from there,
# with -I. so that it finds cli/shell.h whatever BUILD is.
$(BUILD)/$(SHELL_GEN): cli/shell/embed.sh $(SHELL_SCRIPTS)
	@mkdir -p $(dir $@)
	sh cli/shell/embed.sh $(SHELL_SCRIPTS) >$@.tmp && mv $@.tmp $@

$(BUILD)/obj/$(SHELL_GEN:.c=.o): $(BUILD)/$(SHELL_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -I. $(OPT_CFLAGS) -c $< -o $@

$(BUILD)/asan/obj/$(SHELL_GEN:.c=.o): $(BUILD)/$(SHELL_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -I. $(SAN_CFLAGS) -c $< -o $@

$(BUILD)/fidx: $(call obj,$(BUILD),$(CLI_SRCS) $(COMMON_SRCS) $(SHELL_GEN))
	$(CC) $(OPT_CFLAGS) -o $@ $^ $(CLI_LIBS)

$(BUILD)/asan/fidx: $(call obj,$(BUILD)/asan,$(CLI_SRCS) $(COMMON_SRCS) $(SHELL_GEN))
	$(CC) $(SAN_CFLAGS) -o $@ $^ $(CLI_LIBS)

$(BUILD)/fidxd: $(call obj,$(BUILD),$(INDEXER_SRCS) $(COMMON_SRCS))
	$(CC) $(OPT_CFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/asan/fidxd: $(call obj,$(BUILD)/asan,$(INDEXER_SRCS) $(COMMON_SRCS))
	$(CC) $(SAN_CFLAGS) -o $@ $^ $(LIBS)

# Unsanitized, for tests/valgrind.sh (valgrind and ASan do not mix).
$(BUILD)/vg/test_match: $(call obj,$(BUILD),tests/test_match.c $(COMMON_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(OPT_CFLAGS) -o $@ $^ $(LIBS) -lcmocka

$(BUILD)/asan/test_walk: $(call obj,$(BUILD)/asan,tests/test_walk.c indexer/walk.c indexer/repo.c indexer/index.c $(COMMON_SRCS))
	$(CC) $(SAN_CFLAGS) -o $@ $^ $(LIBS) -lcmocka

$(BUILD)/asan/test_repo: $(call obj,$(BUILD)/asan,tests/test_repo.c indexer/repo.c $(COMMON_SRCS))
	$(CC) $(SAN_CFLAGS) -o $@ $^ $(LIBS) -lcmocka

$(BUILD)/asan/test_gitstatus: $(call obj,$(BUILD)/asan,tests/test_gitstatus.c indexer/repo.c $(COMMON_SRCS))
	$(CC) $(SAN_CFLAGS) -o $@ $^ $(LIBS) -lcmocka

$(BUILD)/asan/test_gitcache: $(call obj,$(BUILD)/asan,tests/test_gitcache.c indexer/gitcache.c indexer/repo.c indexer/loop.c $(COMMON_SRCS))
	$(CC) $(SAN_CFLAGS) -o $@ $^ $(LIBS) -lcmocka

$(BUILD)/asan/test_index: $(call obj,$(BUILD)/asan,tests/test_index.c indexer/index.c $(COMMON_SRCS))
	$(CC) $(SAN_CFLAGS) -o $@ $^ $(LIBS) -lcmocka

$(BUILD)/asan/test_visits: $(call obj,$(BUILD)/asan,tests/test_visits.c indexer/visits.c $(COMMON_SRCS))
	$(CC) $(SAN_CFLAGS) -o $@ $^ $(LIBS) -lcmocka

$(BUILD)/asan/test_loop: $(call obj,$(BUILD)/asan,tests/test_loop.c indexer/loop.c common/alloc.c common/log.c)
	$(CC) $(SAN_CFLAGS) -o $@ $^ -lcmocka

$(BUILD)/asan/test_work: $(call obj,$(BUILD)/asan,tests/test_work.c indexer/work.c indexer/loop.c common/log.c common/alloc.c)
	$(CC) $(SAN_CFLAGS) -o $@ $^ -lpthread -lcmocka

$(BUILD)/asan/test_term: $(call obj,$(BUILD)/asan,tests/test_term.c cli/term.c common/log.c common/alloc.c)
	$(CC) $(SAN_CFLAGS) -o $@ $^ -lcmocka

# A daemon context in the test's process (tests/fuzz/opsctx.c).
$(BUILD)/asan/test_oom: $(call obj,$(BUILD)/asan,tests/test_oom.c tests/fuzz/opsctx.c $(filter-out indexer/main.c,$(INDEXER_SRCS)) $(COMMON_SRCS))
	$(CC) $(SAN_CFLAGS) -o $@ $^ $(LIBS) -lcmocka

$(BUILD)/asan/test_%: $(call obj,$(BUILD)/asan,tests/test_%.c $(COMMON_SRCS))
	$(CC) $(SAN_CFLAGS) -o $@ $^ $(LIBS) -lcmocka

# Missing packages: installed when root, otherwise the exact line to run.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
	    grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq $$missing; \
	  else \
	    echo "fidx needs these Debian packages; run:"; \
	    echo "  sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

test-build: $(BUILD)/asan/fidx $(BUILD)/asan/fidxd $(addprefix $(BUILD)/asan/,$(UNIT_TESTS)) \
            $(BUILD)/fidx $(BUILD)/fidxd $(BUILD)/vg/test_match \
            $(BUILD)/fault/accept_fail.so $(BUILD)/fault/inotify_fail.so

# LD_PRELOAD shims that make one system call fail, for tests/daemon_faults.py.
$(BUILD)/fault/%.so: tests/fault/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O2 -shared -fPIC -o $@ $< -ldl

test: deps
	@$(MAKE) --no-print-directory test-build
	@FIDX_BUILD=$(BUILD)/asan FIDX_VG_BUILD=$(BUILD) sh tests/run.sh $(addprefix $(BUILD)/asan/,$(UNIT_TESTS)) $(SCRIPT_TESTS)

# Starts fidxd if it is not running, indexes this directory, queries it.
# The query reaches the shell through the environment, never pasted into
# the recipe's quotes, so RUN_QUERY="'ops" is a query like any other.
RUN_QUERY ?= mkfl
export RUN_QUERY
run: deps
	@$(MAKE) --no-print-directory all
	@./$(BUILD)/fidx daemon status >/dev/null 2>&1 || ./$(BUILD)/fidx daemon start
	@./$(BUILD)/fidx add --wait "$$(pwd -P)"
	@echo "fidx $$RUN_QUERY in $$(pwd -P):"
	@./$(BUILD)/fidx --root "$$(pwd -P)" --limit 10 --color=always -- "$$RUN_QUERY"

bench-filter: all
	bash bench/filter.sh

bench-daemon: all
	bash bench/daemon.sh

# watchman is the tool it compares with (inotifywait is in DEB_PKGS).
BENCH_WATCH_DEB_PKGS = watchman
bench-watch: all
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(BENCH_WATCH_DEB_PKGS)"
	bash bench/watch.sh

# The picker against fzf, in tmux (both in BENCH_PICK_DEB_PKGS).
BENCH_PICK_DEB_PKGS = fzf tmux
bench-pick: all
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(BENCH_PICK_DEB_PKGS)"
	bash bench/pick.sh

# SOAK_SECONDS=60 make bench-soak: the short version (default 600 s).
bench-soak: all
	bash bench/soak.sh

bench-rank: all
	bash bench/rank.sh

# Fuzzing (tests/fuzz/). Each target is one LLVMFuzzerTestOneInput built
# twice: with replay.c's main under gcc's sanitizers, which make test runs
# over tests/fuzz/corpus/<target>/ (a few seconds), and with clang's
# libFuzzer, which make fuzz runs for FUZZ_SECONDS each, one after the
# other at nice 10. New inputs go to build/fuzz/corpus/<target>/, crashes
# to build/fuzz/crash/<target>/; a crash fixed is copied into the seed
# corpus, so make test replays it from then on. fuzz_ops runs a daemon's
# threads (walkers, workers, watcher) beside the inputs, so libFuzzer's
# leak check after each input, which cannot wait for them, is off for it
# (-detect_leaks=0); LeakSanitizer still checks at exit, and the replay
# in make test checks every corpus input with the threads joined.
FUZZ_LIB_SRCS = $(COMMON_SRCS) indexer/visits.c
FUZZ_HDRS   = tests/fuzz/fuzz.h $(wildcard common/*.h) indexer/visits.h
FUZZ_DEB_PKGS = clang-14 libclang-rt-14-dev
FUZZ_CC     = clang-14
FUZZ_SECONDS ?= 60
FUZZ_FLAGS  ?=
FUZZ_CFLAGS = $(filter-out -MMD -MP,$(BASE_CFLAGS)) -O1 -g \
              -fno-omit-frame-pointer -fno-sanitize-recover=all
.PHONY: fuzz fuzz-deps fuzz-build

$(BUILD)/asan/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(FUZZ_HDRS) \
                      $(call obj,$(BUILD)/asan,$(FUZZ_LIB_SRCS))
	$(CC) $(filter-out -MMD -MP,$(BASE_CFLAGS)) $(SAN_CFLAGS) \
	  -DFUZZ_NAME='"$*"' -o $@ tests/fuzz/fuzz_$*.c tests/fuzz/replay.c \
	  $(filter %.o,$^) $(LIBS)

# fuzz_delta builds index.c itself, with 8-path segments (fuzz_delta.c)
# and a 70,000-byte staging block (above FIDX_MAX_PATH_CEILING).
FUZZ_DELTA_SRCS = tests/fuzz/fuzz_delta.c indexer/index.c
FUZZ_DELTA_DEFS = -DINDEX_SEGMENT_FILES=8 -DINDEX_SEGMENT_BYTES=70000
$(BUILD)/asan/fuzz_delta: $(FUZZ_DELTA_SRCS) tests/fuzz/replay.c $(FUZZ_HDRS) \
                          indexer/index.h $(call obj,$(BUILD)/asan,$(COMMON_SRCS))
	$(CC) $(filter-out -MMD -MP,$(BASE_CFLAGS)) $(SAN_CFLAGS) \
	  $(FUZZ_DELTA_DEFS) -DFUZZ_NAME='"delta"' -o $@ $(FUZZ_DELTA_SRCS) \
	  tests/fuzz/replay.c $(filter %.o,$^) $(LIBS)

$(BUILD)/fuzz/fuzz_delta: $(FUZZ_DELTA_SRCS) $(FUZZ_HDRS) indexer/index.h \
                          $(call obj,$(BUILD)/fuzz,$(COMMON_SRCS))
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_DELTA_DEFS) \
	  -fsanitize=fuzzer,address,undefined -o $@ $(FUZZ_DELTA_SRCS) \
	  $(filter %.o,$^) $(LIBS)

# fuzz_ops runs a whole daemon context in-process (tests/fuzz/opsctx.c).
FUZZ_OPS_LIB_SRCS = $(filter-out indexer/main.c,$(INDEXER_SRCS)) $(COMMON_SRCS)
FUZZ_OPS_SRCS = tests/fuzz/fuzz_ops.c tests/fuzz/opsctx.c
FUZZ_OPS_HDRS = $(FUZZ_HDRS) tests/fuzz/opsctx.h $(wildcard indexer/*.h)
$(BUILD)/asan/fuzz_ops: $(FUZZ_OPS_SRCS) tests/fuzz/replay.c $(FUZZ_OPS_HDRS) \
                        $(call obj,$(BUILD)/asan,$(FUZZ_OPS_LIB_SRCS))
	$(CC) $(filter-out -MMD -MP,$(BASE_CFLAGS)) $(SAN_CFLAGS) \
	  -DFUZZ_NAME='"ops"' -o $@ $(FUZZ_OPS_SRCS) tests/fuzz/replay.c \
	  $(filter %.o,$^) $(LIBS)

$(BUILD)/fuzz/fuzz_ops: $(FUZZ_OPS_SRCS) $(FUZZ_OPS_HDRS) \
                        $(call obj,$(BUILD)/fuzz,$(FUZZ_OPS_LIB_SRCS))
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined \
	  -o $@ $(FUZZ_OPS_SRCS) $(filter %.o,$^) $(LIBS)

# The code under test gets coverage; only the binaries link libFuzzer.
$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP \
	  -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_HDRS) \
                      $(call obj,$(BUILD)/fuzz,$(FUZZ_LIB_SRCS))
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined \
	  -o $@ tests/fuzz/fuzz_$*.c $(filter %.o,$^) $(LIBS)

-include $(shell find $(BUILD)/fuzz/obj -name '*.d' -type f 2>/dev/null)

fuzz-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(FUZZ_DEB_PKGS)"

fuzz-build: fuzz-deps
	@$(MAKE) --no-print-directory \
	  $(addprefix $(BUILD)/fuzz/fuzz_,$(FUZZ_TARGETS))

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(BUILD)/fuzz/corpus/$$t $(BUILD)/fuzz/crash/$$t; \
	  echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=1 nice -n 10 $(BUILD)/fuzz/fuzz_$$t \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -print_final_stats=1 \
	    -artifact_prefix=$(BUILD)/fuzz/crash/$$t/ $(FUZZ_FLAGS) \
	    $$(test -f tests/fuzz/$$t.dict && echo -dict=tests/fuzz/$$t.dict) \
	    $$(test $$t = ops && echo -detect_leaks=0) \
	    $(BUILD)/fuzz/corpus/$$t tests/fuzz/corpus/$$t || exit 1; \
	done

# Install: no root needed for a staging DESTDIR. The units name the
# binaries where they are installed (@BINDIR@), so they are made here.
PREFIX  ?= /usr/local
BINDIR   = $(PREFIX)/bin
UNITDIR  = $(PREFIX)/lib/systemd/user
MANDIR   = $(PREFIX)/share/man
# Where each shell looks for a command's completion by itself (the key
# bindings are only printed by fidx shell: they are evaluated at start-up).
BASHCOMPDIR = $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  = $(PREFIX)/share/zsh/vendor-completions
FISHCOMPDIR = $(PREFIX)/share/fish/vendor_completions.d
UNITS    = fidxd.service fidxd.socket fidx-reindex.service fidx-reindex.timer

.PHONY: install uninstall
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) \
	    $(DESTDIR)$(FISHCOMPDIR)
	install -m 0755 $(BUILD)/fidx $(BUILD)/fidxd $(DESTDIR)$(BINDIR)/
	install -m 0644 cli/man/fidx.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 cli/man/fidxd.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 cli/shell/completion.bash $(DESTDIR)$(BASHCOMPDIR)/fidx
	install -m 0644 cli/shell/completion.zsh $(DESTDIR)$(ZSHCOMPDIR)/_fidx
	install -m 0644 cli/shell/completion.fish \
	    $(DESTDIR)$(FISHCOMPDIR)/fidx.fish
	for u in $(UNITS); do \
	    sed 's|@BINDIR@|$(BINDIR)|g' indexer/systemd/$$u \
	        >$(DESTDIR)$(UNITDIR)/$$u && \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/fidx $(DESTDIR)$(BINDIR)/fidxd
	rm -f $(DESTDIR)$(MANDIR)/man1/fidx.1 $(DESTDIR)$(MANDIR)/man8/fidxd.8
	rm -f $(DESTDIR)$(BASHCOMPDIR)/fidx $(DESTDIR)$(ZSHCOMPDIR)/_fidx \
	    $(DESTDIR)$(FISHCOMPDIR)/fidx.fish
	for u in $(UNITS); do rm -f $(DESTDIR)$(UNITDIR)/$$u; done

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj $(BUILD)/asan/obj -name '*.d' -type f 2>/dev/null)
.SECONDARY:
