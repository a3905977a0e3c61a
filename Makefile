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

.PHONY: all build setup demo smoke test vet clean

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
