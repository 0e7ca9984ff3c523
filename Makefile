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

# The embedded development configuration is etc/dev. make run copies it to
# var/etc and appends the paths of this checkout, so that master, the daemons
# and the local tools (`target/debug/sendmail -C var/etc`, `postcat -c var/etc`)
# all see one configuration.
run: build
	@mkdir -p $(VAR)/etc $(VAR)/mail/spool
	@chmod 755 $(VAR)
	@cp etc/dev/master.toml $(VAR)/etc/master.toml
	@{ cat etc/dev/main.toml; \
	  echo; \
	  echo "# Paths of this checkout, added by make run."; \
	  echo 'queue_directory = "$(VAR)/spool"'; \
	  echo 'daemon_directory = "$(BIN)"'; \
	  echo 'command_directory = "$(BIN)"'; \
	  echo 'virtual_mailbox_base = "$(VAR)/mail"'; \
	  echo 'mail_spool_directory = "$(VAR)/mail/spool"'; \
	} > $(VAR)/etc/main.toml
	@echo "Postern: configuration $(VAR)/etc (from etc/dev), spool $(VAR)/spool"
	@echo "Mail for dev@example.test is queued for $(VAR)/mail/dev/Maildir/."
	@echo "Local submission: $(BIN)/sendmail -C $(VAR)/etc dev@example.test"
	@echo "Listening services: the 'service ...' lines below. Ctrl-C stops everything."
	exec $(BIN)/master -c $(VAR)/etc

test:
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

check: fmt clippy test

# BENCH_SUITES: smtp-accept (default), smtp-drain (SMTP -> local(8) ->
# Maildir, 10,000 messages), or the kit's smtp pop3 imap nntp.
BENCH_SUITES ?= smtp-accept smtp-drain
bench:
	bench/run.sh $(BENCH_SUITES)

clean:
	$(CARGO) clean
	rm -rf $(VAR)
