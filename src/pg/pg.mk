# PostgreSQL-specific build logic, included by the root Makefile before PGXS.
#  - strict warnings for our PG-layer sources (PG's own flags plus -Werror)
#  - the bundled model(s) in models/ installed to $(datadir)/extension/gemmaclf_models/
#  - the CLI learns the share dir, to find the installed model when run from elsewhere
PG_CFLAGS += -Werror
REGRESS_OPTS += --load-extension=gemmaclf

GC_PG_SHAREDIR := $(shell $(PG_CONFIG) --sharedir)
$(BUILD)/cli/cli_common.o: GC_CFLAGS += -DGC_PG_SHAREDIR='"$(GC_PG_SHAREDIR)"'

# One tree, several servers (scripts/pg-test.sh builds for 15, then 18): PGXS compiles
# src/pg/*.o in place, so what depends on the server (those objects, hence gemmaclf.so, and the
# CLI's share dir) also depends on a stamp naming the server. A different PG_CONFIG rewrites the
# stamp and they are rebuilt, never reused against the other version's headers. The core objects
# include no PostgreSQL header and serve every version.
GC_PG_SERVER := $(shell $(PG_CONFIG) --version --includedir-server)
GC_PG_STAMP := $(BUILD)/pg-server.stamp
ifneq ($(GC_PG_SERVER),$(shell cat $(GC_PG_STAMP) 2>/dev/null))
$(shell mkdir -p $(BUILD) && echo '$(GC_PG_SERVER)' > $(GC_PG_STAMP))
endif
$(GC_PG_STAMP):
	@mkdir -p $(@D) && echo '$(GC_PG_SERVER)' > $@
$(PG_SRCS:.c=.o) $(BUILD)/cli/cli_common.o: $(GC_PG_STAMP)

# Header dependencies of the PG-layer objects: PGXS tracks none (servers are rarely built with
# --enable-depend), so without these a changed gemmaclf_pg.h or core header left them stale.
PG_CPPFLAGS += -MMD -MP
EXTRA_CLEAN += $(PG_SRCS:.c=.d)
-include $(PG_SRCS:.c=.d)

GC_MODEL_DIRS := $(patsubst %/config.json,%,$(wildcard models/*/config.json))
GC_MODEL_FILES := config.json model.safetensors model.safetensors.index.json tokenizer.json \
                  tokenizer_config.json gemmaclf.json generation_config.json ngram_head.safetensors

install: install-gemmaclf-models
.PHONY: install-gemmaclf-models
install-gemmaclf-models:
	$(MKDIR_P) '$(DESTDIR)$(datadir)/extension/gemmaclf_models'
	@for d in $(GC_MODEL_DIRS); do \
	  n=$$(basename $$d); \
	  echo "installing model $$n"; \
	  $(MKDIR_P) '$(DESTDIR)$(datadir)/extension/gemmaclf_models/'$$n; \
	  for f in $(GC_MODEL_FILES); do \
	    if [ -f $$d/$$f ]; then $(INSTALL_DATA) $$d/$$f '$(DESTDIR)$(datadir)/extension/gemmaclf_models/'$$n/; fi; \
	  done; \
	done
	@if [ -f models/DEFAULT ]; then $(INSTALL_DATA) models/DEFAULT '$(DESTDIR)$(datadir)/extension/gemmaclf_models/'; fi

# The root Makefile says plain `make` builds everything; its first rule is `core`, so say it.
.DEFAULT_GOAL := all

# No JIT bitcode: the core objects are built by our own rules (PGXS would want a .bc for each).
override with_llvm = no

uninstall: uninstall-gemmaclf-models
.PHONY: uninstall-gemmaclf-models
uninstall-gemmaclf-models:
	rm -rf '$(DESTDIR)$(datadir)/extension/gemmaclf_models'
