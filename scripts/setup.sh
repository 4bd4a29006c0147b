#!/usr/bin/env bash
# Installs what amqpha's demo or tests need on a Debian machine, and nothing
# that is already there. Safe to run any number of times.
#   scripts/setup.sh demo            what ./run.sh demo and ./run.sh cluster need
#   scripts/setup.sh [test]          what the whole test suite needs (the default)
#   scripts/setup.sh --list demo|test  print the Debian packages of that set
# Before apt-get downloads anything it says how much.
# scripts/install-size.sh measures the sets on a fresh Debian 12 machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

# The demo: Debian's RabbitMQ (the harness runs its nodes), and the CA
# certificates `go mod download` needs to fetch modules over HTTPS.
demo_packages=(rabbitmq-server ca-certificates)

# The tests, besides the demo's packages:
#   gcc libc6-dev        go test -race needs cgo
#   keepalived           vipd's VRRP peer (integration/vrrp)
#   iproute2 procps      ip, ss and sysctl for network namespaces (integration/netns, the vipd lab)
#   systemd              systemd-analyze verify of vipd/vipd.service
#   haproxy              the vipd lab (examples/vipd/lab.sh)
#   linux-image-amd64 qemu-system-x86 busybox-static xz-utils ipvsadm
#                        a VM with a kernel that has IPVS (integration/vm, integration/ipvs)
# qemu without its recommendations: no GUI, audio or extra block drivers
# (the VM runs with -display none from a kernel and an initramfs).
test_packages=("${demo_packages[@]}" gcc libc6-dev keepalived iproute2 procps systemd haproxy
	linux-image-amd64 qemu-system-x86 busybox-static xz-utils ipvsadm)

list=false
if [ "${1:-}" = --list ]; then
	list=true
	shift
fi
case "${1:-test}" in
demo) packages=("${demo_packages[@]}") ;;
test) packages=("${test_packages[@]}") ;;
*)
	echo "usage: $0 [--list] [demo|test]" >&2
	exit 2
	;;
esac
if $list; then
	printf '%s\n' "${packages[@]}"
	exit 0
fi

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if ((${#missing[@]})); then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	# The harness runs its own nodes: keep the package's system service from
	# starting on port 5672 during the install.
	policy=/usr/sbin/policy-rc.d
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
		$sudo chmod 755 "$policy"
		trap '$sudo rm -f "$policy"' EXIT
	fi
	$sudo apt-get update -q
	# What apt-get will download: --print-uris lists each package it would
	# fetch (not those already in its cache) with its size, and installs
	# nothing.
	download=$($sudo apt-get install --no-install-recommends --print-uris -qq "${missing[@]}" |
		awk '{n++; b += $3} END {printf "%d packages, %.1f MB", n, b / 1e6}') || download="size unknown"
	echo "setup: installing ${missing[*]} (apt-get --no-install-recommends, once)"
	echo "setup: apt-get downloads $download"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
	echo "setup: installed ${missing[*]}"
fi

if ! command -v go >/dev/null; then
	echo "setup: Go is not installed (expected at /usr/local/go)" >&2
	exit 1
fi
go mod download
(cd amqpha/otelamqpha && go mod download) # its own module (OpenTelemetry)
