#!/usr/bin/env bash
# A virtual IP in front of a RabbitMQ cluster, for real, on one machine:
# two director hosts (network namespaces amqlab-d1 and amqlab-d2) run vipd and
# HAProxy, a 3-node RabbitMQ cluster runs behind them, and a client host
# (amqlab-c) publishes through the virtual IP with a plain amqp091-go client
# that only reconnects. Director 1 then dies (its vipd and HAProxy frozen, its
# cable pulled, both killed); director 2 takes the VIP over and the client
# carries on. Director 1 comes back and takes the VIP back (preempt). At the
# end the client drains the queue and a report says where the VIP was, how
# long the client went without a confirm, and whether any confirmed message
# was lost.
#
#   sudo examples/vipd/lab.sh [-d SECONDS] [-s] [-n]
#   sudo examples/vipd/lab.sh -c
#
#   -d SECONDS  how long the client publishes (default 30, at least 6);
#               director 1 dies after a third of it and returns after two
#   -s          short run for tests: -d 9
#   -n          director 1 stays dead (no failback)
#   -c          remove what a lab killed with SIGKILL left behind, and exit
#
# This is the keepalived+HAProxy shape of the source documents with vipd in
# keepalived's place (the same keepalived.conf): the kernel here has no IPVS,
# so HAProxy, not a virtual_server block, forwards the connections. On a host
# with ip_vs, vipd's virtual_server blocks do the forwarding instead.
#
# Addresses: a bridge amqlab0 in this (the root) namespace holds 10.213.0.1,
# where the RabbitMQ nodes accept AMQP besides 127.0.0.1; directors are
# 10.213.0.11 and .12, the client .20, the VIP 10.213.0.100. Nothing leaves
# that bridge and loopback. Everything the lab starts or creates is removed
# when it ends, however it ends (error, Ctrl-C, SIGTERM).
#
# Needs root, iproute2, haproxy, RabbitMQ (Debian's rabbitmq-server) and Go
# (scripts/setup.sh installs them). Exit status: 0 when the VIP moved and
# nothing confirmed was lost; 1 on failure; 2 for bad usage; 3 when a
# prerequisite is missing.
set -euo pipefail

readonly BR=amqlab0 NET=10.213.0 VIP=10.213.0.100 VRID=73
readonly D1=amqlab-d1 D2=amqlab-d2 CL=amqlab-c
readonly -A HOST_IP=([amqlab-d1]=10.213.0.11 [amqlab-d2]=10.213.0.12 [amqlab-c]=10.213.0.20)
readonly -A PRIORITY=([amqlab-d1]=100 [amqlab-d2]=90)
readonly -A STATE=([amqlab-d1]=MASTER [amqlab-d2]=BACKUP)

began=${EPOCHREALTIME/./}
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
say() {
	local now=${EPOCHREALTIME/./}
	local ms=$(((now - began) / 1000))
	printf '[%3d.%d s] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*"
}
die() {
	say "FAILED: $*" >&2
	show_logs >&2
	exit 1
}
# show_logs prints the end of every log of the lab, which the clean-up
# removes.
show_logs() {
	local f
	[ -n "${dir:-}" ] || return 0
	for f in "$dir"/*/vipd.log "$dir"/*/haproxy.log "$dir/cluster.log"; do
		[ -s "$f" ] || continue
		echo "--- last lines of ${f#"$dir"/}:"
		tail -n 8 "$f"
	done
}
missing() {
	echo "lab: missing prerequisite: $*" >&2
	exit 3
}
usage() {
	sed -n '/^#   sudo/,/^#   -c/p' "$self" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# secs MICROSECONDS prints them as seconds with three decimals.
secs() { printf '%d.%03d' $(($1 / 1000000)) $(($1 % 1000000 / 1000)); }

duration=30 failback=1 clean=0
while getopts 'd:snch' opt; do
	case $opt in
	d) duration=$OPTARG ;;
	s) duration=9 ;;
	n) failback=0 ;;
	c) clean=1 ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
