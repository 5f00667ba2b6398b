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
#   make bench-load     64 clients at once and one that never reads
#   make bench-rank     ranking on labelled queries vs fzf and fzy
#   make bench-git      the git status cache and fidx fsmonitor vs git status
#   make fuzz     libFuzzer targets (clang), each for FUZZ_SECONDS (60)
#   make bench-nvim     the Neovim picker's keystroke to screen, beside
#                       fidx pick and fzf, in tmux
#   make valgrind the daemon suites against fidxd under valgrind (minutes)
#   make install  the binaries, man pages, systemd user units, shell
#                 completions and the Vim and Neovim plugins under PREFIX
#                 (/usr/local), staged under DESTDIR; make uninstall

VERSION  = 0.1.0
CC      ?= cc
BUILD    = build
PKGS     = libpcre2-8 jansson libutf8proc libgit2

# Debian packages the build, the tests and `make run` need.
DEB_PKGS = gcc make pkg-config git python3 libgit2-dev libpcre2-dev \
           libinotifytools0-dev inotify-tools libjansson-dev libcmocka-dev \
           libutf8proc-dev valgrind tmux zsh fish vim neovim

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
              common/query.c common/query_run.c common/query_narrow.c \
              common/proto.c common/fold.c \
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
               indexer/ops_git.c indexer/gitcache.c indexer/watch.c \
               indexer/changelog.c
UNIT_TESTS  = $(patsubst tests/%.c,%,$(wildcard tests/test_*.c))
# Fuzz targets (tests/fuzz/): make test replays each one's seed corpus.
FUZZ_TARGETS = query proto size visits delta ops
UNIT_TESTS  += $(addprefix fuzz_,$(FUZZ_TARGETS))
SCRIPT_TESTS = tests/filter.sh tests/cli.sh \
               tests/daemon_protocol.py tests/daemon_badinput.py \
               tests/daemon_projects.py \
               tests/daemon_queries.py tests/daemon_trees.py \
               tests/daemon_waits.py tests/daemon_bounds.py \
               tests/daemon_visits.py tests/daemon_process.py \
               tests/daemon_cancel.py tests/daemon_narrow.py \
               tests/daemon_git.py \
               tests/daemon_watch.py tests/daemon_fsmonitor.py \
               tests/daemon_faults.py tests/daemon_hostile.py tests/pick.sh \
               tests/shell.sh tests/vim.sh tests/nvim.sh \
               tests/install.sh tests/readme.py tests/limits.py \
               tests/valgrind.sh

# Release objects in build/obj, sanitized ones in build/asan/obj.
OPT_CFLAGS  = -O2 -g
SAN_CFLAGS  = -O1 -g -fno-omit-frame-pointer \
              -fsanitize=address,undefined -fno-sanitize-recover=all

obj = $(patsubst %.c,$(1)/obj/%.o,$(2))

.PHONY: all run test deps test-build valgrind bench-filter bench-daemon bench-watch bench-pick \
        bench-soak bench-load bench-rank bench-git bench-nvim clean
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

# make valgrind's binaries: -O1 -g, no sanitizers (valgrind and ASan do
# not mix), in build/vg/obj.
VG_CFLAGS = -O1 -g -fno-omit-frame-pointer

$(BUILD)/vg/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(VG_CFLAGS) -c $< -o $@

