# Postern - see README.md.
#
#   make run     build and run the whole suite in the foreground (dev config)
#   make test    every test (unit + end-to-end)
#   make check   what CI checks: fmt, clippy -D warnings, tests
#   make bench   benchmarks side by side with Postfix/Dovecot/INN (needs root)
#   make install install under PREFIX (default /usr) and DESTDIR
#   make deb     a Debian package in target/deb (dpkg-deb, no other tool)
#   make deb-check  install that package on a throw-away copy of this machine
#   make man     regenerate the man pages made from the parameter table

CARGO   ?= cargo
PROFILE ?= debug
ifeq ($(PROFILE),release)
CARGO_PROFILE_FLAG := --release
endif
BIN     := $(CURDIR)/target/$(PROFILE)
VAR     := $(CURDIR)/var

.PHONY: all build run test check fmt clippy bench clean man install deb deb-check

# Every installed program, by where it goes. A new program joins by adding
# its name to one list (and, if it is set-group-id postdrop like postdrop
# and postqueue, to SETGID_PROGRAMS too). Postfix's layout: master and the
# daemons in daemon_directory, the commands in command_directory.
DAEMON_PROGRAMS  := master smtpd cleanup trivial-rewrite pickup qmgr local virtual smtp anvil showq flush
COMMAND_PROGRAMS := sendmail postdrop postcat postqueue postsuper postconf postern postmap postalias
SETGID_PROGRAMS  := postdrop postqueue
# Names of sendmail that select its mode from argv[0] (Postfix's
# mailq_path and newaliases_path are in bin).
SENDMAIL_LINKS   := mailq newaliases

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
# Maildir, 10,000 messages), smtp-relay (SMTP -> smtp(8) -> smtp-sink,
# 10,000 messages), or the kit's smtp pop3 imap nntp.
BENCH_SUITES ?= smtp-accept smtp-drain smtp-relay
bench:
	bench/run.sh $(BENCH_SUITES)

clean:
	$(CARGO) clean
	rm -rf $(VAR)

# The man pages generated from code: main.toml(5) from the parameter table
# in crates/config/src/params.rs. tests/it/man.rs fails when the committed
# page differs from what this writes.
man:
	$(CARGO) run -q -p postern-gen-man -- man

# ---------------------------------------------------------------------------
# make install [PREFIX=/usr] [DESTDIR=] [PROFILE=debug|release] [NO_BUILD=1]
#
# The paths match the built-in defaults in params.rs (daemon_directory
# /usr/libexec/postern, command_directory /usr/sbin, queue_directory
# /var/spool/postern); with another PREFIX the installed main.toml sample
# sets daemon_directory and command_directory. The configuration is always
# /etc/postern, the directory every program reads without -c.
# An existing main.toml or master.toml is never overwritten.
PREFIX     ?= /usr
DESTDIR    ?=
LIBEXECDIR := $(PREFIX)/libexec/postern
SBINDIR    := $(PREFIX)/sbin
BINDIR     := $(PREFIX)/bin
MANDIR     := $(PREFIX)/share/man
UNITDIR    := $(PREFIX)/lib/systemd/system
CONFIG_DIR := /etc/postern
# The group that postdrop is set-group-id to (setgid_group); SETGID=no
# leaves the programs without the bit (make deb: postinst sets it).
SETGID_GROUP ?= postdrop
SETGID       ?= auto
INSTALL    ?= install

