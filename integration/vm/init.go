package vm

import (
	"fmt"
	"strings"
)

// Console markers. /init prints them with the run's token appended
// ("AMQPHA-VM-EXIT-3f9a… 0") so that nothing the command prints can pass
// for them.
const (
	markStart = "AMQPHA-VM-START-"
	markExit  = "AMQPHA-VM-EXIT-"
	markError = "AMQPHA-VM-ERROR-"
)

// setupFailedCode is the exit status /init reports after markError.
const setupFailedCode = "125"

// Guest paths of the files that drive /init.
const (
	guestConfig  = "/amqpha/config"  // shell variables: TOKEN, LOAD_MODULES (per run)
	guestRun     = "/amqpha/run.sh"  // exports Env and execs Command (per run)
	guestModules = "/amqpha/modules" // "required|optional <path>" in load order (base)
)

// initScript is the guest's /init, run by busybox's shell as PID 1. It sets
// up the guest, loads the modules, runs the command and powers off. It must
// never exit: PID 1 exiting panics the kernel (which, with panic=-1 and
// qemu's -no-reboot, at least ends qemu).
const initScript = `#!/bin/busybox sh
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /run /root /etc
/bin/busybox --install -s
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root AMQPHA_VM=1
umask 022

off() {
	sync
	poweroff -f
	echo o >/proc/sysrq-trigger
	sleep 10
}
fail() {
	echo "` + markError + `$TOKEN $*"
	echo "` + markExit + `$TOKEN ` + setupFailedCode + `"
	off
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
. ` + guestConfig + ` || fail "no ` + guestConfig + `"

if [ "$LOAD_MODULES" = 1 ]; then
	while read -r kind mod; do
		[ -n "$mod" ] || continue
		out=$(insmod "$mod" 2>&1) || [ "$kind" = optional ] || fail "insmod $mod: $out"
	done <` + guestModules + `
fi
ip link set lo up || fail "ip link set lo up"
hostname amqpha-vm

echo "` + markStart + `$TOKEN"
cd /
sh ` + guestRun + ` </dev/null
echo "` + markExit + `$TOKEN $?"
off
`

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// runScript is /amqpha/run.sh: the environment and the command.
func runScript(env, command []string) string {
	var b strings.Builder
	for _, kv := range env {
		b.WriteString("export " + shellQuote(kv) + "\n")
	}
	b.WriteString("exec")
	for _, a := range command {
		b.WriteString(" " + shellQuote(a))
	}
	b.WriteString("\n")
	return b.String()
}

// configScript is /amqpha/config.
func configScript(token string, loadModules bool) string {
	load := 0
	if loadModules {
		load = 1
	}
	return fmt.Sprintf("TOKEN=%s\nLOAD_MODULES=%d\n", token, load)
}
