# pgdeck — `make run` builds and serves on the embedded default; `make test`
# runs every test. Both install what they need first (make deps).

SHELL     := /bin/bash
GO        ?= go
TEMPL     := $(GO) tool templ
BIN       := bin/pgdeck
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
DEB_PKGS  := postgresql pgbouncer chromium
HTMX      := static/js/htmx.min.js
TEST_OUT  := testdata/out

.PHONY: deps generate build run test test-go check-generated bench fmt lint clean

## deps: install what is missing (Debian packages, npm packages, Go modules).
deps: .deps-debian node_modules/.package-lock.json $(HTMX)
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

$(HTMX): node_modules/.package-lock.json
	@mkdir -p static/js
	cp node_modules/htmx.org/dist/htmx.min.js $@

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

## bench: deploy time against the raw tools (ratio x-raw), monitor tick cost.
## Packages run one at a time (-p 1) so that they do not skew each other.
bench: deps
	$(GO) test -p 1 -run '^$$' -bench . -benchtime 5x -timeout 30m ./provisioner/ ./monitor/

## fmt: format Go and templ sources.
fmt:
	gofmt -w $$(git ls-files '*.go')
	$(TEMPL) fmt .

## lint: gofmt and go vet.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '_templ.go$$')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin $(TEST_OUT)