install: $(if $(NO_BUILD),,build)
	@for p in $(DAEMON_PROGRAMS) $(COMMAND_PROGRAMS); do \
	  test -x $(BIN)/$$p || { echo "make install: $(BIN)/$$p is missing; run make build$(if $(filter release,$(PROFILE)), PROFILE=release)" >&2; exit 1; }; \
	done
	$(INSTALL) -d -m 755 $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(CONFIG_DIR)
	for p in $(DAEMON_PROGRAMS); do $(INSTALL) -m 755 $(BIN)/$$p $(DESTDIR)$(LIBEXECDIR)/$$p || exit 1; done
	for p in $(COMMAND_PROGRAMS); do $(INSTALL) -m 755 $(BIN)/$$p $(DESTDIR)$(SBINDIR)/$$p || exit 1; done
	@# set-group-id only when we can (root, and the group exists); the
	@# Debian package does it in postinst with dpkg-statoverride instead.
	@if [ "$(SETGID)" != no ] && [ "$$(id -u)" = 0 ] && getent group $(SETGID_GROUP) >/dev/null; then \
	  for p in $(SETGID_PROGRAMS); do \
	    chgrp $(SETGID_GROUP) $(DESTDIR)$(SBINDIR)/$$p && chmod 2755 $(DESTDIR)$(SBINDIR)/$$p || exit 1; \
	  done; \
	elif [ "$(SETGID)" != no ]; then \
	  echo "make install: $(SETGID_PROGRAMS) not made set-group-id $(SETGID_GROUP) (needs root and the group); without it only root can submit mail"; \
	fi
	for l in $(SENDMAIL_LINKS); do ln -sf $(SBINDIR)/sendmail $(DESTDIR)$(BINDIR)/$$l || exit 1; done
	for d in man/man*; do \
	  $(INSTALL) -d -m 755 $(DESTDIR)$(MANDIR)/$$(basename $$d) && \
	  $(INSTALL) -m 644 $$d/* $(DESTDIR)$(MANDIR)/$$(basename $$d)/ || exit 1; \
	done
	sed 's|/usr/libexec/postern|$(LIBEXECDIR)|g' systemd/postern.service > $(DESTDIR)$(UNITDIR)/postern.service
	chmod 644 $(DESTDIR)$(UNITDIR)/postern.service
	@for f in main.toml master.toml; do \
	  if [ -e $(DESTDIR)$(CONFIG_DIR)/$$f ]; then \
	    echo "make install: keeping the existing $(DESTDIR)$(CONFIG_DIR)/$$f (the new sample is etc/$$f)"; \
	  else \
	    $(INSTALL) -m 644 etc/$$f $(DESTDIR)$(CONFIG_DIR)/$$f || exit 1; \
	    if [ $$f = main.toml ] && [ "$(PREFIX)" != /usr ]; then \
	      printf '\n# Added by make install for PREFIX=%s.\ndaemon_directory = "%s"\ncommand_directory = "%s"\n' \
	        '$(PREFIX)' '$(LIBEXECDIR)' '$(SBINDIR)' >> $(DESTDIR)$(CONFIG_DIR)/$$f; \
	    fi; \
	  fi; \
	done

# ---------------------------------------------------------------------------
# make deb [DEB_PROFILE=release] [DEB_OUT=target/deb] [DEB_COMPRESS=-Zxz]
#
# Stages `make install PREFIX=/usr` and wraps it with dpkg-deb (see
# packaging/deb/build for what the package does on install and removal).
DEB_PROFILE  ?= release
DEB_OUT      ?= $(CURDIR)/target/deb
DEB_COMPRESS ?= -Zxz
deb:
	$(if $(NO_BUILD),,$(MAKE) --no-print-directory build PROFILE=$(DEB_PROFILE))
	rm -rf $(DEB_OUT)/root
	$(MAKE) --no-print-directory install NO_BUILD=1 SETGID=no PROFILE=$(DEB_PROFILE) PREFIX=/usr DESTDIR=$(DEB_OUT)/root
	packaging/deb/build $(DEB_OUT)/root $(DEB_OUT) "$(SETGID_PROGRAMS)" "$(SENDMAIL_LINKS)" $(DEB_COMPRESS)

# The manual check of the package (root, overlayfs): installs it with
# dpkg -i on a throw-away overlay of this machine, sends mail through it,
# purges it. Nothing outside the overlay changes.
deb-check: deb
	packaging/deb/try-install $$(ls -t $(DEB_OUT)/postern_*.deb | head -n 1)
