# xos top-level Makefile
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
LIBEXECDIR ?= $(PREFIX)/libexec/xos
LIBDIR ?= $(PREFIX)/lib/$(shell $(CC) -dumpmachine 2>/dev/null)
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
SYSCONFDIR ?= /etc
DESTDIR ?=

CC ?= cc
PKG_CONFIG ?= pkg-config
BUILD ?= build
SANITIZE ?=

WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla -Werror \
       -Wno-unused-parameter
HARDEN = -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
CFLAGS ?= -O2 -g
XCFLAGS = -std=gnu11 -D_GNU_SOURCE $(WARN) $(HARDEN) -I. -DXOS_LIBEXECDIR=\"$(LIBEXECDIR)\" \
	  -DXOS_SYSCONFDIR=\"$(SYSCONFDIR)\"
LDHARDEN = -pie -Wl,-z,relro,-z,now
ifneq ($(SANITIZE),)
XCFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer
LDHARDEN += -fsanitize=address,undefined
endif
# FUZZ=1 (with CC=clang): the libraries instrumented for libFuzzer (make fuzz)
FUZZ ?=
FUZZ_SAN = address,undefined
ifneq ($(FUZZ),)
XCFLAGS += -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# (clang calls a variable that is there for its cleanup attribute unused, and
# wants every field of libseccomp's SCMP_A0 compound literals)
XCFLAGS += -Wno-unused-variable -Wno-missing-field-initializers
endif

LXC_LIBS := $(shell $(PKG_CONFIG) --libs lxc 2>/dev/null)
YAJL_LIBS := $(shell $(PKG_CONFIG) --libs yajl 2>/dev/null)
# the CLI (xrun, xps...) takes yajl's archive where it is there: one shared
# object less to find and map at each command (DECISIONS (bh))
YAJL_STATIC := $(wildcard $(shell $(PKG_CONFIG) --variable=libdir yajl 2>/dev/null)/libyajl_s.a)
CLI_YAJL_LIBS := $(if $(YAJL_STATIC),$(YAJL_STATIC),$(YAJL_LIBS))
# and libc's, as a static PIE (ASLR kept), where libc.a is there and no
# sanitizer is linked: a start of xrun then maps no shared object at all
# (DECISIONS (bi)); the CLI makes no NSS lookup, which a static glibc breaks
comma := ,
LIBC_A := $(shell $(CC) -print-file-name=libc.a 2>/dev/null)
CLI_LINK := $(if $(SANITIZE)$(FUZZ),$(LDHARDEN),$(if $(filter /%,$(LIBC_A)),-static-pie -Wl$(comma)-z$(comma)relro$(comma)-z$(comma)now,$(LDHARDEN)))
SECCOMP_LIBS := $(shell $(PKG_CONFIG) --libs libseccomp 2>/dev/null)
CAP_LIBS := $(shell $(PKG_CONFIG) --libs libcap 2>/dev/null)
NFT_LIBS := $(shell $(PKG_CONFIG) --libs libnftables 2>/dev/null)
ARCHIVE_LIBS := $(shell $(PKG_CONFIG) --libs libarchive 2>/dev/null)
CRYPTO_LIBS := $(shell $(PKG_CONFIG) --libs libcrypto 2>/dev/null)
SSL_LIBS := $(shell $(PKG_CONFIG) --libs openssl 2>/dev/null)