(($# == 0)) || usage
if ! [[ $duration =~ ^[0-9]+$ ]] || ((duration < 6 || duration > 3600)); then
	echo "lab: -d wants whole seconds, 6 to 3600" >&2
	exit 2
fi

cd "$(dirname "$self")/../.."
export PATH="/usr/local/go/bin:$PATH"

# ---- prerequisites --------------------------------------------------------

(($(id -u) == 0)) || missing "root (network namespaces and a bridge): run it with sudo"
for cmd in ip haproxy flock sysctl ss timeout; do
	command -v "$cmd" >/dev/null || missing "$cmd (scripts/setup.sh installs what the lab needs)"
done
if ((!clean)); then
	command -v go >/dev/null || missing "go (expected in /usr/local/go/bin)"
	if ! command -v epmd >/dev/null || ! [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
		missing "RabbitMQ (Debian's rabbitmq-server; scripts/setup.sh installs it)"
	fi
fi

# One lab at a time: the names and addresses are fixed.
# Children get 9<&- so that none of them holds the lock on.
exec 9<"$self"
flock -n 9 || die "another lab.sh runs (it holds a lock on $self)"

leftovers() {
	ip netns list | awk '{print $1}' | grep -E "^($D1|$D2|$CL)\$" || true
	ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^($BR|$D1|$D2|$CL)\$" || true
}

if ((clean)); then
	for ns in $(ip netns list | awk '{print $1}' | grep -E "^($D1|$D2|$CL)\$" || true); do
		for pid in $(ip netns pids "$ns"); do kill -KILL "$pid" 2>/dev/null || true; done
		ip netns delete "$ns" && say "removed namespace $ns"
	done
	for l in $BR $D1 $D2 $CL; do
		ip link show "$l" >/dev/null 2>&1 && ip link delete "$l" && say "removed link $l"
	done
	# The programs a lab built run from its directory: the cluster command
	# among them stops its RabbitMQ nodes on SIGTERM.
	stopped=()
	for d in /run/amqlab.*; do
		[ -d "$d" ] || continue
		for p in /proc/[0-9]*; do
			exe=$(readlink "$p/exe" 2>/dev/null) || continue
			case $exe in
			"$d"/*)
				kill -TERM "${p#/proc/}" 2>/dev/null && stopped+=("${p#/proc/}") &&
					say "stopping $exe (pid ${p#/proc/})"
				;;
			esac
		done
	done
	for ((i = 0; i < 300; i++)); do
		left=0
		for pid in "${stopped[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
		((left)) || break
		sleep 0.1
	done
	for pid in "${stopped[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
	for d in /run/amqlab.*; do
		[ -d "$d" ] && rm -rf "$d" && say "removed $d"
	done
	say "clean"
	exit 0
fi

left=$(leftovers)
[ -z "$left" ] || die "left over from an earlier lab: $(echo "$left" | tr '\n' ' ')— remove with: $self -c"
[ -z "$(ip -4 -o addr show to "$NET.0/24")" ] || die "$NET.0/24 is already in use on this machine"
[ -z "$(ip -4 route show exact "$NET.0/24")" ] || die "there is already a route to $NET.0/24 here"

# ---- clean-up, on every exit path ------------------------------------------
#
# The lab's long-running processes start in sessions of their own (setsid,
# which keeps the pid as none of them leads a process group), so a Ctrl-C in
# the terminal reaches this script alone and the clean-up below stops them
# in order.

dir=""            # the lab's files
created_bridge=0  # amqlab0 is ours to delete
created_ns=()     # namespaces ours to delete
pids=()           # processes we started and not yet reaped (but the cluster), killed by pid
cluster_pid=""    # amqpha-cluster: SIGTERM, it stops RabbitMQ itself
client_pid=""
declare -A vipd_pid haproxy_pid

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	say "cleaning up …"
	[ -n "$cluster_pid" ] && kill -TERM "$cluster_pid" 2>/dev/null
	{
		for pid in "${pids[@]}"; do kill -KILL "$pid"; done
		for pid in "${pids[@]}"; do wait "$pid"; done
	} 2>/dev/null
	for ns in "${created_ns[@]}"; do
		# Anything our processes left inside our namespaces.
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
		ip netns delete "$ns" 2>/dev/null
	done
	for l in "${created_ns[@]}"; do # a veth goes with its peer's namespace; just in case
		ip link show "$l" >/dev/null 2>&1 && ip link delete "$l" 2>/dev/null
	done
	((created_bridge)) && ip link delete "$BR" 2>/dev/null
	if [ -n "$cluster_pid" ]; then
		say "stopping the RabbitMQ cluster …"
		local i=0
		while alive "$cluster_pid" && ((i++ < 600)); do sleep 0.1; done
		# Killed, it leaves RabbitMQ to its watchdog, which acts within a second.
		kill -0 "$cluster_pid" 2>/dev/null && kill -KILL "$cluster_pid"
		wait "$cluster_pid" 2>/dev/null
	fi
	[ -n "$dir" ] && rm -rf "$dir"
	local left
	left=$(leftovers)
	for pid in "${pids[@]}" "$cluster_pid"; do
		[ -n "$pid" ] && alive "$pid" && left+=" process $pid"
	done
	if [ -n "$left" ]; then
		say "FAILED to remove: $(echo "$left" | tr '\n' ' ')" >&2
		((rc)) || rc=1
	else
		say "cleaned up: no namespace, link, process or file of the lab is left"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM

alive() { kill -0 "$1" 2>/dev/null; }

# reaped PID…: waits for processes known to be dead and forgets them, so
# that the clean-up never signals a pid the system gave to someone else.
reaped() {
	local p q keep=()
	for p in "$@"; do wait "$p" 2>/dev/null || true; done
	for q in "${pids[@]}"; do
		for p in "$@"; do [ "$q" = "$p" ] && continue 2; done
		keep+=("$q")
	done
	pids=("${keep[@]}")
}

# wait_for SECONDS WHAT COMMAND… polls COMMAND every 0.1 s until it succeeds;
# fails the lab after SECONDS.
wait_for() {
	local limit=$1 what=$2 i
	shift 2
	for ((i = 0; i < limit * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	die "$what: not within $limit s"
}

dir=$(mktemp -d /run/amqlab.XXXXXX) # root's, mode 0700
say "lab files in $dir"

# ---- build -------------------------------------------------------------------

say "building vipd, the lab client and the cluster command …"
go build -o "$dir/" ./vipd ./examples/vipd/labclient ./integration/cmd/amqpha-cluster ||
	die "go build"

# ---- network -------------------------------------------------------------------

say "network: bridge $BR ($NET.1/24) and namespaces $D1 ($NET.11), $D2 ($NET.12), $CL ($NET.20)"
ip link add "$BR" type bridge stp_state 0 forward_delay 0 mcast_snooping 0
created_bridge=1
# No IPv6 on the lab's interfaces here: nothing but the lab's own traffic.
sysctl -qw "net.ipv6.conf.$BR.disable_ipv6=1" 2>/dev/null || true
ip addr add "$NET.1/24" dev "$BR"
ip link set "$BR" up
for ns in "$D1" "$D2" "$CL"; do
	ip netns add "$ns"
	created_ns+=("$ns")
	# The host end keeps the namespace's name; inside it is eth0, as in
	# the configurations of examples/vipd/.
	ip link add "$ns" type veth peer name eth0 netns "$ns"
	sysctl -qw "net.ipv6.conf.$ns.disable_ipv6=1" 2>/dev/null || true
	ip link set "$ns" master "$BR" up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "${HOST_IP[$ns]}/24" dev eth0
	ip -n "$ns" link set eth0 up
done
# HAProxy binds the VIP on both directors, also where it is not configured.
for ns in "$D1" "$D2"; do
	ip netns exec "$ns" sysctl -qw net.ipv4.ip_nonlocal_bind=1
done

# ---- cluster ------------------------------------------------------------------

say "starting a 3-node RabbitMQ cluster, AMQP also on $NET.1 (about 20 s) …"
setsid "$dir/amqpha-cluster" -nodes 3 -net-ticktime 10s -extra-ip "$NET.1" -user amqlab -env-file "$dir/cluster.env" \
	>"$dir/cluster.log" 2>&1 9<&- &
cluster_pid=$!
say "cluster command started (pid $cluster_pid)"
for ((i = 1; ; i++)); do
	[ -s "$dir/cluster.env" ] && break
	alive "$cluster_pid" || {
		tail -n 20 "$dir/cluster.log" >&2
		die "the cluster did not start"
	}
	((i < 1800)) || die "the cluster did not start within 180 s"
	((i % 150 == 0)) && say "still waiting for the cluster ($((i / 10)) s) …"
	sleep 0.1
done
# shellcheck source=/dev/null
. "$dir/cluster.env"
for v in AMQPHA_AMQP_PORTS AMQPHA_USER AMQPHA_PASSWORD AMQPHA_DATA_DIR; do
	[ -n "${!v:-}" ] || die "the cluster's $dir/cluster.env lacks $v"
done
read -r -a ports <<<"$AMQPHA_AMQP_PORTS"
((${#ports[@]} == 3)) || die "the cluster reported ${#ports[@]} AMQP ports, want 3"
# shellcheck disable=SC2153 # AMQPHA_* come from cluster.env
say "cluster ready: nodes on $NET.1:${ports[0]}, :${ports[1]}, :${ports[2]}; user $AMQPHA_USER (cluster data in $AMQPHA_DATA_DIR)"

say "checking that the directors reach every node …"
for ns in "$D1" "$D2"; do
	for p in "${ports[@]}"; do
		ip netns exec "$ns" timeout 3 bash -c "exec 3<>/dev/tcp/$NET.1/$p" ||
			die "$ns cannot connect to $NET.1:$p"
	done
done

# ---- directors ----------------------------------------------------------------

# haproxy_start NS writes the director's haproxy.cfg and starts HAProxy.
haproxy_start() {
	local ns=$1 i
	mkdir -p "$dir/$ns"
	{
		cat <<-EOF
			# HAProxy on director $ns: TCP to the RabbitMQ nodes, health-checked.
			global
			    maxconn 2000
			    log stderr format short local0 notice

			defaults
			    mode tcp
			    log global
			    timeout connect 1s
			    timeout client 1m
			    timeout server 1m
			    timeout check 1s

			frontend amqp
			    bind $VIP:5672
			    default_backend rabbitmq

			backend rabbitmq
			    balance leastconn
			    default-server check inter 1s fall 2 rise 2
		EOF
		for i in "${!ports[@]}"; do
			printf '    server node%d %s:%s\n' "$i" "$NET.1" "${ports[$i]}"
		done
	} >"$dir/$ns/haproxy.cfg"
	haproxy -c -q -f "$dir/$ns/haproxy.cfg" || die "haproxy rejects $dir/$ns/haproxy.cfg"
	setsid ip netns exec "$ns" haproxy -db -f "$dir/$ns/haproxy.cfg" >>"$dir/$ns/haproxy.log" 2>&1 9<&- &
	haproxy_pid[$ns]=$!
	pids+=("$!")
	wait_for 5 "HAProxy listening on $ns" \
		bash -c "ip netns exec $ns ss -Hltn 'sport = :5672' | grep -q ."
	say "HAProxy on $ns (pid ${haproxy_pid[$ns]}) forwards $VIP:5672 to the 3 nodes"
}

# vipd_start NS writes the director's keepalived.conf and starts vipd.
vipd_start() {
	local ns=$1 out
	# chk_haproxy runs without a shell: /bin/kill -0 PID succeeds while this
	# director's HAProxy lives. If it dies, the priority drops by 20, below
	# the other director's.
	cat >"$dir/$ns/keepalived.conf" <<-EOF
		! vipd on director $ns, written by examples/vipd/lab.sh
		global_defs {
		    router_id $ns
		    enable_script_security
		    script_user root
		}

		vrrp_script chk_haproxy {
		    script "/bin/kill -0 ${haproxy_pid[$ns]}"
		    interval 1
		    timeout 1
		    weight -20
		    fall 2
		    rise 1
		}

		vrrp_instance amqlab {
		    state ${STATE[$ns]}
		    interface eth0
		    virtual_router_id $VRID
		    priority ${PRIORITY[$ns]}
		    version 3
		    advert_int 0.1              # takeover in about 0.35 s
		    virtual_ipaddress {
		        $VIP/24 dev eth0
		    }
		    track_script {
		        chk_haproxy
		    }
		}
	EOF
	# vipd check: the configuration is valid and the script was not
	# disabled by enable_script_security (it would say so).
	if ! out=$("$dir/vipd" check -f "$dir/$ns/keepalived.conf" 2>&1 >/dev/null) || grep -qi 'disabled\|warn' <<<"$out"; then
		echo "$out" >&2
		die "vipd check -f $dir/$ns/keepalived.conf"
	fi
	setsid ip netns exec "$ns" "$dir/vipd" run -f "$dir/$ns/keepalived.conf" >>"$dir/$ns/vipd.log" 2>&1 9<&- &
	vipd_pid[$ns]=$!
	pids+=("$!")
	say "vipd on $ns (pid ${vipd_pid[$ns]}): priority ${PRIORITY[$ns]}, VRRPv3, adverts every 0.1 s"
}

holds_vip() { ip -n "$1" -4 -o addr show dev eth0 | grep -q " $VIP/"; }
who_holds() {
	local ns held=""
	for ns in "$D1" "$D2"; do holds_vip "$ns" && held+="$ns "; done
	echo "${held% }"
}

for ns in "$D1" "$D2"; do haproxy_start "$ns"; done
vipd_start "$D1"
wait_for 10 "VIP on $D1" holds_vip "$D1"
say "$D1 holds the VIP $VIP"
vipd_start "$D2"
sleep 1 # let director 2 hear a few adverts and settle as backup
before=$(who_holds)
[ "$before" = "$D1" ] || die "the VIP is on '$before', want $D1 alone"

# ---- client -------------------------------------------------------------------

t_kill=$((duration / 3)) t_back=$((2 * duration / 3))
say "client on $CL: publishing through $VIP:5672 for $duration s (director 1 dies at ${t_kill} s$( ((failback)) && echo ", returns at ${t_back} s"))"
(
	# shellcheck disable=SC2153 # from cluster.env
	export AMQP_USER="$AMQPHA_USER" AMQP_PASSWORD="$AMQPHA_PASSWORD"
	exec setsid ip netns exec "$CL" "$dir/labclient" -addr "$VIP:5672" -duration "${duration}s" \
		> >(tee "$dir/client.log" | sed -u 's/^/           client | /') 2>&1
) 9<&- &
client_pid=$!
pids+=("$client_pid")
client_began=${EPOCHREALTIME/./}
say "client started (pid $client_pid)"

# until SECONDS: sleep until the client has run that long, saying so, and
# fail if it died.
until_client() {
	local at=$((client_began + $1 * 1000000))
	while ((${EPOCHREALTIME/./} < at)); do
		alive "$client_pid" || die "the client ended early (see above)"
		sleep 0.1
	done
}
gaps_so_far() {
	local n
	n=$(grep -c '^gap ' "$dir/client.log" 2>/dev/null) || true
	echo "${n:-0}"
}

until_client "$t_kill"
say "director 1 dies: vipd and HAProxy frozen (SIGSTOP), cable pulled, then both killed (SIGKILL)"
kill -STOP "${vipd_pid[$D1]}" "${haproxy_pid[$D1]}"
ip link set "$D1" down
# (Quiet: bash would report each kill as "Killed".)
{
	kill -KILL "${vipd_pid[$D1]}" "${haproxy_pid[$D1]}"
	reaped "${vipd_pid[$D1]}" "${haproxy_pid[$D1]}"
} 2>/dev/null
killed_at=${EPOCHREALTIME/./}
gaps_at_kill=$(gaps_so_far)
for ((i = 0; i < 500; i++)); do
	holds_vip "$D2" && break
	sleep 0.02
done
holds_vip "$D2" || die "$D2 did not take the VIP over within 10 s"
takeover=$((${EPOCHREALTIME/./} - killed_at))
after=$D2
say "$D2 holds the VIP, $(secs "$takeover") s after director 1 died"

back=""
if ((failback)); then
	until_client "$t_back"
	say "director 1 returns: cable plugged in, HAProxy and vipd started again"
	ip link set "$D1" up
	gaps_at_back=$(gaps_so_far)
	haproxy_start "$D1"
	vipd_start "$D1"
	returned_at=${EPOCHREALTIME/./}
	wait_for 10 "VIP back on $D1 (preempt)" holds_vip "$D1"
	wait_for 5 "VIP off $D2" bash -c "! ip -n $D2 -4 -o addr show dev eth0 | grep -q ' $VIP/'"
	back=$D1
	say "$D1 holds the VIP again (preempt, priority 100 over 90), $(secs $((${EPOCHREALTIME/./} - returned_at))) s after vipd started"
fi

say "waiting for the client to finish publishing and drain the queue …"
for ((i = 0; i < (duration + 120) * 10; i++)); do
	alive "$client_pid" || break
	((i > 0 && i % 150 == 0)) && say "the client is still at work …"
	sleep 0.1
done
alive "$client_pid" && die "the client did not finish"
client_rc=0
wait "$client_pid" || client_rc=$?
reaped "$client_pid"
sleep 0.2 # let the output pipe flush

# ---- report -------------------------------------------------------------------

result=$(grep '^result: ' "$dir/client.log" | tail -n 1 || true)
[ -n "$result" ] || die "the client printed no result (exit status $client_rc)"
gap_line() { sed -n "s/^gap $1: //p" "$dir/client.log" | head -n 1; }
takeover_gap=$(gap_line $((gaps_at_kill + 1)))
failback_gap=""
if ((failback)); then
	n=$((gaps_at_back + 1))
	((n > gaps_at_kill + 1)) || n=$((gaps_at_kill + 2))
	failback_gap=$(gap_line "$n")
fi
confirmed=$(sed -n 's/^result: confirmed \([0-9]*\),.*/\1/p' <<<"$result")
lost=$(sed -n 's/.* lost \([0-9]*\),.*/\1/p' <<<"$result")

echo
echo "== report"
printf '%-34s %s\n' "VIP before the kill:" "$before"
printf '%-34s %s\n' "VIP after the kill:" "$after ($(secs "$takeover") s after director 1 died)"
((failback)) && printf '%-34s %s\n' "VIP after director 1 returned:" "$back (preempt)"
printf '%-34s %s\n' "client outage on takeover:" "${takeover_gap:-none measured}"
((failback)) && printf '%-34s %s\n' "client outage on failback:" "${failback_gap:-none measured}"
printf '%-34s %s\n' "client:" "${result#result: }"
printf '%-34s %s\n' "confirmed:" "$confirmed"
printf '%-34s %s\n' "lost:" "$lost"
echo
((client_rc == 0)) || die "the client exited with status $client_rc"
[ "$lost" = 0 ] || die "$lost confirmed messages were lost"
((confirmed > 0)) || die "nothing was confirmed"
say "done: the VIP moved from $before to $after$( ((failback)) && echo " and back to $back"), nothing confirmed was lost"
