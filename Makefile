# Two commands matter: `make run` and `make test`. Both set up everything they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test setup native-tools lint typecheck pytest ffmpeg pdf-tools ceph browser chromium deploy-tools wrk demo lock bench clean

run: setup
	$(BIN)/bwc init
	$(BIN)/bwc run

test: setup lint typecheck pytest

setup: $(STAMP) ffmpeg pdf-tools

# the install builds the audit tree's C extension (pyproject.toml), with the tools native-tools makes sure of
$(STAMP): pyproject.toml constraints.txt storage/_merkle_native.c | native-tools
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

# The audit tree's C extension (storage/_merkle_native.c) needs a C compiler and the headers of OpenSSL and
# Python: Debian's gcc, libssl-dev and python3-dev. Without them the install still succeeds and the tree's
# hashes run on their Python fallback, about four times the CPU (under CI=true a test fails instead).
NATIVE_OK := command -v gcc >/dev/null && test -f /usr/include/openssl/sha.h && $(PYTHON) -c \
  "import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))"
native-tools:
	@$(NATIVE_OK) || { \
	  echo "gcc or the OpenSSL/Python headers not found: installing gcc, libssl-dev and python3-dev from Debian"; \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get \
	    -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends gcc libc6-dev libssl-dev python3-dev >/dev/null \
	  || echo "NOTE: the build tools could not be installed: the audit tree hashes in Python (under CI=true a test fails)."; }

# ffmpeg/ffprobe probe the media; Debian's packages provide them.
ffmpeg:
	@command -v ffprobe >/dev/null && command -v ffmpeg >/dev/null || { \
	  echo "ffmpeg not found: installing it from Debian's packages"; \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -qq ffmpeg; }

# The period report's PDF needs a Chinese TrueType font (WenQuanYi Zen Hei); its tests read the PDF back with
# poppler's pdftotext. Both from Debian's packages.
pdf-tools:
	@test -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc && command -v pdftotext >/dev/null || { \
	  echo "Chinese PDF font or pdftotext not found: installing fonts-wqy-zenhei and poppler-utils from Debian"; \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) \
	    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends fonts-wqy-zenhei poppler-utils; }

# Ceph's RADOS Gateway, a real S3 server the tests start on loopback (tests/fixtures/ceph_rgw.sh). Only the tests
# need it; where it cannot be installed they skip its half with a note (under CI=true they fail instead).
ceph:
	@command -v radosgw >/dev/null && command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null || { \
	  echo "Ceph's RADOS Gateway not found: installing it from Debian's packages (for the S3 tests)"; \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
	    radosgw ceph-mon ceph-osd ceph-common openssl curl >/dev/null \
	  || echo "NOTE: Ceph's packages could not be installed: the RGW tests skip (under CI=true they fail)."; }

# The deployment files are checked by the tools that read them (tests/deploy): `docker-compose config` for
# deploy/compose.yaml (Debian's docker-compose; it needs no Docker daemon) and `systemd-analyze verify` for the
# systemd unit. Where docker-compose cannot be installed that test skips (under CI=true it fails instead).
deploy-tools:
	@command -v docker-compose >/dev/null || (command -v docker >/dev/null && docker compose version >/dev/null 2>&1) || { \
	  echo "docker-compose not found: installing Debian's docker-compose (to validate deploy/compose.yaml)"; \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get \
	    -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends docker-compose >/dev/null \
	  || echo "NOTE: docker-compose could not be installed: the compose check skips (under CI=true it fails)."; }

# wrk, the HTTP load generator bench/api.py drives the running service with (C, one event loop per thread, a
# Lua script for the case URLs and tokens). Only the benchmarks need it; Debian's package provides it.
wrk:
	@command -v wrk >/dev/null || { \
	  echo "wrk not found: installing Debian's wrk (the load generator of bench/api.py)"; \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get \
	    -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends wrk >/dev/null; }

# The browser tests (tests/browser): Debian's Chromium, driven by Playwright (which never downloads a browser),
# and axe-core from the npm registry, its one minified file unpacked into the tests' fixtures. Where either
# cannot be had the browser tests skip with a note (under CI=true they fail instead).
AXE_VERSION := 4.14.1
AXE_JS := tests/browser/fixtures/axe.min.js
browser: chromium $(AXE_JS)

chromium:
	@command -v chromium >/dev/null || { \
	  echo "Chromium not found: installing Debian's chromium (for the browser tests)"; \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get \
	    -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium >/dev/null \
	  || echo "NOTE: Chromium could not be installed: the browser tests skip (under CI=true they fail)."; }

$(AXE_JS):
	@mkdir -p $(@D); tmp=$$(mktemp -d); \
	if (cd $$tmp && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null \
	    && tar -xzf axe-core-$(AXE_VERSION).tgz package/axe.min.js package/LICENSE); then \
	  cp $$tmp/package/LICENSE $(@D)/axe-core.LICENSE && cp $$tmp/package/axe.min.js $@; \
	else echo "NOTE: axe-core could not be fetched with npm: the browser tests skip (under CI=true they fail)."; fi; \
	rm -rf $$tmp

# A small true city in the embedded default (or BWC_HOME) and a reviewer's sign-in; then `make run`.
demo: setup
	$(BIN)/bwc demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# One pytest-xdist worker a core (`make test PYTEST_WORKERS=0` runs in one process); tests/conftest.py keeps a
# module's tests, and all browser tests, on one worker each.
PYTEST_WORKERS ?= auto
pytest: $(STAMP) ffmpeg pdf-tools ceph browser deploy-tools
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || echo "NOTE: PostgreSQL is not answering on 127.0.0.1:5432:" \
	  "its tests are skipped and only the SQLite half runs (under CI=true they fail instead)."
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# Re-resolve the pinned set after changing pyproject.toml's ranges.
lock:
	rm -rf /tmp/bwc-lock && $(PYTHON) -m venv /tmp/bwc-lock
	/tmp/bwc-lock/bin/pip install --quiet --upgrade pip setuptools wheel
	/tmp/bwc-lock/bin/pip install --quiet -e '.[dev]'
	/tmp/bwc-lock/bin/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

bench: setup wrk
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.coverage
	$(BIN)/python -m bench.imports
	$(BIN)/python -m bench.export
	$(BIN)/python -m bench.report
	$(BIN)/python -m bench.api

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build storage/_merkle_native*.so
