package vm

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/amqpha/amqpha/internal/testenv"
)

// A modules directory shaped like Debian 6.1's for the IPVS modules.
var fakeModules = map[string]string{
	"modules.dep": `kernel/lib/libcrc32c.ko:
kernel/crypto/crc32c_generic.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko:
kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko:
kernel/net/netfilter/nf_conntrack.ko: kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/ipvs/ip_vs.ko: kernel/net/netfilter/nf_conntrack.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/ipvs/ip_vs_rr.ko: kernel/net/netfilter/ipvs/ip_vs.ko kernel/net/netfilter/nf_conntrack.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/drivers/net/veth.ko:
kernel/net/802/stp.ko: kernel/net/llc/llc.ko
kernel/net/llc/llc.ko:
kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko
`,
	"modules.alias": `alias crypto-crc32c crc32c_generic
alias crc32c crc32c_generic
alias crc32c crc32c_intel
alias rtnl-link-veth veth
alias net-pf-16-proto-16-family-IPVS ip_vs
alias rtnl-link-bridge bridge
alias fs-* nonexistent
`,
	"modules.softdep": `# Soft dependencies extracted from modules themselves.
softdep libcrc32c pre: crc32c
softdep cifs gcm
softdep bridge post: br_netfilter
`,
	"modules.builtin": "kernel/net/unix/unix.ko\nkernel/net/ipv6/ipv6.ko\n",
}

func fakeModulesDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range fakeModules {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestResolve(t *testing.T) {
	db, err := loadModuleDB(fakeModulesDir(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		ask      []string
		want     []string // module names, in a valid load order
		optional []string
		wantErr  string
	}{
		{
			name:     "ip_vs with dependencies and libcrc32c's soft dependency",
			ask:      []string{"ip_vs"},
			want:     []string{"crc32c_generic", "crc32c_intel", "libcrc32c", "nf_defrag_ipv4", "nf_defrag_ipv6", "nf_conntrack", "ip_vs"},
			optional: []string{"crc32c_generic", "crc32c_intel"},
		},
		{
			name:     "shared dependencies once",
			ask:      []string{"ip_vs_rr", "ip_vs", "nf_conntrack"},
			want:     []string{"crc32c_generic", "crc32c_intel", "libcrc32c", "nf_defrag_ipv4", "nf_defrag_ipv6", "nf_conntrack", "ip_vs", "ip_vs_rr"},
			optional: []string{"crc32c_generic", "crc32c_intel"},
		},
		{
			name: "a soft dependency asked for outright is required",
			ask:  []string{"libcrc32c", "crc32c_generic"},
			want: []string{"crc32c_generic", "crc32c_intel", "libcrc32c"}, optional: []string{"crc32c_intel"},
		},
		{name: "dashes and aliases", ask: []string{"rtnl-link-bridge", "crc32c-intel"}, want: []string{"llc", "stp", "bridge", "crc32c_intel"}},
		{name: "built-in modules are dropped", ask: []string{"unix", "veth", "ipv6"}, want: []string{"veth"}},
		{name: "none", ask: []string{}, want: nil},
		{name: "unknown", ask: []string{"veth", "no_such", "fs-ext4"}, wantErr: "no_such, fs-ext4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.resolve(tt.ask)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names, optional []string
			pos := map[string]int{}
			for i, it := range got {
				names = append(names, modName(it.path))
				pos[it.path] = i
				if it.optional {
					optional = append(optional, modName(it.path))
				}
			}
			slices.Sort(names)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(names, want) {
				t.Errorf("modules %v, want %v", names, want)
			}
			slices.Sort(optional)
			if !slices.Equal(optional, tt.optional) {
				t.Errorf("optional %v, want %v", optional, tt.optional)
			}
			for i, it := range got { // dependencies load first
				for _, d := range db.dep.deps[it.path] {
					if j, ok := pos[d]; !ok || j > i {
						t.Errorf("%s loads before its dependency %s", it.path, d)
					}
				}
			}
		})
	}
}

func TestFiltered(t *testing.T) {
	db, err := loadModuleDB(fakeModulesDir(t))
	if err != nil {
		t.Fatal(err)
	}
	load, err := db.resolve([]string{"ip_vs"})
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, it := range load {
		set[it.path] = true
	}
	dep, alias, softdep := db.filtered(set)
	if strings.Contains(string(dep), "veth") || !strings.Contains(string(dep), "kernel/net/netfilter/ipvs/ip_vs.ko: kernel/net/netfilter/nf_conntrack.ko") {
		t.Errorf("modules.dep:\n%s", dep)
	}
	if want := "alias crypto-crc32c crc32c_generic\nalias crc32c crc32c_generic\nalias crc32c crc32c_intel\nalias net-pf-16-proto-16-family-IPVS ip_vs\n"; string(alias) != want {
		t.Errorf("modules.alias:\n%s\nwant:\n%s", alias, want)
	}
	if want := "softdep libcrc32c pre: crc32c\n"; string(softdep) != want {
		t.Errorf("modules.softdep: %q, want %q", softdep, want)
	}
}

func TestParseModulesDepErrors(t *testing.T) {
	for _, in := range []string{"no colon here\n", ": deps\n", "a b.ko: c.ko\n"} {
		if _, err := parseModulesDep(strings.NewReader(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestLoadModuleDBMissing(t *testing.T) {
	if _, err := loadModuleDB(t.TempDir()); !errors.Is(err, ErrMissing) {
		t.Errorf("err = %v, want ErrMissing", err)
	}
}

// The installed Debian kernel, if any, has every default module.
func TestDefaultModulesOnThisHost(t *testing.T) {
	k, err := FindKernel("", "")
	if err != nil {
		testenv.Missing(t, "no Debian kernel here: %v", err)
	}
	db, err := loadModuleDB(k.ModulesDir)
	if err != nil {
		t.Fatal(err)
	}
	load, err := db.resolve(DefaultModules())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, it := range load {
		names = append(names, modName(it.path))
	}
	for _, m := range []string{"ip_vs", "ip_vs_wlc", "nf_conntrack", "nf_defrag_ipv4", "nf_defrag_ipv6", "libcrc32c", "crc32c_generic", "veth", "bridge"} {
		if !slices.Contains(names, m) {
			t.Errorf("%s missing from %v", m, names)
		}
	}
}

func FuzzParseModulesDep(f *testing.F) {
	f.Add(fakeModules["modules.dep"])
	f.Add("a.ko:\n\n# comment\nb.ko: a.ko a.ko\nb.ko: c.ko\n")
	f.Fuzz(func(t *testing.T, in string) {
		d, err := parseModulesDep(strings.NewReader(in))
		if err != nil {
			return
		}
		if len(d.order) != len(d.deps) {
			t.Fatalf("%d lines in order, %d in the map", len(d.order), len(d.deps))
		}
		db := &moduleDB{dep: d, byName: map[string]string{}}
		var names []string
		for _, p := range d.order {
			db.byName[modName(p)] = p
			names = append(names, modName(p))
		}
		load, err := db.resolve(names)
		if err != nil {
			t.Fatal(err)
		}
		if len(load) > len(d.order) {
			t.Fatalf("%d modules to load out of %d", len(load), len(d.order))
		}
	})
}

func FuzzParseModulesSoftdep(f *testing.F) {
	f.Add(fakeModules["modules.softdep"])
	f.Add("softdep a pre: b c post: d pre: e\nsoftdep\nsoftdep x\n")
	f.Fuzz(func(t *testing.T, in string) {
		m, err := parseModulesSoftdep(strings.NewReader(in))
		if err != nil {
			return
		}
		for mod, pre := range m {
			for _, p := range pre {
				if p == "pre:" || p == "post:" || strings.TrimSpace(p) != p || p == "" {
					t.Fatalf("%s: bad pre name %q", mod, p)
				}
			}
		}
	})
}
