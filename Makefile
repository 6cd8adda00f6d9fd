# Lightbox. `make run` starts it with demo data; `make test` runs every
# test. Both install what they need (Debian packages as root, Go tools).

GO       ?= go
BIN      := bin/lightbox
DATA     ?= ./lightbox-data
HTTP     ?= 127.0.0.1:8443
DIMSE    ?= 127.0.0.1:11112
FUZZTIME ?= 30s

.PHONY: all build run test bench fuzz deps test-deps vet clean

all: build

deps:
	@scripts/deps.sh

test-deps:
	@scripts/deps.sh --test

build: deps
	$(GO) build -o $(BIN) ./cmd/lightbox

# The demo data is the test files, imported (again: resumes in a moment).
run: build
	$(BIN) import -q --data $(DATA) testdata/*.dcm
	$(BIN) serve --data $(DATA) --http $(HTTP) --dimse $(DIMSE) --testdata ./testdata

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) build ./...

test: test-deps vet
	scripts/test-services.sh $(GO) test -count=1 -timeout 20m ./...
	FUZZ_FRESH=1 FUZZTIME=20s scripts/fuzz.sh

# Figures the issues ask for, peers measured in the same run: decode and
# render (dicom), ingest by storescu against storescp and Orthanc, QIDO
# latency, STOW-RS memory, whole-process render against dcmj2pnm.
bench: test-deps build
	scripts/test-services.sh sh -c '$(GO) test -run "^$$" -bench . -benchtime 1s ./dicom/... ./storage/ ./web/dicomweb/ && \
		$(GO) test -run "^$$" -bench "Ingest|STOWMemory|InfoHugeRSS" -benchtime 1x ./cmd/lightbox/'
	scripts/bench-render.sh

fuzz: deps
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

clean:
	rm -rf bin
