# cartmem: `make test` runs lint and the whole test suite; `make demo` runs the main job.
# The virtual environment lives outside the clone, keyed by the pinned dependency file, so a
# second clone (or CI on the same machine) reuses it instead of reinstalling torch.

PYTHON ?= python3
CACHE_DIR ?= $(HOME)/.cache/cartmem
DEPS_KEY := $(shell cat constraints.txt | sha256sum | cut -c1-16)
VENV ?= $(CACHE_DIR)/venv-$(DEPS_KEY)
BIN := $(VENV)/bin
STAMP := $(VENV)/.deps-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
PYTEST_ARGS ?=

.PHONY: test lint format venv tools demo clean-venv lock audit

# The main job on embedded defaults: SQLite under ~/.local/share/cartmem, no Kafka needed.
demo: venv
	$(BIN)/cartmem demo

test: venv tools lint
	CARTMEM_REQUIRE_TOOLS=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

venv: $(STAMP)
	@# point the editable install at this clone (another clone may have claimed the venv)
	@if [ "$$(cat $(VENV)/.cartmem-src 2>/dev/null)" != "$(CURDIR)" ]; then \
		$(BIN)/pip install -q --no-deps --no-build-isolation -e . && echo "$(CURDIR)" > $(VENV)/.cartmem-src; \
	fi

$(STAMP): pyproject.toml constraints.txt
	@echo "== creating $(VENV) (first time: downloads torch, a few minutes)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	echo "$(CURDIR)" > $(VENV)/.cartmem-src
	touch $@

# Outside programs the tests use (Debian packages): kcat, the independent Kafka client the
# smoke tests compare against; ffmpeg, which makes media our own code did not; openssl, the
# throwaway CA of the TLS test; PostgreSQL's server binaries, which the tests use where
# pgserver is not installable (Python 3.13+) and for TLS (pgserver's lack SSL);
# GStreamer's RTSP server (run by the system Python), the camera the live tests connect to.
TOOL_PACKAGES := kcat:kcat ffmpeg:ffmpeg openssl:openssl
RTSP_PACKAGES := gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad python3-gi
RTSP_PROBE := import gi; gi.require_version("Gst", "1.0"); gi.require_version("GstRtspServer", "1.0"); \
	from gi.repository import Gst, GstRtspServer; Gst.init(None); \
	assert all(Gst.ElementFactory.find(e) for e in ("qtdemux", "h264parse", "rtph264pay"))
tools:
	@missing=""; for pair in $(TOOL_PACKAGES); do \
		command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	/usr/bin/python3 -c '$(RTSP_PROBE)' >/dev/null 2>&1 || missing="$$missing $(RTSP_PACKAGES)"; \
	if [ -n "$$missing" ]; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			echo "== installing$$missing (apt)"; \
			(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null 2>&1 || \
			 (apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null 2>&1)) \
			|| echo "== could not install$$missing; the tests that need them will say so"; \
		else echo "== missing$$missing and apt-get not usable; the tests that need them will say so"; fi; \
	fi

# Known vulnerabilities in every pinned dependency (pip-audit, in a virtualenv of its own so
# that the project's pins and venv stay as they are). --strict: a package the vulnerability
# service cannot look up fails the audit instead of passing unchecked. It needs pypi.org's
# JSON API (AUDIT_SERVICE=pypi) or api.osv.dev (AUDIT_SERVICE=osv); not in CI, whose
# network reaches neither (docs/SECURITY.md, "Dependencies").
AUDIT_VENV ?= $(CACHE_DIR)/pip-audit-2.10.1
AUDIT_SERVICE ?= pypi
audit:
	test -x $(AUDIT_VENV)/bin/pip-audit || \
		($(PYTHON) -m venv $(AUDIT_VENV) && $(AUDIT_VENV)/bin/pip install -q pip-audit==2.10.1)
	$(AUDIT_VENV)/bin/pip-audit --requirement constraints.txt --no-deps --disable-pip --strict \
		--vulnerability-service $(AUDIT_SERVICE) --progress-spinner off

# Regenerate the pins from the current environment (after changing dependencies).
lock: venv
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean-venv:
	rm -rf $(VENV)
