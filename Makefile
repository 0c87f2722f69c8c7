# `make build` gives ./wormhole, as the seed's did. See README.md.
.PHONY: build test test-unit test-lab gen clean deps

NODE_MODULES := node_modules/.package-lock.json

$(NODE_MODULES): package.json package-lock.json
	npm ci

deps: $(NODE_MODULES)

build: $(NODE_MODULES)
	npm run build
	cp dist/wormhole.cjs wormhole
	chmod 755 wormhole

gen: $(NODE_MODULES)
	npm run gen

# Unit and in-process integration tests: no root needed.
test-unit: $(NODE_MODULES)
	npm test

# The NAT lab: real wireguard-go behind real nftables NATs in network
# namespaces. Needs root and the packages .ci/run installs.
test-lab: build
	npm run test:lab

test: test-unit test-lab

clean:
	rm -rf dist wormhole