MODULES = common hooks netsetup nodes loader templates credstore scheduler ckpt runtime cli
# every .c of a module except main.c goes into its static library
lib_srcs = $(filter-out $(1)/main.c $(1)/main-%.c,$(wildcard $(1)/*.c))
lib_objs = $(patsubst %.c,$(BUILD)/%.o,$(call lib_srcs,$(1)))

LIB_common = $(BUILD)/libcommon.a
LIB_netsetup = $(BUILD)/libnetsetup.a
LIB_nodes = $(BUILD)/libnodes.a
LIB_loader = $(BUILD)/libloader.a
LIB_templates = $(BUILD)/libtemplates.a
LIB_runtime = $(BUILD)/libruntime.a
LIB_ckpt = $(BUILD)/libckpt.a
LIB_cli = $(BUILD)/libcli.a
LIB_hooks = $(BUILD)/libhooks.a
LIB_credstore = $(BUILD)/libcredstore.a
LIB_scheduler = $(BUILD)/libscheduler.a

CLI_CMDS = xrun xps xlogs xwait xkill xcheckpoint xrestart xnodes xqueue xrelease xacct xvo xevents xmigrate
# xtemplate is a binary of its own: it alone needs libarchive and libcrypto,
# whose loading would cost every xrun about 3 ms
BINS = $(BUILD)/xosd $(BUILD)/xos-loader $(BUILD)/xos $(BUILD)/xtemplate $(BUILD)/xos-template-helper \
       $(BUILD)/xos-criu-helper \
       $(addprefix $(BUILD)/,$(CLI_CMDS)) $(BUILD)/xlogin $(BUILD)/xlogout $(BUILD)/libnss_xos.so.2

# pam_xos (pam/, pam_xos(8)), where libpam0g-dev is installed; login
# programs load it, so no sanitizer either
PAM_H := $(wildcard /usr/include/security/pam_modules.h)
ifneq ($(PAM_H),)
BINS += $(BUILD)/pam_xos.so
endif

# The Slurm SPANK plugin (slurm/, docs/SLURM.md), where libslurm-dev's
# spank.h is installed; slurmstepd loads it, so no sanitizer
SPANK_H := $(wildcard /usr/include/slurm/spank.h)
ifneq ($(SPANK_H),)
BINS += $(BUILD)/xos-spank.so
endif

UNIT_SRCS = $(wildcard tests/unit/test-*.c)
UNIT_BINS = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

all: $(BINS)

$(BUILD)/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) $(CFLAGS) -c $< -o $@

define module_lib
$(LIB_$(1)): $(call lib_objs,$(1))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach m,$(MODULES),$(eval $(call module_lib,$(m))))

# xos-loader is static: it runs in any template (busybox, distro images) and
# starts fast (no dynamic loading).
# (The sanitizer build links it dynamically: ASan has no static runtime. That
# loader runs only on the host template, which shows the host's /usr.)
$(BUILD)/xos-loader: $(BUILD)/loader/main.o $(LIB_loader) $(LIB_common)
ifeq ($(SANITIZE),)
	$(CC) -static -o $@ $^ -Wl,-Bstatic -lseccomp -lcap
else
	$(CC) $(LDHARDEN) -o $@ $^ $(SECCOMP_LIBS) $(CAP_LIBS)
endif

# (libssl for the node channel, nodes/: see docs/DECISIONS.md (ad);
# libcredstore: grid logins check X.509 chains and signatures, DECISIONS (af);
# ckpt/ still reads the job record through runtime/job.c: the two
# libraries are a link group until that moves into a module below both)
$(BUILD)/xosd: $(BUILD)/runtime/main.o $(LIB_runtime) $(LIB_ckpt) $(LIB_credstore) $(LIB_scheduler) $(LIB_hooks) $(LIB_templates) $(LIB_netsetup) $(LIB_nodes) $(LIB_loader) $(LIB_common)
	$(CC) $(LDHARDEN) -o $@ $< -Wl,--start-group $(LIB_runtime) $(LIB_ckpt) -Wl,--end-group \
		$(filter-out $< $(LIB_runtime) $(LIB_ckpt),$^) $(LXC_LIBS) $(YAJL_LIBS) $(SSL_LIBS) -ldl -lm

# Template imports and removals run in a helper of their own: xosd does not link
# libarchive and libcrypto (with their dependencies they tripled the mappings
# every fork of xosd, i.e. every job start, copies: about 1.5 ms a start)
$(BUILD)/xos-template-helper: $(BUILD)/templates/main-helper.o $(LIB_templates) $(LIB_common)
	$(CC) $(LDHARDEN) -o $@ $^ $(YAJL_LIBS) $(ARCHIVE_LIBS) $(CRYPTO_LIBS)

# What a dump runs besides CRIU (the criu liblxc runs, CRIU's action script):
# libc only, started several times a dump (xosd took about 20 ms of CPU to
# load its libraries each time; DECISIONS (au))
$(BUILD)/xos-criu-helper: $(BUILD)/ckpt/main-criu-helper.o $(LIB_ckpt) $(LIB_common)
	$(CC) $(LDHARDEN) -o $@ $^

$(BUILD)/xos: $(BUILD)/cli/main.o $(LIB_cli) $(LIB_common)
	$(CC) $(CLI_LINK) -o $@ $^ $(CLI_YAJL_LIBS)

$(BUILD)/xtemplate: $(BUILD)/cli/main-xtemplate.o $(LIB_cli) $(LIB_templates) $(LIB_common)
	rm -f $@ # (a symlink to xos in older trees)
	$(CC) $(LDHARDEN) -o $@ $^ $(YAJL_LIBS) $(ARCHIVE_LIBS) $(CRYPTO_LIBS) -lpthread

# xlogin holds grid credentials (libcrypto); xlogout is a link to it
$(BUILD)/xlogin: $(BUILD)/cli/main-xlogin.o $(LIB_cli) $(LIB_credstore) $(LIB_common)
	$(CC) $(LDHARDEN) -o $@ $^ $(YAJL_LIBS) $(CRYPTO_LIBS)

$(BUILD)/xlogout: $(BUILD)/xlogin
	ln -sf xlogin $@

# libnss_xos: pool accounts' names for getent, id, ls (nss/nss-xos.c)
# (never with a sanitizer: the C library loads it into any program, getent,
# id, ls, which carry no sanitizer runtime)
$(BUILD)/libnss_xos.so.2: nss/nss-xos.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fPIE -fsanitize=% -fno-sanitize-recover=% -fno-omit-frame-pointer,$(XCFLAGS)) \
		$(CFLAGS) -fPIC -shared -Wl,-soname,libnss_xos.so.2 \
		-Wl,-z,relro,-z,now -o $@ $<

$(BUILD)/pam_xos.so: pam/pam-xos.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIC $(CFLAGS) \
		-shared -Wl,-z,relro,-z,now -o $@ $< -lpam $(YAJL_LIBS)

$(BUILD)/xos-spank.so: slurm/xos-spank.c
	$(CC) -std=gnu11 $(WARN) -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIC \
		-DXOS_LIBEXECDIR=\"$(LIBEXECDIR)\" $(CFLAGS) -shared -Wl,-z,relro,-z,now -o $@ $<

$(addprefix $(BUILD)/,$(CLI_CMDS)): $(BUILD)/xos
	ln -sf xos $@

$(BUILD)/tests/test-%: tests/unit/test-%.c tests/unit/tap.h $(LIB_runtime) $(LIB_ckpt) $(LIB_credstore) $(LIB_scheduler) $(LIB_hooks) $(LIB_templates) $(LIB_netsetup) $(LIB_nodes) $(LIB_loader) $(LIB_cli) $(LIB_common)
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) $(CFLAGS) $(LDHARDEN) -o $@ $< -Wl,--start-group $(LIB_runtime) $(LIB_ckpt) -Wl,--end-group $(LIB_credstore) $(LIB_scheduler) $(LIB_hooks) $(LIB_templates) $(LIB_netsetup) \
		$(LIB_nodes) $(LIB_loader) $(LIB_cli) $(LIB_templates) $(LIB_common) $(LXC_LIBS) $(YAJL_LIBS) \
		$(SECCOMP_LIBS) $(CAP_LIBS) $(NFT_LIBS) $(ARCHIVE_LIBS) $(SSL_LIBS) $(CRYPTO_LIBS) -lm

# ---- fuzzing (tests/fuzz): libFuzzer targets, built with clang into build-fuzz
FUZZ_BUILD ?= build-fuzz
FUZZ_TIME ?= 600
FUZZ_TARGETS = $(patsubst tests/fuzz/fuzz-%.c,%,$(wildcard tests/fuzz/fuzz-*.c))
FUZZ_BINS = $(patsubst %,$(BUILD)/fuzz/fuzz-%,$(FUZZ_TARGETS))
FUZZ_LIBS = $(LIB_runtime) $(LIB_ckpt) $(LIB_credstore) $(LIB_scheduler) $(LIB_hooks) $(LIB_templates) $(LIB_netsetup) $(LIB_nodes) $(LIB_loader) $(LIB_common)

$(BUILD)/fuzz/fuzz-%: tests/fuzz/fuzz-%.c $(FUZZ_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) $(CFLAGS) -fsanitize=fuzzer,$(FUZZ_SAN) $(LDHARDEN) -o $@ $< \
		-Wl,--start-group $(LIB_runtime) $(LIB_ckpt) -Wl,--end-group \
		$(filter-out $(LIB_runtime) $(LIB_ckpt),$(FUZZ_LIBS)) \
		$(LXC_LIBS) $(YAJL_LIBS) $(SECCOMP_LIBS) $(CAP_LIBS) $(NFT_LIBS) $(ARCHIVE_LIBS) \
		$(SSL_LIBS) $(CRYPTO_LIBS) -ldl -lm

fuzz-build:
	$(MAKE) BUILD=$(FUZZ_BUILD) FUZZ=1 CC=clang fuzz-bins
fuzz-bins: $(FUZZ_BINS)

# every target for FUZZ_TIME seconds (FUZZ_TARGETS to choose), seeds from tests/fuzz/corpus
fuzz: fuzz-build
	tests/fuzz/run.sh --build $(FUZZ_BUILD) --time $(FUZZ_TIME) $(FUZZ_TARGETS)

# SOAK_JOBS jobs (default 1000) while xosd is killed now and then (tests/soak/soak.sh)
soak: all
	tests/soak/soak.sh

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do echo "# $$t"; $$t || fail=1; done; exit $$fail

# Integration tests need root, LXC and CRIU (scripts/setup.sh installs them).
check: all $(UNIT_BINS)
	tests/run-all.sh

# CRIU's whole zdtm static suite, each program a job of its own (root; long:
# not part of check). Results also in $(BUILD)/zdtm-results.txt
zdtm: all
	scripts/build-zdtm.sh --all
	XOS_BUILD=$(abspath $(BUILD)) tests/zdtm/run.sh -o $(BUILD)/zdtm-results.txt

bench: all
	tests/bench/run.sh
	tests/bench/templates.sh
	tests/bench/scheduler.sh
	tests/bench/density.sh
	tests/bench/cpu-split.sh
	tests/bench/grid-login.sh $(BUILD)
	tests/bench/nss.sh $(BUILD)
	tests/bench/checkpoint-small.sh

bench-checkpoint: all
	tests/bench/checkpoint.sh

bench-checkpoint-small: all
	tests/bench/checkpoint-small.sh

bench-migrate: all
	tests/bench/migrate.sh

# a probe of a container start without liblxc (DECISIONS (bm)); no feature
bench-direct: all
	tests/bench/direct-start.sh

lint:
	clang-format --dry-run --Werror $(foreach m,$(MODULES),$(wildcard $(m)/*.c $(m)/*.h)) nss/*.c pam/*.c tests/unit/*.c \
		$(wildcard tests/fuzz/*.c) slurm/*.c
	shellcheck -x scripts/*.sh tests/*.sh tests/bench/*.sh tests/bench/*.bash $(wildcard tests/fuzz/*.sh tests/soak/*.sh tests/zdtm/*.sh) .ci/run
	shellcheck -s sh dist/debian/postinst dist/debian/prerm dist/debian/postrm
	shellcheck -s bash dist/bash-completion
	shellcheck -s sh slurm/xos-spank-exec
	shellcheck slurm/xos-slurm-job
	shellcheck -s bash -e SC2154,SC2034,SC1091,SC2030,SC2031,SC2016 tests/integration/*.bats tests/integration/*.bash
	for m in man/*.[158]; do mandoc -Tlint -Wwarning $$m || exit 1; done

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR)
	install -m 0755 $(BUILD)/xos $(DESTDIR)$(BINDIR)/xos
	for c in $(CLI_CMDS); do ln -sf xos $(DESTDIR)$(BINDIR)/$$c; done
	install -m 0755 $(BUILD)/xtemplate $(DESTDIR)$(BINDIR)/xtemplate
	install -m 0755 $(BUILD)/xlogin $(DESTDIR)$(BINDIR)/xlogin
	ln -sf xlogin $(DESTDIR)$(BINDIR)/xlogout
	install -m 0755 $(BUILD)/xosd $(DESTDIR)$(SBINDIR)/xosd
	install -m 0755 $(BUILD)/xos-loader $(DESTDIR)$(LIBEXECDIR)/xos-loader
	install -m 0755 $(BUILD)/xos-template-helper $(DESTDIR)$(LIBEXECDIR)/xos-template-helper
	install -m 0755 $(BUILD)/xos-criu-helper $(DESTDIR)$(LIBEXECDIR)/xos-criu-helper
	install -d $(DESTDIR)$(LIBDIR)
	install -m 0644 $(BUILD)/libnss_xos.so.2 $(DESTDIR)$(LIBDIR)/libnss_xos.so.2
	if [ -e $(BUILD)/pam_xos.so ]; then install -d $(DESTDIR)$(LIBDIR)/security && \
		install -m 0644 $(BUILD)/pam_xos.so $(DESTDIR)$(LIBDIR)/security/pam_xos.so; fi
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	for m in man/*.1; do [ -e "$$m" ] && install -m 0644 $$m $(DESTDIR)$(MANDIR)/man1/ || true; done
	for m in man/*.5; do [ -e "$$m" ] && install -m 0644 $$m $(DESTDIR)$(MANDIR)/man5/ || true; done
	for m in man/*.8; do [ -e "$$m" ] && install -m 0644 $$m $(DESTDIR)$(MANDIR)/man8/ || true; done
	install -d $(DESTDIR)$(BASHCOMPDIR)
	install -m 0644 dist/bash-completion $(DESTDIR)$(BASHCOMPDIR)/xos
	for c in $(CLI_CMDS) xtemplate; do ln -sf xos $(DESTDIR)$(BASHCOMPDIR)/$$c; done
	install -d $(DESTDIR)$(SYSCONFDIR)/xos
	[ -e $(DESTDIR)$(SYSCONFDIR)/xos/xosd.conf ] || install -m 0644 docs/xosd.conf.example $(DESTDIR)$(SYSCONFDIR)/xos/xosd.conf

# The Debian package (scripts/build-deb.sh): build-deb/xos_VERSION_ARCH.deb,
# checked with lintian where it is installed
deb:
	scripts/build-deb.sh build-deb
	if command -v lintian >/dev/null; then \
		lintian --fail-on error,warning build-deb/xos_*.deb $$(ls build-deb/xos-slurm_*.deb 2>/dev/null) && \
			echo "lintian: no errors or warnings"; \
	else echo "lintian is not installed: the package was not checked"; fi

# Install the package in a fresh debootstrap tree, run xosd there, purge it
# (slow, needs debootstrap and the archive: not part of make check)
deb-test: deb
	tests/deb-test.sh build-deb

clean:
	rm -rf $(BUILD) build-deb

FORCE:

.PHONY: fuzz fuzz-build fuzz-bins soak
.PHONY: all unit check zdtm bench bench-checkpoint bench-checkpoint-small bench-migrate bench-direct lint install deb deb-test clean FORCE
