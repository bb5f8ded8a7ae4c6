# The front door. Two commands do everything on a fresh machine:
#   make demo   install what is missing, build, start the engines and services, show status
#   make test   the same set-up, then every test (and unit+http again under ASan+UBSan)
# The rest: make up | down | status | reset | logs | build | seed | asan | tsan | test-unit |
#           test-tsan | fuzz | bench | lint | format | check-format | images | k8s-up | k8s-down |
#           help   (README.md: each)

STACK := deploy/local/stack.sh
SHELL := /bin/bash

.PHONY: fuzz help demo test up down status reset logs deps build stack-build asan tsan test-unit test-tsan lint \
	format check-format images k8s-up k8s-down seed bench bench-http bench-user bench-message bench-product bench-cart bench-analytics

help:
	@sed -n '2,7p' Makefile | sed 's/^# \{0,1\}//'

deps:
	@deploy/local/deps.sh

build: deps
	@cmake --preset debug >/dev/null
	@cmake --build --preset debug

# The stack runs release builds (optimised, with debug info); tests use debug and asan.
stack-build: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release --target stack

# A container image per service and per local engine (tools/images/build.sh: podman, buildah or
# docker, roots from Debian's mirror, no registry); prints their sizes.
images: stack-build
	@tools/images/build.sh all

# The platform on a single-node Kubernetes cluster in a network namespace of its own (workshops;
# tools/k8s/cluster.sh, deploy/k8s/overlays/local): images, cluster, Secrets, apply, rollouts.
K8S_STATE ?= /var/lib/polyglot/k8s-node
K8S_ENV = eval "$$(tools/k8s/cluster.sh env $(K8S_STATE))"

k8s-up: stack-build
	@tools/images/build.sh all --save $(K8S_STATE)/images
	@tools/k8s/cluster.sh up $(K8S_STATE) --images $(K8S_STATE)/images
	@$(K8S_ENV) && deploy/k8s/secrets.sh local && kubectl apply -k deploy/k8s/overlays/local
	@echo "==> waiting for every engine and service (a few minutes the first time)"
	@$(K8S_ENV) && kubectl -n polyglot wait --for=condition=complete job --all --timeout=10m && \
		kubectl -n polyglot wait --for=condition=ready pod -l 'app.kubernetes.io/component in (engine,service)' --timeout=10m && \
		kubectl -n polyglot get pods,services
	@echo 'kubectl for this cluster: eval "$$(tools/k8s/cluster.sh env)"'
	@echo 'a Service, by its CLUSTER-IP above: tools/k8s/cluster.sh exec -- curl -s http://CLUSTER-IP:8080/readyz'

k8s-down:
	@tools/k8s/cluster.sh down

asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan

tsan: deps
	@cmake --preset tsan >/dev/null
	@cmake --build --preset tsan

demo: up
	@echo
	@$(STACK) status
	@echo
	@deploy/local/demo.sh

up: build stack-build
	@$(STACK) up

down:
	@$(STACK) down

status:
	@$(STACK) status

reset:
	@$(STACK) reset

logs:
	@$(STACK) logs $(NAME)

# The deterministic product catalog into the running product-svc (tools/seed.sh): SEED (default
# 42) and COUNT (default 10000) products; twice is harmless.
seed: build
	@tools/seed.sh

# All labels (unit, http, integration, e2e) against the real local stack, then unit and http
# again under the asan preset.
test: build asan stack-build
	@$(STACK) up
	@echo "==> tests (debug): unit, http, integration, e2e"
	@ctest --preset debug
	@echo "==> tests (asan): unit, http"
	@ctest --preset asan

# Quick loop while coding: no engines needed.
test-unit: build
	@ctest --preset debug -L '^(unit|http)$$'

# The tests that run threads (label `threads`: the http tests, lib's Kafka clients on the mock
# cluster, the outbox relay, the pool and the worker) under ThreadSanitizer. No engines needed.
test-tsan: tsan
	@ctest --preset tsan

# Fails on a banned function or on a clang-tidy check that .clang-tidy makes an error.
lint: build
	@tools/check-banned.sh
	@tools/lint.sh

format:
	@tools/format.sh

# Fails, listing the files, when a C file is not as clang-format (.clang-format) would write it.
check-format:
	@tools/format.sh --check

# Every fuzz target under libFuzzer for FUZZ_SECONDS (default 60) each.
fuzz: deps
	@tools/fuzz.sh

# Benchmarks (bench/README.md): every benchmark, or one. Loopback traffic only, a few minutes.
bench: bench-http bench-user bench-message bench-product bench-cart bench-analytics

bench-http:
	@bench/http_baseline/run.sh

# Needs the local PostgreSQL and Kafka: `make up` or `deploy/local/stack.sh up postgres kafka`.
bench-user:
	@bench/user_svc/run.sh

# Needs the running stack (make up) with message-svc caught up with user-events.
bench-message:
	@bench/message_svc/run.sh

# Needs the running stack (make up) with product-svc; seeds the catalog itself when it is empty.
bench-product:
	@bench/product_svc/run.sh

# Needs the running stack (make up) with user-svc, product-svc and cart-svc ready.
bench-cart:
	@bench/cart_svc/run.sh

# Needs the running stack (make up) with ClickHouse (its query log on) and Kafka.
bench-analytics:
	@bench/analytics_svc/run.sh
