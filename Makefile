# `make build` gives ./wormhole, as the seed's did. See README.md.
.PHONY: build test lint test-unit test-browser test-lab gen clean deps install uninstall

NODE_MODULES := node_modules/.package-lock.json

$(NODE_MODULES): package.json package-lock.json
	npm ci

deps: $(NODE_MODULES)

# ./wormhole runs the bundle. It cannot be a copy of it: this directory's
# package.json says "type": "module", so Node 20 reads an extensionless file
# here as an ES module and the CommonJS bundle fails ("module is not defined").
# `make install` installs the bundle itself, away from that package.json.
build: $(NODE_MODULES)
	npm run build
	printf '#!/bin/sh\n# Runs the bundle built by `make build` (see the Makefile).\nexec node "$$(dirname "$$0")/dist/wormhole.cjs" "$$@"\n' > wormhole
	chmod 755 wormhole

gen: $(NODE_MODULES)
	npm run gen

# The linter (Biome; biome.jsonc says what it checks and why the few rules off are off).
lint: $(NODE_MODULES)
	npm run lint

# Unit and in-process integration tests: no root needed.
test-unit: $(NODE_MODULES)
	npm test

# The NAT lab: real wireguard-go behind real nftables NATs in network
# namespaces. Needs root and the packages .ci/run installs.
test-lab: build
	npm run test:lab

# The registry's status page in headless Chromium (Debian's /usr/bin/chromium,
# which .ci/run installs; skipped with a reason where it is missing).
test-browser: $(NODE_MODULES)
	node --import tsx --test --test-reporter=spec test/browser/*.test.ts

test: lint test-unit test-browser test-lab

# `make install` puts the program, the systemd units and example configs in
# place; PREFIX and DESTDIR as usual (DESTDIR=/tmp/stage for packaging). It
# never overwrites a config: the examples go in as *.example.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR ?= $(SYSCONFDIR)/systemd/system

install: build
	install -D -m 0755 dist/wormhole.cjs $(DESTDIR)$(BINDIR)/wormhole
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	for unit in wormhole-registry.service wormhole-node.service; do \
	  sed 's|/usr/local/bin/wormhole|$(BINDIR)/wormhole|g; s|/etc/wormhole/|$(SYSCONFDIR)/wormhole/|g' deploy/$$unit > $(DESTDIR)$(UNITDIR)/$$unit && \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$unit || exit 1; \
	done
	install -d -m 0700 $(DESTDIR)$(SYSCONFDIR)/wormhole
	install -m 0600 deploy/registry.toml $(DESTDIR)$(SYSCONFDIR)/wormhole/registry.toml.example
	install -m 0600 deploy/node.toml $(DESTDIR)$(SYSCONFDIR)/wormhole/node.toml.example

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/wormhole
	rm -f $(DESTDIR)$(UNITDIR)/wormhole-registry.service $(DESTDIR)$(UNITDIR)/wormhole-node.service
	rm -f $(DESTDIR)$(SYSCONFDIR)/wormhole/registry.toml.example $(DESTDIR)$(SYSCONFDIR)/wormhole/node.toml.example

clean:
	rm -rf dist wormhole
