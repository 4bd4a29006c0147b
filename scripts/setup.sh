#!/usr/bin/env bash
# Installs what amqpha's demo and tests need on a Debian machine, and nothing
# that is already there. Safe to run any number of times.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

# Debian packages the tests use. Later capabilities add theirs here.
packages=(rabbitmq-server keepalived iproute2 systemd linux-image-amd64 busybox-static qemu-system-x86 ipvsadm xz-utils haproxy)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if ((${#missing[@]})); then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	echo "setup: installing ${missing[*]} with apt-get (once; about a minute) …"
	# The harness runs its own nodes: keep the package's system service from
	# starting on port 5672 during the install.
	policy=/usr/sbin/policy-rc.d
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
		$sudo chmod 755 "$policy"
		trap '$sudo rm -f "$policy"' EXIT
	fi
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
	echo "setup: installed ${missing[*]}"
fi

if ! command -v go >/dev/null; then
	echo "setup: Go is not installed (expected at /usr/local/go)" >&2
	exit 1
fi
go mod download
(cd amqpha/otelamqpha && go mod download) # its own module (OpenTelemetry)
