# Waybill: `make run` sets up and runs it, `make test` sets up and tests it (Debian 12 with Swift).
SHELL := /bin/bash
SWIFT ?= swift
PREFIX ?= /usr/local
DATA_DIR ?= ./waybill-data

# Every system package the build, the tests and the benchmarks need.
APT_PACKAGES := pkg-config libsqlite3-dev libcairo2-dev librsvg2-dev libzint-dev libqrencode-dev libpoppler-glib-dev \
	libzbar-dev zbar-tools poppler-utils fonts-dejavu-core fonts-dejavu-extra libpango1.0-dev libharfbuzz-dev zlib1g-dev libturbojpeg0-dev libpng-dev libtiff-dev libgmime-3.0-dev swaks openssl python3-reportlab python3-pil python3-zxing-cpp qpdf python3-aiosmtpd chromium chromium-driver python3-selenium python3-prometheus-client

.PHONY: all deps build release test run demo bench bench-sheets bench-decode bench-smtp install clean

all: build

# Idempotent: installs only what is missing (apt-get update first), with sudo when not root.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing system packages: $$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test

# Waybill's main job: the SMTP ingest service (port 2525, data in $(DATA_DIR)) until SIGTERM or Ctrl-C.
run: build
	WAYBILL_TEMPLATES=$${WAYBILL_TEMPLATES:-$(CURDIR)/Templates} $$($(SWIFT) build --show-bin-path)/waybill serve --data-dir $(DATA_DIR)

# A directive with a folder destination and its sheet, in $(DATA_DIR): something to scan with.
demo: build
	@bin=$$($(SWIFT) build --show-bin-path)/waybill; \
	id=$$($$bin directive create --data-dir $(DATA_DIR) --title "Demo: accounts payable" --owner you@example.com \
		--to folder:archive/invoices --expires 30d --max-uses 100 --json \
		| python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') && \
	mkdir -p $(DATA_DIR)/sheets && \
	$$bin sheet $$id --data-dir $(DATA_DIR) -o $(DATA_DIR)/sheets/$$id.pdf && \
	$$bin directive show $$id --data-dir $(DATA_DIR) && \
	echo "Print $(DATA_DIR)/sheets/$$id.pdf, lay it on top of your documents and scan to scan@<this host>:2525."

# Sheets per millisecond against the ReportLab peer, on the same machine in one run.
bench: bench-sheets bench-decode bench-smtp

bench-sheets: release
	Benchmarks/bench-sheets.sh

bench-decode: release
	Benchmarks/bench-decode.sh

bench-smtp: release
	Benchmarks/bench-smtp.sh

install: release
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/waybill/Templates
	install -m 0755 $$($(SWIFT) build -c release --show-bin-path)/waybill $(DESTDIR)$(PREFIX)/bin/waybill
	install -m 0644 Templates/*.svg $(DESTDIR)$(PREFIX)/share/waybill/Templates/

clean:
	$(SWIFT) package clean
