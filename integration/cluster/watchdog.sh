# Runs under bash: dash's kill cannot signal a process group.
# Watchdog of one harness cluster. Started in its own session by the harness,
# so a Ctrl-C to the terminal does not reach it.
#   $1  pid of the process that owns the cluster
#   $2  the cluster's directory
#   $3  the longest the cluster may live, in seconds
# It returns as soon as the directory is gone (the owner tore the cluster
# down). If the owner dies first, or the time is up, it kills every process
# group the harness recorded in $2/pgids, every node recorded in a pid file,
# and removes the directory.
owner=$1
dir=$2
limit=$3
i=0
while [ "$i" -lt "$limit" ]; do
	[ -d "$dir" ] || exit 0
	kill -0 "$owner" 2>/dev/null || break
	sleep 1
	i=$((i + 1))
done
[ -d "$dir" ] || exit 0
echo "amqpha cluster watchdog: owner $owner is gone, tearing down $dir" >&2
for f in "$dir"/nodes/*/rabbitmq.pid; do
	[ -f "$f" ] && kill -CONT "$(cat "$f")" 2>/dev/null && kill -KILL "$(cat "$f")" 2>/dev/null
done
if [ -f "$dir/pgids" ]; then
	while read -r g; do
		kill -KILL -- "-$g" 2>/dev/null
	done <"$dir/pgids"
fi
rm -rf "$dir"
