# taskflow — PGXS build.
#
# The extension script taskflow--$(EXTVERSION).sql is built from the split
# sources in src/sql/ (concatenated in file-name order), so each concern has
# its own SQL file just as it has its own C file.  The install scripts of
# released versions are kept, frozen, in src/sql/released/, and the scripts
# that update one version to the next in src/sql/upgrade/ (see
# doc/operations.md, "Upgrading", and doc/testing.md for how an upgrade is
# tested against a fresh install).

EXTENSION = taskflow
EXTVERSION = 0.2

MODULE_big = taskflow
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

SQL_SOURCES = $(sort $(wildcard src/sql/*.sql))
DATA_built = taskflow--$(EXTVERSION).sql
DATA = $(sort $(wildcard src/sql/released/taskflow--*.sql)) \
	$(sort $(wildcard src/sql/upgrade/taskflow--*--*.sql))

PG_CONFIG ?= pg_config
PKG_CONFIG ?= pkg-config

PG_CPPFLAGS = -DTASKFLOW_VERSION='"$(EXTVERSION)"' -I$(srcdir)/src -I$(shell $(PG_CONFIG) --includedir) \
	$(shell $(PKG_CONFIG) --cflags libcurl)
SHLIB_LINK = -L$(shell $(PG_CONFIG) --libdir) -lpq $(shell $(PKG_CONFIG) --libs libcurl)

# Tests: pg_regress, isolation and TAP, all against temporary instances that
# preload taskflow (no system cluster is touched).  The lists are expanded
# at once (:=) so that an empty one is really undefined for PGXS's ifdef and
# its suite is skipped instead of run with no tests.
REGRESS := $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --temp-instance=$(CURDIR)/tmp_check_regress \
	--temp-config=$(srcdir)/test/taskflow.conf \
	--encoding=UTF8 --no-locale
ISOLATION := $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --temp-instance=$(CURDIR)/tmp_check_iso \
	--temp-config=$(srcdir)/test/taskflow.conf \
	--inputdir=$(srcdir)/test --encoding=UTF8 --no-locale
TAP_TESTS = 1
PROVE_TESTS := $(sort $(wildcard test/t/*.pl))

EXTRA_CLEAN = taskflow--*.sql tmp_check_regress tmp_check_iso output_iso \
	results regression.diffs regression.out log

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# After the include: Makefile.global resets PROVE_FLAGS.  test/lib holds the
# TAP helper module (TaskflowTest.pm).
PROVE_FLAGS += -I$(srcdir)/test/lib

taskflow--$(EXTVERSION).sql: $(SQL_SOURCES)
	cat $^ > $@

# PGXS tracks no header dependencies: rebuild every object when a header
# changes, so a changed struct is never read with an old layout.
$(OBJS): $(wildcard src/*.h)
