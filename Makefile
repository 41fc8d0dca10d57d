# Entry points for people and CI. `make test` is exactly what CI runs.
PYTHON ?= python3
VENV ?= .venv
TOX = $(VENV)/bin/tox
KIWI_NG = $(VENV)/bin/kiwi-ng

.PHONY: test unit lint mypy integration e2e demo doc venv clean box deps sdist wheel rpm deb release-check

venv: $(TOX)

# the Debian packages of .ci/apt-packages/ (root); seconds when present
deps:
	.ci/install-packages

$(TOX):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet tox 'kiwi>=10,<11'
	$(VENV)/bin/pip install --quiet -e .

# unit tests against kiwi 10 and kiwi 9.24, lint, types, then the
# integration suite with the real tools (needs root and the packages
# .ci/run installs)
test: deps $(TOX)
	$(TOX) -e unit-kiwi10,unit-kiwi9,lint,mypy,integration

unit: $(TOX)
	$(TOX) -e unit-kiwi10,unit-kiwi9

lint: $(TOX)
	$(TOX) -e lint

mypy: $(TOX)
	$(TOX) -e mypy

integration: $(TOX)
	$(TOX) -e integration

# what CI leaves out for time (whole box builds); run before resolving
e2e: deps $(TOX)
	$(TOX) -e e2e

# the main job, offline: build the Debian box (cached) and in it the tiny
# Debian description of test/data as a tbz image. The result and the
# build log land in $(DEMO_DIR)/image.
DEMO_DIR ?= /var/tmp/kiwi-plugins-demo

demo: box
	rm -rf $(DEMO_DIR)/description
	$(VENV)/bin/python boxes/debian/render-description test/data/tiny-debian $(DEMO_DIR)/description
	$(KIWI_NG) system boxbuild --list-boxes
	$(KIWI_NG) --type tbz system boxbuild --box debian -- \
		--description $(DEMO_DIR)/description --target-dir $(DEMO_DIR)/image

# the Debian box, from the host's apt mirror (root); cached by a hash of
# the recipe, so an unchanged recipe costs seconds
box: deps $(TOX)
	$(VENV)/bin/python boxes/debian/build-box

doc: $(TOX)
	$(TOX) -e doc

clean:
	rm -rf $(VENV) .tox build dist doc/build *.egg-info

# packaging uses the system python with python3-build and python3-sphinx
# (see .ci/apt-packages/packaging.txt); output goes to dist/
PACKAGING_PYTHON ?= /usr/bin/python3

sdist wheel:
	$(PACKAGING_PYTHON) package/release-check dist

rpm:
	$(PACKAGING_PYTHON) package/release-check rpm

deb:
	$(PACKAGING_PYTHON) package/release-check deb

# sdist, wheel, rpm and deb from a clean clone of HEAD, with their
# contents checked
release-check:
	$(PACKAGING_PYTHON) package/release-check check
