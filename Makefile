# digest: `make demo` runs the daily job on the embedded defaults; `make test` runs the tests.
# `make lint` runs ruff and mypy. They create .venv and install into it; nothing else needs
# installing by hand.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint install axe catalogs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/digest init
	$(BIN)/digest fetch
	$(BIN)/digest subscribers import subscribers/example.csv --skip-existing
	$(BIN)/digest send
	$(BIN)/digest preview --out preview
	@echo
	@echo "Outbox (a Maildir; open it with any mail client, e.g. mutt -f outbox): $(CURDIR)/outbox"
	@echo "Preview: open $(CURDIR)/preview/digest.html in a browser, or read preview/digest.txt"

# With DIGEST_TEST_POSTGRES_URL=postgresql://user:pw@host/db (a role with CREATEDB; .ci/run sets
# one up), every store test also runs on PostgreSQL; without it the run says it was skipped.
# The lint target runs first, so a tree that fails the linter or the type checker fails the tests.
test: lint axe
	$(BIN)/python -m pytest -q

# axe-core, the accessibility engine the browser tests inject into each page: this exact
# version from the npm registry, installed once into build/axe (git-ignored). Without npm, or
# when npm cannot install it, the accessibility tests skip, saying so (under CI they fail).
AXE_VERSION := 4.14.1
AXE_STAMP   := build/axe/.installed-$(AXE_VERSION)

axe: $(AXE_STAMP)

$(AXE_STAMP):
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "make: npm is missing, so axe-core is not installed: the accessibility tests skip"; \
	elif npm install --no-audit --no-fund --no-save --silent --prefix build/axe \
			axe-core@$(AXE_VERSION); then \
		rm -f build/axe/.installed-*; touch $@; \
	else \
		echo "make: npm could not install axe-core@$(AXE_VERSION): the accessibility tests skip"; \
	fi

# The linter, the formatter's check and the type checker, as configured in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy digest

# The reader's languages: extracts the wording of the templates and the Python modules
# (babel.cfg) into digest/locales/digest.pot again, then updates every language's catalog
# from it. New wording arrives untranslated and stale wording is dropped; tests/test_i18n.py
# names what is left to translate. A new language: see README, "Languages".
catalogs: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg --add-location=file --sort-output --no-wrap \
		--project digest --version 0.1.0 --copyright-holder "digest's authors" \
		-o digest/locales/digest.pot .
	$(BIN)/pybabel update -i digest/locales/digest.pot -d digest/locales -D digest \
		--ignore-obsolete --ignore-pot-creation-date --no-wrap

clean:
	rm -rf $(VENV) build/axe outbox preview subscribers/*.db subscribers/*.db-*
