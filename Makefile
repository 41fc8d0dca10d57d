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
# build log land in $(DEMO_DIR)/image. Then stash and stackbuild on that
# result, a minute or two more: its root tree in $(DEMO_DIR)/root, stored
# as the stash tiny-debian in root's container storage, and rebuilt from
# the stash into $(DEMO_DIR)/stacked.
DEMO_DIR ?= /var/tmp/kiwi-plugins-demo

demo: box
	rm -rf $(DEMO_DIR)/description
	$(VENV)/bin/python boxes/debian/render-description test/data/tiny-debian $(DEMO_DIR)/description
	$(KIWI_NG) system boxbuild --list-boxes
	$(KIWI_NG) --type tbz system boxbuild --box debian -- \
		--description $(DEMO_DIR)/description --target-dir $(DEMO_DIR)/image
	@echo
	@echo '== The image as a root tree again: the tarball boxbuild made, unpacked, with'
	@echo '== its description where kiwi keeps it in a root (image/config.xml)'
	rm -rf $(DEMO_DIR)/root $(DEMO_DIR)/stacked
	mkdir -p $(DEMO_DIR)/root/image
	tar --numeric-owner --xattrs --xattrs-include='*' --acls -C $(DEMO_DIR)/root \
		-xJf $(DEMO_DIR)/image/tiny-debian.x86_64-1.0.0-0.tar.xz
	cp $(DEMO_DIR)/description/config.xml $(DEMO_DIR)/root/image/config.xml
	@echo
	@echo '== kiwi-ng system stash: the root tree stored as an OCI image in the local'
	@echo '== container storage, named after the description (tiny-debian); stashing'
	@echo '== it again stores only what changed'
	$(KIWI_NG) system stash --root $(DEMO_DIR)/root
	$(KIWI_NG) system stash --list
	@echo
	@echo '== kiwi-ng system stackbuild: the stash unpacked into a new root tree and the'
	@echo '== image rebuilt from it with kiwi-ng system create: no package installed'
	@echo '== (with the fast xz setting the description gives its box build)'
	$(KIWI_NG) --type tbz --config $(DEMO_DIR)/description/boxroot/etc/kiwi.yml \
		system stackbuild --stash tiny-debian --target-dir $(DEMO_DIR)/stacked
	@echo
	@echo '== The image built in the box: $(DEMO_DIR)/image; its root stashed as'
	@echo '== tiny-debian; the image rebuilt from the stash: $(DEMO_DIR)/stacked'

# the Debian box, from the host's apt mirror (root); cached by a hash of
# the recipe, so an unchanged recipe costs seconds
# BOX_FLAVOUR=conformance builds the box whose box side behaves as the
# published boxes' (boxes/debian/README.md)
# ARCH=arm64 (or aarch64) builds the box for that architecture through
# qemu-user, beside the x86_64 one in the catalog
BOX_FLAVOUR ?= agent
ARCH ?=
box: deps $(TOX)
	$(VENV)/bin/python boxes/debian/build-box --flavour $(BOX_FLAVOUR) $(if $(ARCH),--arch $(ARCH))

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
