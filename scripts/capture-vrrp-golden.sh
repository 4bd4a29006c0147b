#!/usr/bin/env bash
# Captures VRRP advertisements sent by the real keepalived and writes them as
# golden files for vipd's packet codec (vipd/vrrp/testdata/*.golden).
#
# Run as root: sudo scripts/capture-vrrp-golden.sh [OUTDIR]
#
# It builds two throwaway network namespaces joined by a veth pair, runs
# keepalived as MASTER in the first one once per scenario, captures a few of
# its adverts with tcpdump in the second one, and writes, per scenario, the
# VRRP message in hex (no IP header), the IP source and destination, the TTL
# or hop limit, and the keepalived configuration used (as comments).
# Namespaces, processes and temporary files are removed on every exit.
# A scenario that the installed keepalived does not support is skipped with a
# message; its old golden file, if any, is left alone.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/vipd/vrrp/testdata}

if [ "$(id -u)" -ne 0 ]; then
	echo "capture-vrrp-golden: run as root (network namespaces)" >&2
	exit 1
fi
for cmd in keepalived tcpdump ip awk; do
	command -v "$cmd" >/dev/null || { echo "capture-vrrp-golden: $cmd not found" >&2; exit 1; }
done
keepalived_bin=$(command -v keepalived)
version=$(keepalived -v 2>&1 | head -n 1)

