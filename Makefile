# pgdeck — `make run` builds and serves on the embedded default; `make test`
# runs every test. Both install what they need first (make deps).

SHELL     := /bin/bash
GO        ?= go
TEMPL     := $(GO) tool templ
BIN       := bin/pgdeck
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
DEB_PKGS  := postgresql pgbouncer chromium zip unzip
HTMX      := static/js/htmx.min.js
TEST_OUT  := testdata/out

.PHONY: check-htmx deps generate build run test test-go test-odoo check-generated bench fmt lint clean

## deps: install what is missing (Debian packages, npm packages, Go modules).
deps: .deps-debian node_modules/.package-lock.json check-htmx
	@$(GO) mod download

.deps-debian:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing || exit 1; \
	  else \
	    echo "missing Debian packages; run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

node_modules/.package-lock.json: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing; run: sudo apt-get install -y npm"; exit 1; }
	npm ci --no-audit --no-fund

# The pinned htmx is committed (so that go build works on a fresh clone);
# make checks that it is the build package-lock.json pins.
check-htmx: node_modules/.package-lock.json
	@cmp -s node_modules/htmx.org/dist/htmx.min.js $(HTMX) || { \
	  echo "$(HTMX) is not the htmx that package-lock.json pins; run: cp node_modules/htmx.org/dist/htmx.min.js $(HTMX) (and commit it)"; exit 1; }

## generate: templ components → *_templ.go (committed).
generate:
	$(TEMPL) generate

## build: bin/pgdeck.
build: deps generate
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) .

## run: build and serve at http://127.0.0.1:8080 on the embedded default.
run: build
	./$(BIN)

## test: generated files and formatting are clean, vet passes, every test passes.
test: deps check-generated lint test-go

# Fails when templ generate or templ fmt changes any file (they are then
# rewritten: commit them).
check-generated:
	@before=$$(find . -path ./node_modules -prune -o \( -name '*.templ' -o -name '*_templ.go' \) -print | sort | xargs md5sum); \
	$(TEMPL) fmt . >/dev/null 2>&1 && $(TEMPL) generate >/dev/null 2>&1 || { echo "templ failed"; $(TEMPL) generate; exit 1; }; \
	after=$$(find . -path ./node_modules -prune -o \( -name '*.templ' -o -name '*_templ.go' \) -print | sort | xargs md5sum); \
	if [ "$$before" != "$$after" ]; then \
	  echo "templ fmt/generate changed these files (commit them):"; diff <(echo "$$before") <(echo "$$after") | grep '^>' ; exit 1; fi

test-go:
	@mkdir -p $(TEST_OUT)
	$(GO) test -race -count=1 -timeout 20m ./...

## test-odoo: the tests that run a real Odoo 18 on pgdeck's environments.
## Odoo comes from ODOO_SRC (a source tree) or ODOO_TARBALL (a .tar.gz of the
## source, unpacked once into ODOO_CACHE and reused); its Python dependencies
## are the python3-* packages of its debian/control, installed from Debian.
ODOO_CACHE ?= $(if $(filter 0,$(shell id -u)),/var/cache/pgdeck/odoo,$(HOME)/.cache/pgdeck/odoo)

test-odoo: deps
	@set -e; src="$(ODOO_SRC)"; \
	if [ -z "$$src" ] && [ -n "$(ODOO_TARBALL)" ]; then \
	  [ -f "$(ODOO_TARBALL)" ] || { echo "ODOO_TARBALL=$(ODOO_TARBALL): no such file"; exit 1; }; \
	  dir="$(ODOO_CACHE)/$$(sha256sum "$(ODOO_TARBALL)" | cut -c1-16)"; \
	  if [ ! -f "$$dir/.unpacked" ]; then \
	    echo "unpacking $(ODOO_TARBALL) into $$dir"; rm -rf "$$dir"; mkdir -p "$$dir"; \
	    tar xzf "$(ODOO_TARBALL)" -C "$$dir"; touch "$$dir/.unpacked"; fi; \
	  src=$$(dirname "$$(find "$$dir" -mindepth 2 -maxdepth 2 -name odoo-bin | head -n 1)"); \
	fi; \
	if [ -z "$$src" ] || [ ! -f "$$src/odoo-bin" ]; then \
	  echo "make test-odoo needs Odoo 18: ODOO_TARBALL=<Odoo 18 source .tar.gz> (e.g. ../shared/odoo/odoo-18.0-20250506-min.tar.gz)"; \
	  echo "or ODOO_SRC=<an Odoo 18 source tree>; the source is at https://nightly.odoo.com/18.0/nightly/src/ or https://github.com/odoo/odoo/tree/18.0"; \
	  exit 1; fi; \
	src=$$(cd "$$src" && pwd); missing=""; \
	while read -r alts; do \
	  pick=""; for p in $$(echo "$$alts" | tr '|' ' '); do \
	    if dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed"; then pick=ok; break; fi; done; \
	  [ "$$pick" = ok ] && continue; \
	  for p in $$(echo "$$alts" | tr '|' ' '); do \
	    if apt-cache policy $$p 2>/dev/null | grep -q 'Candidate: [0-9]'; then pick=$$p; break; fi; done; \
	  missing="$$missing $${pick:-$$(echo "$$alts" | cut -d'|' -f1)}"; \
	done < <(sed -n '/^Depends:/,/^[A-Z][A-Za-z-]*:/p' "$$src/debian/control" | grep -v '^#' | grep 'python3-' | sed 's/,//g; s/([^)]*)//g'); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing Odoo's Python dependencies:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else echo "Odoo's Python dependencies are missing; run: sudo apt-get install -y$$missing"; exit 1; fi; fi; \
	mkdir -p $(TEST_OUT); \
	echo "Odoo from $$src"; \
	ODOO_SRC="$$src" $(GO) test -tags odoo -count=1 -timeout 14m -run '^TestOdoo' -v . 2>&1 | tee $(TEST_OUT)/test-odoo.log; \
	exit $${PIPESTATUS[0]}

## bench: deploy time against the raw tools (ratio x-raw), backup and restore
## against pg_dump + zip and unzip + psql (x-raw-backup, x-raw-load), pgbench -C direct vs
## through PgBouncer (ratio x-direct), replica deploy vs raw pg_basebackup +
## standby start (x-raw), monitor tick cost.
## Packages run one at a time (-p 1) so that they do not skew each other.
bench: deps
	$(GO) test -p 1 -run '^$$' -bench . -skip BackupRestore -benchtime 5x -timeout 30m ./provisioner/ ./monitor/
	$(GO) test -run '^$$' -bench BackupRestore -benchtime 2x -timeout 30m ./provisioner/

## fmt: format Go and templ sources.
fmt:
	gofmt -w $$(git ls-files '*.go')
	$(TEMPL) fmt .

## lint: gofmt, go vet and staticcheck (pinned as a Go tool in go.mod).
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '_templ.go$$')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags odoo .
	$(GO) tool staticcheck -tags odoo ./...

clean:
	rm -rf bin $(TEST_OUT)
