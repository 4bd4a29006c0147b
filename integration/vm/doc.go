// Package vm runs commands, and whole Go test binaries, inside a throwaway
// qemu virtual machine that boots Debian's own kernel. vipd's tests need it
// for IPVS: the kernel the tests run on here has no ip_vs, Debian's
// linux-image-amd64 has it as modules.
//
// # Running a command
//
// [Run] boots the kernel under qemu-system-x86_64 with TCG (pure emulation:
// KVM is not available) on an initramfs, runs [Config.Command] as root and
// returns its output and exit status in a [Result]:
//
//	res, err := vm.Run(ctx, vm.Config{Command: []string{"cat", "/proc/net/ip_vs"}})
//
// The guest's /init mounts proc, sysfs, devtmpfs, devpts and tmpfs on /tmp,
// /run and /dev/shm, loads the kernel modules, brings lo up, runs the command
// with its output on the serial console, prints the exit status behind a
// marker with a per-run token and powers off. qemu gets no network device at
// all (-nodefaults), so every packet stays inside the guest; namespaces,
// veth pairs and bridges made there are the guest's alone.
//
// A command that does not finish within [Config.Timeout] (or before ctx is
// done) is killed with qemu; Run then returns a [*GuestError] wrapping
// [ErrTimeout] that carries the console so far. A guest that stops without
// reporting a status (a kernel panic) gives [ErrNoExit]; a required module
// that fails to load gives [ErrSetup].
//
// # Tests inside the guest
//
// [RunTest] is the usual way in: it builds the package's test binary
// statically ([BuildStaticTestBinary]), ships it into the guest, runs the
// tests matching a pattern there with -test.v and fails the host's test with
// the guest's output unless they pass. The guest-side tests sit in the same
// package and skip unless [InGuest] reports true:
//
//	func TestIPVSInVM(t *testing.T) { // host side
//		vm.RunTest(t, ".", "^TestGuestIPVS$", vm.Config{})
//	}
//
//	func TestGuestIPVS(t *testing.T) { // guest side
//		if !vm.InGuest() {
//			t.Skip("runs inside the VM that TestIPVSInVM boots")
//		}
//		// root, IPVS loaded, no other process around
//	}
//
// [BuildStaticBinary] builds a main package (vipd itself) for
// [Config.Files]. [Config.Binaries] ships dynamically linked host programs,
// such as ipvsadm or iproute2's ip, with their shared libraries and loader.
//
// # Kernel modules
//
// [Config.Modules] (by default [DefaultModules]: IPVS with every scheduler,
// veth, bridge, dummy) go into the initramfs with their dependencies from the
// kernel's modules.dep and soft dependencies from modules.softdep
// (libcrc32c needs crc32c); /init loads them in dependency order with
// insmod. With [Config.OnDemand] they are only put there, with modules.dep,
// modules.alias and modules.softdep cut down to them: busybox's modprobe and
// the kernel's autoloader then load them when asked, e.g. "modprobe ip_vs"
// (moby/ipvs runs it), a scheduler's module when a service names it, veth
// or bridge when such a link is created. Anything outside the list cannot
// be loaded in the guest.
//
// # The initramfs and its cache
//
// The initramfs is two concatenated cpio archives in the kernel's "newc"
// format, written by this package without root or a cpio command. The base
// (/init, a static busybox, the modules, a few /etc files) depends only on
// the kernel and the module list; it is built once and kept in
// [Config.CacheDir] under a name that hashes what it is made of. A run
// appends its own small archive (command, environment, files). The cache
// also keeps the kernel uncompressed: qemu boots that directly through its
// PVH entry point, which saves the seconds the kernel's xz decompressor takes
// under emulation. Cached files are replaced atomically; concurrent runs
// share them safely. Stale entries are not removed: delete the directory to
// reclaim space (about 70 MB per kernel).
//
// # Prerequisites
//
// qemu-system-x86 (qemu-system-x86_64), linux-image-amd64 (/boot/vmlinuz-*
// and /lib/modules/*), busybox-static (/bin/busybox) and the go command;
// scripts/setup.sh installs the packages. Root is not needed. [Require]
// skips a test when something is missing and fails it when CI=true;
// [Check] reports what is missing.
//
// # What the guest has and lacks
//
// Busybox provides the shell and the usual tools (ip, brctl, modprobe,
// insmod, nc, unshare, nsenter, sysctl...), but its ip has no "ip netns" and
// cannot create veth pairs (bridges and dummies it can, and "ip link set
// IFACE netns PID" moves a link); use netlink from Go, or ship iproute2's ip
// through [Config.Binaries], with which "ip netns" works (/run is a tmpfs).
// Loading dummy creates dummy0. There is no C library unless a shipped binary brings
// one, so Go programs must be built with CGO_ENABLED=0 (the Build functions
// do that). Under emulation everything is slower than on the host; keep
// timeouts generous and health-check intervals short.
package vm
