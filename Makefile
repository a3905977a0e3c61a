# kregress: build, set up and test.
#
#   make demo   set up this machine and run the default job
#   make test   run every test (what CI runs)

GO        ?= go
BIN       := bin

# Everything kregress and its tests need from Debian's archive.
DEBIAN_PACKAGES := qemu-system-x86 busybox-static linux-image-amd64 cpio kmod \
	linux-source-6.1 build-essential flex bison bc libelf-dev libssl-dev ccache \
	dwarves binutils tshark xz-utils git

.PHONY: all build setup demo test vet clean

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

demo: setup build
	$(BIN)/kregress run --kernel "$$(ls /boot/vmlinuz-* | sort -V | tail -n 1)" --suite smoke

test: build
	$(GO) vet ./...
	$(GO) test -timeout 80m ./...

clean:
	rm -rf $(BIN) out
