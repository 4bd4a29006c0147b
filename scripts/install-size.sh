#!/usr/bin/env bash
# Prints what scripts/setup.sh makes apt-get download and install on a fresh
# Debian 12 machine, for the demo's packages and for the tests', without
# installing anything: apt is pointed at a made-up dpkg status holding only a
# fresh system's packages. Two fresh systems:
#   minbase  priority "required" and apt (debootstrap --variant=minbase; the
#            debian:12 container image)
#   base     priorities "required" and "important" (debootstrap's default;
#            the base system of the Debian installer, without a kernel)
# It reads this machine's apt lists (run apt-get update first for today's
# sizes) and needs no root. The figures are in BENCHMARKS.md. With --before
# it also measures what setup.sh installed before version 0.1.0.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/empty"
mkdir -p "$tmp/archives/partial"
# No lock, no real status, no cached .debs: a machine that has nothing yet.
apt=(apt-get -qq -o Debug::NoLocking=1 -o Dir::Cache::Archives="$tmp/archives/"
	-o Dir::State::extended_states="$tmp/empty" --no-install-recommends)

# status OUT PACKAGES...: a dpkg status file in which exactly PACKAGES and
# what they depend on are installed, at the versions apt would install.
status() {
	local out=$1
	shift
	LC_ALL=C "${apt[@]}" -s -o Dir::State::status="$tmp/empty" install "$@" |
		awk '/^Inst /{v = $3; sub(/^\(/, "", v); print $2 "=" v}' >"$out.list"
	xargs apt-cache show <"$out.list" |
		awk '/^Package:/{print; print "Status: install ok installed"; next} {print}' >"$out"
}

# priority P...: the packages of those priorities.
priority() {
	local re
	re=$(IFS='|' && echo "$*")
	apt-cache dumpavail | awk -v re="^Priority: ($re)\$" '/^Package:/{p = $2} $0 ~ re {print p}' | sort -u
}

# What setup.sh installed for the demo and the tests alike before version
# 0.1.0, with apt's recommendations: measured with --before.
before=(rabbitmq-server keepalived iproute2 systemd linux-image-amd64 busybox-static qemu-system-x86 ipvsadm xz-utils haproxy)

# size STATUS SET: the packages, the download and the disk space of SET's
# packages on top of STATUS.
size() {
	local st=$1 set=$2 pkgs opts=()
	if [ "$set" = before ]; then
		pkgs=("${before[@]}")
		opts=(-o APT::Install-Recommends=true)
	else
		mapfile -t pkgs < <(scripts/setup.sh --list "$set")
	fi
	local n bytes kib
	read -r n bytes < <("${apt[@]}" "${opts[@]}" -o Dir::State::status="$st" --print-uris install "${pkgs[@]}" |
		awk '{n++; b += $3} END {print n + 0, b + 0}')
	kib=$(LC_ALL=C "${apt[@]}" "${opts[@]}" -s -o Dir::State::status="$st" install "${pkgs[@]}" |
		awk '/^Inst /{v = $3; sub(/^\(/, "", v); print $2 "=" v}' | xargs -r apt-cache show |
		awk '/^Installed-Size:/{k += $2} END {print k + 0}')
	printf '%-8s %-5s %4d packages  download %6.1f MB  on disk %6.1f MB\n' \
		"$(basename "$st")" "$set" "$n" "$(awk -v b="$bytes" 'BEGIN{print b / 1e6}')" \
		"$(awk -v k="$kib" 'BEGIN{print k * 1024 / 1e6}')"
}

mapfile -t required < <(priority required)
mapfile -t important < <(priority required important)
status "$tmp/minbase" "${required[@]}" apt
status "$tmp/base" "${important[@]}" apt
for st in minbase base; do
	echo "$st: $(wc -l <"$tmp/$st.list") packages installed"
done
sets=(demo test)
[ "${1:-}" != --before ] || sets+=(before)
for st in minbase base; do
	for set in "${sets[@]}"; do
		size "$tmp/$st" "$set"
	done
done
