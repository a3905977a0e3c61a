# kregress: build, set up and test.
#
#   make demo   set up this machine and run the demonstration series
#   make test   set up this machine and run every test (what CI runs)

GO        ?= go
BIN       := bin

# Everything kregress and its tests need from Debian's archive.
DEBIAN_PACKAGES := qemu-system-x86 busybox-static linux-image-amd64 cpio kmod \
	linux-source-6.1 build-essential flex bison bc libelf-dev libssl-dev ccache \
	dwarves binutils tshark xz-utils git \
	libxml2-utils python3-junitparser \
	linux-headers-amd64 autoconf automake libtool libmount-dev pkg-config

.PHONY: all build setup demo demo-lustre smoke test vet clean

all: build

build:
	$(GO) build -o $(BIN)/kregress ./cmd/kregress
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/kregress-agent ./cmd/kregress-agent

# setup installs the Debian packages that are missing (needs root).
setup:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	$(GO) mod download

# The demonstration: Debian's linux-source-6.1 with the lockdep preset and
# examples/seed-series, each patch built, booted and run with the seedfs
# suite. Finding the regression (kregress exits 1) is the expected outcome.
DEMO_SOURCE := /usr/src/linux-source-6.1.tar.xz
DEMO_FLAGS  := --source $(DEMO_SOURCE) --series examples/seed-series \
	--config qemu-minimal --config lockdep --config debug-info \
	--config examples/seed-series/seedfs.config \
	--suite examples/seedfs.yaml --per-patch

demo: setup build
	@$(BIN)/kregress test $(DEMO_FLAGS); rc=$$?; \
	if [ $$rc -eq 1 ]; then echo "(exit 1: the series has a regression, as the demo expects)"; fi; \
	[ $$rc -le 1 ]

# The Lustre demonstration: examples/lustre-series applied per patch to the
# Lustre client tree LUSTRE (a lustre-release git checkout or source
# tarball; the series is written against lustre-release c881f8eb), each step
# an incremental client build against Debian's kernel headers, booted on
# Debian's kernel against the simulated Lustre server with lustre-sanity and
# lustre-lookup. Patch 3 is the bad one; kregress exits 1 when it finds it.
LUSTRE      ?=
DEMO_KERNEL  = $$(ls /boot/vmlinuz-* | sort -V | tail -n 1)
DEMO_LUSTRE_FLAGS = --client-series examples/lustre-series \
	--suite lustre-sanity,lustre-lookup --per-patch

demo-lustre: setup build
	@if [ -z "$(LUSTRE)" ] || [ ! -e "$(LUSTRE)" ]; then \
		echo "make demo-lustre: give LUSTRE=PATH, a lustre-release checkout or tarball (e.g. ../shared/lustre/lustre-release-c881f8eb.tar.xz)"; exit 2; fi
	@$(BIN)/kregress test --kernel "$(DEMO_KERNEL)" --client "$(LUSTRE)" $(DEMO_LUSTRE_FLAGS); rc=$$?; \
	if [ $$rc -eq 1 ]; then echo "(exit 1: the series has a regression, as the demo expects)"; fi; \
	[ $$rc -le 1 ]

# smoke boots Debian's stock kernel and runs the smoke suite.
smoke: setup build
	$(BIN)/kregress run --kernel "$$(ls /boot/vmlinuz-* | sort -V | tail -n 1)" --suite smoke

# One package at a time: kernel builds and TCG guests share two cores, and
# a guest booting beside a kernel build can take minutes.
test: setup build
	$(GO) vet ./...
	$(GO) test -p 1 -timeout 80m ./...

clean:
	rm -rf $(BIN) out
