# rdtrace top-level Makefile.
#
#   make              build userland (dtrace, libdtrace, the hosted kernel)
#   make demo         run a D program through dtrace on the hosted kernel
#   make test         everything CI checks (see docs/architecture.md, "Test tiers")
#   make kmod ARCH=amd64|arm64|riscv64    build build/<arch>/rdtrace.ko
#   make kmods        all three modules
#   make bench        benchmarks, one line per benchmark: <name> <median ns>
#   make fuzz         each cargo-fuzz target for FUZZ_SECONDS (default 60)
#   make fuzz-smoke   each cargo-fuzz target for 20 s (a quick check)
#   make conformance  the conformance suite in ../shared/conformance
#   make install      install dtrace, the D library and the man page (PREFIX)
#   make vm-test      the ATF/Kyua suite on a FreeBSD image (VM_IMAGE=...)
#
# Kernel objects are built by a toolchain with rust-src (build-std). On Debian
# that is rustc-web/cargo-web in /usr/bin; on FreeBSD, rustup nightly with
# rust-src: make kmod KERNEL_CARGO="cargo +nightly" KERNEL_RUSTC="$(rustup which --toolchain nightly rustc)"

ARCH            ?= amd64
ARCHS           := amd64 arm64 riscv64
CARGO           ?= cargo
KERNEL_CARGO    ?= /usr/bin/cargo
KERNEL_RUSTC    ?= /usr/bin/rustc
FREEBSD_RELEASE ?= 15.0
PREFIX          ?= /usr/local
SHARED          ?= $(CURDIR)/../shared
CONFORMANCE     := $(SHARED)/conformance
JOBS            ?= 2
# Where cargo puts the release dtrace (CARGO_TARGET_DIR is honoured).
DTRACE_BIN      := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/release/dtrace

export KERNEL_CARGO KERNEL_RUSTC FREEBSD_RELEASE

.PHONY: all setup build demo test unit lint fmt-check clippy kmod kmods kocheck \
        conformance conformance-check conformance-list atf bench fuzz fuzz-smoke \
        install vm-test clean

all: build

setup:
	@scripts/setup.sh

build:
	$(CARGO) build --release -p rdtrace-dtrace

# The README's first command.
demo: setup build
	@scripts/demo.sh

# ---- tests ---------------------------------------------------------------

test: setup fmt-check kmods clippy unit conformance-check atf fuzz-smoke
	@echo "make test: all tiers passed"

fmt-check:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Unit and hosted end-to-end tests; the .ko checks (tests/kocheck) require the
# modules that `kmods` built.
unit: build
	RDTRACE_REQUIRE_KO=1 $(CARGO) test --workspace

# ---- kernel modules --------------------------------------------------------

kmod:
	@scripts/build-kmod.sh $(ARCH)

kmods:
	@for a in $(ARCHS); do scripts/build-kmod.sh $$a || exit 1; done

kocheck: kmods
	RDTRACE_REQUIRE_KO=1 $(CARGO) test -p rdtrace-kocheck

# ---- conformance -----------------------------------------------------------

conformance: build
	python3 $(CONFORMANCE)/run_corpus.py -j $(JOBS) $(DTRACE_BIN) $(CONFORMANCE)/open.txt

conformance-check: build
	@scripts/conformance-check.sh

# Re-derive tests/conformance/passing.txt from a full run.
conformance-list: build
	python3 $(CONFORMANCE)/run_corpus.py -j $(JOBS) $(DTRACE_BIN) $(CONFORMANCE)/open.txt \
	    | sed -n 's/^PASS \([^ :]*\).*/\1/p' | LC_ALL=C sort > tests/conformance/passing.txt
	@wc -l tests/conformance/passing.txt

# Tier 6's ATF/Kyua suite, here against the hosted kernel.
atf: build
	@scripts/atf-test.sh

# ---- benchmarks ------------------------------------------------------------

bench:
	@scripts/bench.sh

# ---- fuzzing ---------------------------------------------------------------

# The cargo-fuzz targets in kmod/hosted/fuzz (libFuzzer). cargo-fuzz passes
# nightly-only rustc flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain take
# them. FUZZ_SANITIZER=address adds ASan (stable's runtime works too) at
# ~1% of the speed; the default `none` needs no sanitizer runtime. Corpora grow in
# kmod/hosted/fuzz/corpus/<target> (ignored by git); committed seeds are in
# kmod/hosted/fuzz/seeds/<target>. A crash leaves its input in
# kmod/hosted/fuzz/artifacts/<target>/ and fails the target.
FUZZ_SECONDS    ?= 60
FUZZ_TARGETS    := enable_dof ioctl_args
FUZZ_CARGO      ?= RUSTC_BOOTSTRAP=1 $(CARGO)
FUZZ_SANITIZER  ?= none

fuzz: setup
	@mkdir -p target/fuzz
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p kmod/hosted/fuzz/corpus/$$t; \
	    seeds=""; [ -d kmod/hosted/fuzz/seeds/$$t ] && seeds=seeds/$$t; \
	    log=$(CURDIR)/target/fuzz/$$t.log; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS) s (log: target/fuzz/$$t.log)"; \
	    if (cd kmod/hosted/fuzz && $(FUZZ_CARGO) fuzz run $$t -O -s $(FUZZ_SANITIZER) \
	            --target-dir $(CURDIR)/target/fuzz corpus/$$t $$seeds -- \
	            -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1) > $$log 2>&1; then \
	        grep -E '^(Done |stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb))' $$log; \
	    else \
	        tail -40 $$log; echo "fuzz: $$t FAILED (see $$log)"; exit 1; \
	    fi; \
	done

fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=20

# ---- install / VM ----------------------------------------------------------

install: build
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/lib/dtrace $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(DTRACE_BIN) $(DESTDIR)$(PREFIX)/sbin/dtrace
	if [ -d userland/libdtrace/dlib ]; then install -m 0644 userland/libdtrace/dlib/*.d $(DESTDIR)$(PREFIX)/lib/dtrace/; fi
	if [ -f userland/dtrace/dtrace.1 ]; then install -m 0644 userland/dtrace/dtrace.1 $(DESTDIR)$(PREFIX)/share/man/man1/; fi
	if [ -f build/$(ARCH)/rdtrace.ko ]; then install -d $(DESTDIR)/boot/modules && install -m 0555 build/$(ARCH)/rdtrace.ko $(DESTDIR)/boot/modules/; fi

vm-test:
	@scripts/vm-test.sh

clean:
	$(CARGO) clean
	rm -rf build
