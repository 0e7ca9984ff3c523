# Postern - see README.md.
#
#   make run     build and run the whole suite in the foreground (dev config)
#   make test    every test (unit + end-to-end)
#   make check   what CI checks: fmt, clippy -D warnings, tests
#   make bench   benchmarks side by side with Postfix/Dovecot/INN (needs root)

CARGO   ?= cargo
PROFILE ?= debug
ifeq ($(PROFILE),release)
CARGO_PROFILE_FLAG := --release
endif
BIN     := $(CURDIR)/target/$(PROFILE)
VAR     := $(CURDIR)/var

.PHONY: all build run test check fmt clippy bench clean

all: build

build:
	$(CARGO) build --workspace --bins $(CARGO_PROFILE_FLAG)

# The embedded development configuration is etc/dev; paths that depend on
# the checkout are passed as overrides so the files stay portable.
run: build
	@mkdir -p $(VAR)
	@chmod 755 $(VAR)
	@echo "Postern (development configuration etc/dev, spool $(VAR)/spool)"
	@echo "Services: see the 'service ...' lines below; Ctrl-C stops everything."
	exec $(BIN)/master -c $(CURDIR)/etc/dev \
		-o queue_directory=$(VAR)/spool \
		-o daemon_directory=$(BIN) \
		-o command_directory=$(BIN) \
		-o virtual_mailbox_base=$(VAR)/mail

test:
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

check: fmt clippy test

# BENCH_SUITES: smtp-accept (default), or the kit's smtp pop3 imap nntp
# once delivery and the readers exist.
BENCH_SUITES ?= smtp-accept
bench:
	bench/run.sh $(BENCH_SUITES)

clean:
	$(CARGO) clean
	rm -rf $(VAR)