$(BUILD)/vg/obj/$(SHELL_GEN:.c=.o): $(BUILD)/$(SHELL_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -I. $(VG_CFLAGS) -c $< -o $@

$(BUILD)/vg/fidxd: $(call obj,$(BUILD)/vg,$(INDEXER_SRCS) $(COMMON_SRCS))
	$(CC) $(VG_CFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/vg/fidx: $(call obj,$(BUILD)/vg,$(CLI_SRCS) $(COMMON_SRCS) $(SHELL_GEN))
	$(CC) $(VG_CFLAGS) -o $@ $^ $(CLI_LIBS)

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

$(BUILD)/asan/test_changelog: $(call obj,$(BUILD)/asan,tests/test_changelog.c indexer/changelog.c $(COMMON_SRCS))
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

# The daemon suites against fidxd under valgrind (tests/fidxtest.py's
# FIDX_DAEMON_WRAP): every daemon they start, stopped with SIGTERM, must
# exit 0: no memory error and nothing definitely lost (99 otherwise; the
# tool's log is printed in build/vg/log/SUITE.log). About 11 minutes on
# 2 shared cores, so not part of make test, whose ASan build already checks leaks
# at every daemon's exit; tests/valgrind.sh, in make test, covers what
# ASan cannot see. VALGRIND_SUITES=... runs others.
VALGRIND_SUITES ?= tests/daemon_protocol.py tests/daemon_badinput.py \
                   tests/daemon_queries.py tests/daemon_trees.py \
                   tests/daemon_watch.py tests/daemon_git.py
VALGRIND_WRAP = valgrind --leak-check=full --errors-for-leak-kinds=all \
                --error-exitcode=99 --log-file=%s
valgrind: deps
	@$(MAKE) --no-print-directory $(BUILD)/vg/fidxd $(BUILD)/vg/fidx
	@FIDX_BUILD=$(BUILD)/vg FIDX_DAEMON_WRAP="$(VALGRIND_WRAP)" \
	  FIDX_WAIT_SCALE=10 TIMEOUT_MULTIPLIER=10 \
	  sh tests/run.sh $(VALGRIND_SUITES)

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
            $(BUILD)/fault/accept_fail.so $(BUILD)/fault/inotify_fail.so \
            $(BUILD)/fault/fsync_hang.so

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

# The Neovim picker beside fidx pick and fzf (bench/pick.sh --nvim).
BENCH_NVIM_DEB_PKGS = fzf tmux neovim
bench-nvim: all
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(BENCH_NVIM_DEB_PKGS)"
	bash bench/nvim.sh

# SOAK_SECONDS=60 make bench-soak: the short version (default 600 s).
bench-soak: all
	bash bench/soak.sh

# CLIENTS=64 REQUESTS=1000 ROUNDS=2 by default (bench/load.sh).
bench-load: all
	bash bench/load.sh

bench-rank: all
	bash bench/rank.sh

bench-git: all
	bash bench/git.sh

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
# The Neovim plugin (cli/nvim), and the package link that Neovim's
# default 'packpath' (PREFIX/share/nvim/site, for /usr and /usr/local)
# loads at start-up; the link is relative, so DESTDIR staging keeps it.
NVIMDIR  = $(PREFIX)/share/fidx/nvim
NVIMPACK = $(PREFIX)/share/nvim/site/pack/fidx/start
NVIM_FILES = plugin/fidx.lua doc/fidx.txt doc/tags lua/fidx/init.lua \
             lua/fidx/conn.lua lua/fidx/picker.lua lua/fidx/health.lua \
             lua/telescope/_extensions/fidx.lua

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
	for f in $(NVIM_FILES); do \
	    install -D -m 0644 cli/nvim/$$f $(DESTDIR)$(NVIMDIR)/$$f || exit 1; \
	done
	install -d $(DESTDIR)$(NVIMPACK)
	ln -sfn ../../../../../fidx/nvim $(DESTDIR)$(NVIMPACK)/fidx

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/fidx $(DESTDIR)$(BINDIR)/fidxd
	rm -f $(DESTDIR)$(MANDIR)/man1/fidx.1 $(DESTDIR)$(MANDIR)/man8/fidxd.8
	rm -f $(DESTDIR)$(BASHCOMPDIR)/fidx $(DESTDIR)$(ZSHCOMPDIR)/_fidx \
	    $(DESTDIR)$(FISHCOMPDIR)/fidx.fish
	for u in $(UNITS); do rm -f $(DESTDIR)$(UNITDIR)/$$u; done
	for f in $(NVIM_FILES); do rm -f $(DESTDIR)$(NVIMDIR)/$$f; done
	rmdir $(DESTDIR)$(NVIMDIR)/lua/telescope/_extensions \
	    $(DESTDIR)$(NVIMDIR)/lua/telescope $(DESTDIR)$(NVIMDIR)/lua/fidx \
	    $(DESTDIR)$(NVIMDIR)/lua $(DESTDIR)$(NVIMDIR)/doc \
	    $(DESTDIR)$(NVIMDIR)/plugin $(DESTDIR)$(NVIMDIR) \
	    $(DESTDIR)$(PREFIX)/share/fidx 2>/dev/null || true
	rm -f $(DESTDIR)$(NVIMPACK)/fidx
	rmdir $(DESTDIR)$(NVIMPACK) $(DESTDIR)$(PREFIX)/share/nvim/site/pack/fidx \
	    2>/dev/null || true

# The Vim plugin (cli/vim) as a Vim package: with PREFIX=/usr it is in
# Debian's default 'packpath' (/usr/share/vim/vimfiles), so Vim loads it
# at start-up; elsewhere, set packpath+=$(PREFIX)/share/vim/vimfiles or
# install with VIMPACKDIR=~/.vim/pack/fidx/start/fidx. doc/tags ships.
VIMPACKDIR ?= $(PREFIX)/share/vim/vimfiles/pack/fidx/start/fidx
VIM_FILES = plugin/fidx.vim autoload/fidx.vim autoload/fidx/picker.vim \
            doc/fidx.txt doc/tags
.PHONY: install-vim uninstall-vim
install: install-vim
uninstall: uninstall-vim
install-vim:
	for f in $(VIM_FILES); do \
	    install -d $(DESTDIR)$(VIMPACKDIR)/$$(dirname $$f) && \
	    install -m 0644 cli/vim/$$f $(DESTDIR)$(VIMPACKDIR)/$$f || exit 1; \
	done

# Its directories go too, when nothing else is in them.
uninstall-vim:
	for f in $(VIM_FILES); do rm -f $(DESTDIR)$(VIMPACKDIR)/$$f; done
	for d in autoload/fidx autoload plugin doc; do \
	    rmdir $(DESTDIR)$(VIMPACKDIR)/$$d 2>/dev/null; done; \
	rmdir $(DESTDIR)$(VIMPACKDIR) 2>/dev/null; true

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj $(BUILD)/asan/obj $(BUILD)/vg/obj -name '*.d' -type f 2>/dev/null)
.SECONDARY:
