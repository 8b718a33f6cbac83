# msm — make help lists the targets.
TEMPORAL_VERSION     := v1.5.1
STATICCHECK_VERSION  := v0.8.2
WORKFLOWCHECK_VERSION := v0.6.0
GO    ?= go
BIN   := $(CURDIR)/bin
# Tools are installed from the module proxy with `go install pkg@version`,
# which keeps them out of this module's dependency graph.
TOOL_INSTALL := cd /tmp && GOBIN=$(BIN) GOFLAGS=-buildvcs=false $(GO) install

# VERSION names the build in what nodes and agents report and msm status
# shows (internal/version): the commit, +dirty when the work tree has
# changes; set it to name a release (make build VERSION=v1.2.0).
VERSION ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell git diff --quiet HEAD -- 2>/dev/null || echo +dirty)
LDFLAGS := -X github.com/msm-project/msm/internal/version.Version=$(VERSION)

.DEFAULT_GOAL := help
.PHONY: help build dev test fuzz check bench clean image demo-image temporal-image docker-clean chromium vm-tools

# IMAGE is the tag `make image` builds; DEMO_IMAGE `make demo-image`'s;
# TEMPORAL_IMAGE `make temporal-image`'s.
IMAGE ?= msm:dev
DEMO_IMAGE ?= msm-demo:dev
TEMPORAL_IMAGE ?= msm-temporal:dev
# MANAGER is the Manager whose containers `make docker-clean` removes.
MANAGER ?= local

help: ## list the targets
	@grep -hE '^[a-zA-Z/_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/msm, bin/msm-agent (the lean container agent nodes start) and bin/demo (the example MicroService)
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/msm ./cmd/msm
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/msm-agent ./cmd/msm-agent
	$(GO) build -o bin/demo ./examples/demo

image: ## build the msm image FROM scratch (static msm, msm-agent and demo; nothing is pulled) as $(IMAGE)
	@mkdir -p .msm && ctx=$$(mktemp -d .msm/image.XXXXXX) && trap 'rm -rf "$$ctx"' EXIT && \
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $$ctx/msm ./cmd/msm && \
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $$ctx/msm-agent ./cmd/msm-agent && \
	CGO_ENABLED=0 $(GO) build -trimpath -o $$ctx/demo ./examples/demo && \
	cp build/Dockerfile $$ctx/Dockerfile && \
	docker build -q -t $(IMAGE) $$ctx

demo-image: ## build the example MicroService's own image FROM scratch (static demo, its ENTRYPOINT; no msm in it) as $(DEMO_IMAGE)
	@mkdir -p .msm && ctx=$$(mktemp -d .msm/image.XXXXXX) && trap 'rm -rf "$$ctx"' EXIT && \
	CGO_ENABLED=0 $(GO) build -trimpath -o $$ctx/demo ./examples/demo && \
	cp build/demo.Dockerfile $$ctx/Dockerfile && \
	docker build -q -t $(DEMO_IMAGE) $$ctx

bin/temporal: ## build the pinned Temporal CLI (dev server + Web UI) once, static; ~7-11 min the first time
	export CGO_ENABLED=0 && $(TOOL_INSTALL) github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_VERSION)

temporal-image: bin/temporal ## build the Temporal dev server image FROM scratch (for docker-compose.local.yml) as $(TEMPORAL_IMAGE)
	@$(GO) version -m bin/temporal | grep -q 'CGO_ENABLED=0' || { echo "bin/temporal was built with cgo and cannot run FROM scratch: rm bin/temporal && make temporal-image"; exit 1; }
	@mkdir -p .msm && ctx=$$(mktemp -d .msm/image.XXXXXX) && trap 'rm -rf "$$ctx"' EXIT && \
	cp bin/temporal $$ctx/temporal && cp build/temporal.Dockerfile $$ctx/Dockerfile && \
	docker build -q -t $(TEMPORAL_IMAGE) $$ctx

docker-clean: ## remove every container and network of Manager $(MANAGER) from the local engine (after docker-compose down), the compose files' msm-$(MANAGER) too
	@ids=$$(docker ps -aq --filter label=io.msm.owner=$(MANAGER)); [ -z "$$ids" ] || docker rm -f $$ids
	@ids=$$(docker network ls -q --filter label=io.msm.owner=$(MANAGER)); [ -z "$$ids" ] || docker network rm $$ids
	@ids=$$(docker network ls -q --filter name=^msm-$(MANAGER)$$); [ -z "$$ids" ] || docker network rm $$ids

bin/staticcheck:
	$(TOOL_INSTALL) honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

bin/workflowcheck:
	$(TOOL_INSTALL) go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)

dev: build bin/temporal ## run Temporal (Web UI :8233), the Manager, local nodes and the example catalog
	bin/msm dev --catalog examples/catalog.yaml

ARTIFACTS := $(CURDIR)/.msm/artifacts

test: build bin/temporal chromium vm-tools ## run every test with -race (unit, workflow, replay, end-to-end); the Web UI tests' screenshots go to .msm/artifacts
	@mkdir -p .msm $(ARTIFACTS) && rm -f .msm/figures.txt $(ARTIFACTS)/*.png
	MSM_BIN=$(BIN) MSM_FIGURES=$(CURDIR)/.msm/figures.txt \
	  MSM_KEEP_SCREENSHOT=$(ARTIFACTS)/webui-extend-input.png MSM_KEEP_SCREENSHOT_LIST=$(ARTIFACTS)/webui-workflow-list.png \
	  MSM_KEEP_SCREENSHOT_DETAILS=$(ARTIFACTS)/webui-manager-details.png \
	  $(GO) test -race -count=1 -timeout 20m ./...
	@echo; echo "Recovery times measured by the fault tests:"; cat .msm/figures.txt
	@ls $(ARTIFACTS)/*.png 2>/dev/null | sed 's/^/Screenshot: /' || true

FUZZTIME ?= 60s
fuzz: ## run every fuzz target for FUZZTIME each (default 60s); `make test` runs their seed corpora
	@for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "$$pkg $$target"; $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

vm-tools: ## install (as root) what the cgroup v2 tests' VM needs on a cgroup v1 host, if missing: qemu, a kernel image, a static busybox
	@{ command -v qemu-system-x86_64 >/dev/null && ls /boot/vmlinuz-* >/dev/null 2>&1 && [ -x /bin/busybox ]; } || [ "$$(id -u)" != 0 ] || \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-system-x86 linux-image-amd64 busybox-static >/dev/null 2>&1 || \
	  echo "qemu, a kernel image or busybox could not be installed: the cgroup tests in a VM will be skipped"

chromium: ## install Debian's Chromium (as root) for the Web UI tests, if missing; without it they are skipped
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	  echo "chromium could not be installed: TestWebUIShowsDecodedPayloads and TestWebUIShowsSummariesAndDetails will be skipped"

check: bin/staticcheck bin/workflowcheck ## gofmt, go vet, staticcheck, workflowcheck, go mod tidy leaves no diff
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) vet ./...
	bin/staticcheck ./...
	bin/workflowcheck ./workflows/...
	$(GO) mod tidy
	@git diff --quiet -- go.mod go.sum || { echo "go mod tidy changed go.mod/go.sum: commit the result"; git --no-pager diff -- go.mod go.sum; exit 1; }

bench: build bin/temporal ## measure scale-out and recovery beside their floors; writes bench/results/latest.json (RUNS=20)
	$(GO) run ./bench -runs $(or $(RUNS),20) -bin $(BIN) -out bench/results/latest.json

clean: ## remove built binaries (keeps bin/temporal, which is slow to build) and .msm state
	rm -f bin/msm bin/msm-agent bin/demo bin/staticcheck bin/workflowcheck
	rm -rf .msm
