package lvs_test

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/amqpha/amqpha/internal/testenv"
	"github.com/amqpha/amqpha/vipd/config"
	"github.com/amqpha/amqpha/vipd/lvs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	ip = netip.MustParseAddr
	ap = netip.MustParseAddrPort
)

func loadSeed(t testing.TB, name string) *config.Config {
	t.Helper()
	cfg, err := config.Load(filepath.Join(seedDir(t), name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cfg
}

func parse(t testing.TB, src string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("keepalived.conf", []byte(src))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, src)
	}
	return cfg
}

// fromConfig runs FromConfig and fails on any error.
func fromConfig(t testing.TB, cfg *config.Config, health lvs.HealthFunc) lvs.Table {
	t.Helper()
	tab, errs := lvs.FromConfig(cfg, health)
	for _, err := range errs {
		t.Errorf("FromConfig: %v", err)
	}
	if err := tab.Validate(); err != nil {
		t.Errorf("FromConfig result does not validate: %v", err)
	}
	return tab
}

// requireTable fails unless got holds exactly the services and
// destinations of want (compared field by field, not normalized).
func requireTable(t testing.TB, got, want lvs.Table) {
	t.Helper()
	if got.String() != want.String() || len(got) != len(want) {
		t.Fatalf("table:\n%s\nwant:\n%s", got, want)
	}
	for k, w := range want {
		g := got[k]
		if g.Service != w.Service {
			t.Errorf("%s: service %#v, want %#v", k, g.Service, w.Service)
		}
		if len(g.Destinations) != len(w.Destinations) {
			t.Errorf("%s: %d destinations, want %d", k, len(g.Destinations), len(w.Destinations))
		}
		for dk, wd := range w.Destinations {
			if gd := g.Destinations[dk]; gd != wd {
				t.Errorf("%s: destination %v, want %v", k, gd, wd)
			}
		}
	}
}

func requireErrors(t testing.TB, errs []error, wants ...string) {
	t.Helper()
	if len(errs) != len(wants) {
		t.Errorf("%d errors, want %d:\n%s", len(errs), len(wants), joinErrs(errs))
		return
	}
	for i, w := range wants {
		if !strings.Contains(errs[i].Error(), w) {
			t.Errorf("error %d: %q does not contain %q", i, errs[i], w)
		}
	}
}

func joinErrs(errs []error) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString(e.Error())
		b.WriteByte('\n')
	}
	return b.String()
}

// seedDir is where the seeds' keepalived.conf files are.
func seedDir(t testing.TB) string { return testenv.SeedDir(t) }