nsA="vgold$$a"
nsB="vgold$$b"
ifA="vg$$a"
ifB="vg$$b"
tmp=$(mktemp -d)
pids=()

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	ip netns del "$nsA" 2>/dev/null || true
	ip netns del "$nsB" 2>/dev/null || true
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# wait_for TENTHS CONDITION... polls a command for up to TENTHS/10 s.
wait_for() {
	local i n=$1
	shift
	for ((i = 0; i < n; i++)); do
		if "$@"; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

forget_pid() {
	local p keep=()
	for p in "${pids[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	pids=("${keep[@]+"${keep[@]}"}")
}

# Two namespaces, one veth pair, fixed addresses. addrgenmode none keeps the
# kernel from adding a second, random link-local address, so keepalived's
# IPv6 source is the fixed one; DAD is off so the addresses are usable at once.
ip netns add "$nsA"
ip netns add "$nsB"
for ns in "$nsA" "$nsB"; do
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	ip -n "$ns" link set lo up
done
ip -n "$nsA" link add "$ifA" address 02:00:5e:10:00:01 type veth peer name "$ifB" address 02:00:5e:10:00:02 netns "$nsB"
ip -n "$nsA" link set "$ifA" addrgenmode none
ip -n "$nsB" link set "$ifB" addrgenmode none
ip -n "$nsA" addr add 192.0.2.1/24 dev "$ifA"
ip -n "$nsB" addr add 192.0.2.2/24 dev "$ifB"
ip -n "$nsA" addr add fe80::1/64 dev "$ifA" nodad
ip -n "$nsB" addr add fe80::2/64 dev "$ifB" nodad
ip -n "$nsA" link set "$ifA" up
ip -n "$nsB" link set "$ifB" up

mkdir -p "$out"

# decode reads `tcpdump -nn -x -r` output and prints one line per packet:
# SRC DST TTL HEX, HEX being the VRRP message only. The IP header's own
# lengths decide where the message ends (short frames carry Ethernet padding).
decode() {
	awk '
	function flush(   n, i, ver, ihl, total, ttl, start, end, payload) {
		if (hex == "") return
		n = length(hex) / 2
		ver = substr(hex, 1, 1)
		if (ver == "4") {
			ihl = substr(hex, 2, 1); ihl = index("0123456789abcdef", ihl) - 1
			start = ihl * 4
			total = hexval(substr(hex, 5, 4))
			ttl = hexval(substr(hex, 17, 2))
			end = total
		} else {
			start = 40
			total = hexval(substr(hex, 9, 4))
			ttl = hexval(substr(hex, 15, 2))
			end = 40 + total
		}
		if (end > n) end = n
		payload = substr(hex, start * 2 + 1, (end - start) * 2)
		print src, dst, ttl, payload
		hex = ""
	}
	function hexval(s,   i, v) {
		v = 0
		for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
		return v
	}
	/^[0-9]/ {
		flush()
		src = $3; dst = $5; sub(/:$/, "", dst)
		next
	}
	/^[ \t]+0x[0-9a-f]+:/ {
		for (i = 2; i <= NF; i++) hex = hex tolower($i)
	}
	END { flush() }
	'
}

# capture NAME DESCRIPTION CONFIG: runs keepalived with CONFIG (IFACE stands
# for the interface name), captures three adverts and writes NAME.golden.
capture() {
	local name=$1 desc=$2 config=$3
	local conf="$tmp/$name.conf" pcap="$tmp/$name.pcap" log="$tmp/$name.log" terr="$tmp/$name.tcpdump"
	config=${config#$'\n'}
	printf '%s\n' "${config//IFACE/$ifA}" >"$conf"

	ip netns exec "$nsB" tcpdump -i "$ifB" -nn -U -c 3 -w "$pcap" 'ip proto 112 or ip6 proto 112' 2>"$terr" &
	local tpid=$!
	pids+=("$tpid")
	if ! wait_for 100 grep -q 'listening on' "$terr"; then
		echo "capture-vrrp-golden: $name: tcpdump did not start:" >&2
		cat "$terr" >&2
		exit 1
	fi

	ip netns exec "$nsA" "$keepalived_bin" -P -l -n -D -G -f "$conf" \
		-p "$tmp/$name.pid" -r "$tmp/$name.vrrp.pid" -c "$tmp/$name.check.pid" >"$log" 2>&1 &
	local kpid=$!
	pids+=("$kpid")

	# keepalived starts in BACKUP even with state MASTER and takes over after
	# Master_Down_Interval (3 adverts and the skew), then sends every advert_int.
	if ! wait_for 300 bash -c '! kill -0 "$1" 2>/dev/null' _ "$tpid"; then
		echo "capture-vrrp-golden: $name: no three adverts within 30 s; keepalived said:" >&2
		tail -n 30 "$log" >&2
		exit 1
	fi
	wait "$tpid" || true
	forget_pid "$tpid"
	kill -TERM "$kpid" 2>/dev/null || true
	wait "$kpid" || true
	forget_pid "$kpid"

	local lines
	lines=$(tcpdump -nn -x -r "$pcap" 2>/dev/null | decode)
	local count distinct
	count=$(printf '%s\n' "$lines" | grep -c .)
	distinct=$(printf '%s\n' "$lines" | sort -u | grep -c .)
	if [ "$count" -lt 1 ]; then
		echo "capture-vrrp-golden: $name: nothing decoded" >&2
		exit 1
	fi
	local src dst ttl payload
	read -r src dst ttl payload <<<"$(printf '%s\n' "$lines" | head -n 1)"

	{
		echo "# $desc"
		echo "# Captured from $version by scripts/capture-vrrp-golden.sh;"
		echo "# $count adverts captured, $distinct distinct; this is the first."
		echo "# payload is the VRRP message only (no IP header), ttl the IPv4 TTL or"
		echo "# IPv6 hop limit it arrived with. Addresses: 192.0.2.1 and fe80::1 on"
		echo "# keepalived's side, 192.0.2.2 and fe80::2 on the capturing side."
		echo "#"
		echo "# keepalived.conf:"
		sed "s/^/#   /; s/$ifA/IFACE/g" "$conf"
		echo
		echo "src $src"
		echo "dst $dst"
		echo "ttl $ttl"
		echo "payload $payload"
	} >"$out/$name.golden"
	echo "capture-vrrp-golden: wrote $out/$name.golden ($src > $dst ttl $ttl, $count adverts, $distinct distinct)"
}

# supports KEYWORD: whether the installed keepalived knows a config keyword.
supports() {
	grep -aq "$1" "$keepalived_bin"
}

capture v2-pass "VRRPv2, multicast, auth_type PASS, two addresses." '
global_defs {
    router_id golden
}
vrrp_instance golden {
    state MASTER
    interface IFACE
    virtual_router_id 51
    priority 100
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    virtual_ipaddress {
        192.0.2.100/32
        192.0.2.101/32
    }
}'

capture v3-ipv4 "VRRPv3 over IPv4, multicast, advert_int 0.1, keepalived default checksum." '
global_defs {
    router_id golden
}
vrrp_instance golden {
    version 3
    state MASTER
    interface IFACE
    virtual_router_id 52
    priority 200
    advert_int 0.1
    virtual_ipaddress {
        192.0.2.110/32
        192.0.2.111/32
    }
}'

if supports v3_checksum_as_v2; then
	capture v3-ipv4-as-v2 "VRRPv3 over IPv4, multicast, v3_checksum_as_v2 (no pseudo-header)." '
global_defs {
    router_id golden
}
vrrp_instance golden {
    version 3
    state MASTER
    interface IFACE
    virtual_router_id 53
    priority 150
    advert_int 0.5
    v3_checksum_as_v2
    virtual_ipaddress {
        192.0.2.130/32
    }
}'
else
	echo "capture-vrrp-golden: $version has no v3_checksum_as_v2 (added in 2.2.8): v3-ipv4-as-v2 skipped" >&2
fi

capture v3-ipv6 "VRRPv3 over IPv6, multicast, link-local source and first address." '
global_defs {
    router_id golden
}
vrrp_instance golden {
    version 3
    state MASTER
    interface IFACE
    virtual_router_id 54
    priority 100
    advert_int 1
    virtual_ipaddress {
        fe80::54/64
        2001:db8::54/64
    }
}'

capture v2-unicast "VRRPv2, unicast to one peer, no authentication." '
global_defs {
    router_id golden
}
vrrp_instance golden {
    state MASTER
    interface IFACE
    virtual_router_id 55
    priority 120
    advert_int 2
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
    }
    virtual_ipaddress {
        192.0.2.150/32
    }
}'

capture v3-ipv4-unicast "VRRPv3 over IPv4, unicast to one peer, keepalived default checksum." '
global_defs {
    router_id golden
}
vrrp_instance golden {
    version 3
    state MASTER
    interface IFACE
    virtual_router_id 56
    priority 254
    advert_int 1.5
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
    }
    virtual_ipaddress {
        192.0.2.160/32
    }
}'

if supports old_unicast_checksum; then
	capture v3-ipv4-unicast-old "VRRPv3 over IPv4, unicast, old_unicast_checksum (keepalived before 1.3.6)." '
global_defs {
    router_id golden
}
vrrp_instance golden {
    version 3
    state MASTER
    interface IFACE
    virtual_router_id 57
    priority 100
    advert_int 1
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
    }
    old_unicast_checksum
    virtual_ipaddress {
        192.0.2.170/32
    }
}'
else
	echo "capture-vrrp-golden: $version has no old_unicast_checksum: v3-ipv4-unicast-old skipped" >&2
fi
