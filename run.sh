#!/usr/bin/env bash
# The project's single entry point.
#   ./run.sh demo   failover demo: a local 3-node cluster, producer and consumer
#                   through amqpha while nodes are killed, hung and cut off; a
#                   report at the end (Ctrl-C stops it cleanly)
#   ./run.sh cluster  start a local 3-node RabbitMQ cluster and show it (Ctrl-C stops it)
#   ./run.sh test   install what is missing, vet, run unit and integration tests
#   ./run.sh setup [demo]  only install what is missing (for the tests; demo: for
#                   the demo and the cluster command)
#   ./run.sh bench  run the benchmarks whose figures are in BENCHMARKS.md
set -euo pipefail
cd "$(dirname "$0")"
export PATH="/usr/local/go/bin:$PATH"

# setup demo|test: install the packages of that set that are missing.
setup() { scripts/setup.sh "$1"; }

vet() {
	echo "== gofmt, go vet"
	local unformatted
	unformatted=$(gofmt -l .)
	if [ -n "$unformatted" ]; then
		printf 'gofmt would change:\n%s\n' "$unformatted"
		return 1
	fi
	go vet ./...
	go vet -tags integration ./...
	# amqpha/otelamqpha is a module of its own, which ./... leaves out.
	(cd amqpha/otelamqpha && go vet ./... && go vet -tags integration ./...)
}

unit() {
	echo "== unit tests (-race)"
	go test -race -count=1 -timeout 5m ./...
	(cd amqpha/otelamqpha && go test -race -count=1 -timeout 5m ./...)
}

fuzz() {
	echo "== fuzzing what callers pass to Publish and Consume (bounded)"
	# Any input fails its call at once or works, with no new connection.
	go test -run '^$' -fuzz '^FuzzPublishInput$' -fuzztime 20s ./amqpha/
}

integration() {
	echo "== integration tests against real RabbitMQ clusters (-race)"
	# One package at a time: each starts its own cluster, and two cores are
	# not enough for several at once.
	go test -race -count=1 -tags integration -p 1 -timeout 30m ./integration/...
	# OpenTelemetry tracing across a failover, on a 2-node cluster of its own.
	(cd amqpha/otelamqpha && go test -race -count=1 -tags integration -timeout 10m ./...)
}

bench() {
	echo "== benchmarks (figures for BENCHMARKS.md)"
	go test -run '^$' -bench . -benchmem ./balancer/
	go test -run '^$' -bench 'Apply100x10|ReconcileOneChange' -benchmem ./vipd/lvs/
	go test -tags integration -run '^$' -bench ClusterStart -benchtime 3x -timeout 10m ./integration/cluster/
	go run ./integration/cmd/amqpha-bench -seconds 3 -rounds 3 -kills 10 -hangs 10
	# What the tracing hooks cost per message (fake broker).
	(cd amqpha/otelamqpha && go test -run '^$' -bench Hooks -benchtime 20000x -count 5 .)
	go run ./integration/cmd/amqpha-bench -idle 60 -idle-hangs 10
	# Stalls per fault kind (kill, hang, stop, drain, cut) of the clients' node
	# and of the queues' leader, amqpha vs a hand-written amqp091-go loop side
	# by side: 100 rounds of about 30 s (a leader hang about 90 s).
	go run ./integration/cmd/amqpha-bench -stalls 10
	AMQPHA_HEALTH_ROUNDS=8 go test -count=1 -tags integration -v ./integration/health/ | grep -v 'level='
	# vipd vs keepalived: takeover time and resources (network namespaces).
	AMQPHA_VRRP_BENCH=5 go test -tags integration -count=1 -v -run TestTakeoverFigures -timeout 20m ./integration/vrrp/ |
		grep -v 'level='
}

case "${1:-}" in
demo)
	setup demo
	shift
	go run ./integration/cmd/amqpha-demo "$@"
	;;
cluster)
	setup demo
	shift
	go run ./integration/cmd/amqpha-cluster "$@"
	;;
test)
	setup test
	vet
	unit
	fuzz
	integration
	echo "== all tests passed"
	;;
setup) setup "${2:-test}" ;;
bench)
	setup test
	bench
	;;
*)
	echo "usage: $0 demo|test|setup|bench|cluster" >&2
	exit 2
	;;
esac
