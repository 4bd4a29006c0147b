package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/config"
	"github.com/amqpha/amqpha/vipd/health"
	"github.com/amqpha/amqpha/vipd/lvs"
	"github.com/amqpha/amqpha/vipd/vrrp"
)

// corpusFile is one file of testdata/corpus: a keepalived.conf written
// for one feature that keepalived's own sample configurations use, with
// its expected result in its header:
//
//	# feature: what it shows
//	# samples: the keepalived samples that use it
//	# result: implemented | warning | refused
//	# error: :LINE: text the refusal gives (refused only)
type corpusFile struct {
	name, path, feature, samples, result, errLine string
}

func readCorpus(t *testing.T) []corpusFile {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join("testdata", "corpus", "*.conf"))
	if len(paths) < 30 {
		t.Fatalf("only %d corpus files", len(paths))
	}
	var out []corpusFile
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		c := corpusFile{name: filepath.Base(p), path: p}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "# "), ": ")
			if !strings.HasPrefix(sc.Text(), "# ") || !ok {
				break
			}
			switch k {
			case "feature":
				c.feature = v
			case "samples":
				c.samples = v
			case "result":
				c.result = v
			case "error":
				c.errLine = v
			}
		}
		f.Close()
		if c.feature == "" || c.samples == "" || !slices.Contains([]string{"implemented", "warning", "refused"}, c.result) ||
			(c.result == "refused") != (c.errLine != "") {
			t.Fatalf("%s: bad header %+v", p, c)
		}
		out = append(out, c)
	}
	return out
}

// TestCorpus runs `vipd check` on every corpus file: a refused file exits
// 1 with the expected error at file:line and prints nothing on stdout; an
// accepted one exits 0 with the OK line, warns when its result is
// "warning" (and only then about keepalived keywords vipd ignores), and
// the configuration it resolves to does what the feature asks.
func TestCorpus(t *testing.T) {
	for _, c := range readCorpus(t) {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run([]string{"check", "-f", c.path}, &stdout, &stderr)
			if c.result == "refused" {
				if code != 1 || stdout.Len() != 0 || !strings.Contains(stderr.String(), c.path+c.errLine) {
					t.Fatalf("exit %d, stdout %q, stderr:\n%s\nwant exit 1 and %q", code, stdout.String(), stderr.String(), c.path+c.errLine)
				}
				return
			}
			if code != 0 || !strings.HasPrefix(stdout.String(), c.path+": OK") {
				t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, stdout.String(), stderr.String())
			}
			if ignored := strings.Contains(stderr.String(), ": ignored; "); ignored != (c.result == "warning") {
				t.Errorf("result %s, but warnings about ignored keywords: %v\n%s", c.result, ignored, stderr.String())
			}
			cfg, err := config.Load(c.path)
			if err != nil {
				t.Fatal(err)
			}
			lc, _, errs := resolve(cfg)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			effect, ok := corpusEffects[c.name]
			if !ok {
				t.Fatalf("no effect check for %s", c.name)
			}
			effect(t, lc)
		})
	}
}

// ipvsLines renders the IPVS table a configuration programs, one line a
// destination: "SERVICE sched PERSIST -> DEST weight FORWARD".
func ipvsLines(t *testing.T, lc *loadedConfig) []string {
	t.Helper()
	tab, errs := lvs.FromConfig(lc.Config, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var out []string
	for _, k := range tab.Keys() {
		st := tab[k]
		for _, d := range st.Destinations {
			out = append(out, fmt.Sprintf("%s %s %v -> %s w%d %v", k, st.Service.Scheduler, st.Service.Persistence,
				d.Key(), d.Weight, d.Forward))
		}
	}
	slices.Sort(out)
	return out
}

func wantLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// checksOf returns the health checks of the real servers, one line each:
// "NAME key=value ...".
func checksOf(t *testing.T, lc *loadedConfig) []string {
	t.Helper()
	var out []string
	for _, vs := range lc.Config.VirtualServers {
		for i := range vs.RealServers {
			checks, err := health.FromConfig(&vs.RealServers[i], lc.Health)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range checks {
				line := fmt.Sprintf("%s every %v retry %d after %v", c.Name, c.DelayLoop, c.Retry, c.DelayBeforeRetry)
				if c.Alpha {
					line += " alpha"
				}
				switch x := c.Checker.(type) {
				case *health.HTTP:
					line += fmt.Sprintf(" host %q tls %v", x.Virtualhost, x.TLS != nil)
					for _, u := range x.URLs {
						line += fmt.Sprintf(" url %s %v %s", u.Path, u.StatusCode, u.Digest)
					}
				case *health.Misc:
					line += fmt.Sprintf(" argv %q dynamic %v timeout %v", x.Command.Argv, x.Dynamic, x.Command.Timeout)
				case *health.TCP:
					line += fmt.Sprintf(" to %s", x.Addr)
				}
				out = append(out, line)
			}
		}
	}
	return out
}

var corpusEffects = map[string]func(t *testing.T, lc *loadedConfig){
	"vrrp-pass-auth.conf": func(t *testing.T, lc *loadedConfig) {
		s := lc.Instances[0]
		if s.InitialState != vrrp.Master || s.Priority != 150 || s.Interval != 2*time.Second || s.GARPDelay != 3*time.Second ||
			s.AuthType != vrrp.AuthPass || string(s.AuthData[:7]) != "corpus1" || len(s.VIPs) != 2 || s.VIPs[1].Label != "eth0:1" {
			t.Errorf("instance %+v", s)
		}
	},
	"vrrp-mail.conf": func(t *testing.T, lc *loadedConfig) {
		if lc.RouterID != "corpus_lb" || len(lc.Instances) != 1 {
			t.Errorf("router_id %q, %d instances", lc.RouterID, len(lc.Instances))
		}
	},
	"vrrp-nopreempt.conf": func(t *testing.T, lc *loadedConfig) {
		if s := lc.Instances[0]; s.Preempt || s.InitialState != vrrp.Backup || s.Priority != 120 || !s.LowerPriorityNoAdvert {
			t.Errorf("instance %+v", s)
		}
	},
	"vrrp-track-interface.conf": func(t *testing.T, lc *loadedConfig) {
		want := []trackInterface{{Name: "eth0"}, {Name: "eth1"}, {Name: "eth2", Weight: -30}}
		if got := lc.Instances[0].TrackInterfaces; !slices.Equal(got, want) {
			t.Errorf("tracked %+v, want %+v", got, want)
		}
	},
	"vrrp-script.conf": func(t *testing.T, lc *loadedConfig) {
		sc := lc.Scripts[0]
		if sc.Interval != 3*time.Second || sc.Weight != -25 || sc.Rise != 2 || sc.Fall != 3 || !slices.Equal(sc.Command.Argv, []string{"/bin/true"}) {
			t.Errorf("script %+v", sc)
		}
		if got := lc.Instances[0].TrackScripts; len(got) != 1 || got[0] != (trackScript{Name: "web_alive", Weight: -25}) {
			t.Errorf("track_script %+v", got)
		}
	},
	"vrrp-sync-group.conf": func(t *testing.T, lc *loadedConfig) {
		if len(lc.Groups) != 1 || lc.Groups[0].Name != "VG_1" || !slices.Equal(lc.Groups[0].Members, []string{"outside", "inside"}) {
			t.Fatalf("groups %+v", lc.Groups)
		}
		n := lc.Groups[0].Notify
		if !n.group || !slices.Equal(n.NotifyState[vrrp.Master].Argv, []string{"/bin/echo", "group", "master"}) || n.Notify == nil {
			t.Errorf("group notify %+v", n)
		}
		if got := lc.Instances[1].TrackInterfaces; len(got) != 0 {
			t.Errorf("inside (dont_track_primary) tracks %+v", got)
		}
	},
	"vrrp-notify.conf": func(t *testing.T, lc *loadedConfig) {
		n := lc.Instances[0].NotifyState
		for st, word := range map[vrrp.State]string{vrrp.Master: "master", vrrp.Backup: "backup", vrrp.Fault: "fault"} {
			if !slices.Equal(n[st].Argv, []string{"/bin/echo", word}) {
				t.Errorf("notify %v: %q", st, n[st].Argv)
			}
		}
	},
	"vrrp-strict-owner.conf": func(t *testing.T, lc *loadedConfig) {
		if s := lc.Instances[0]; s.AuthType != 0 || s.Priority != 255 || s.InitialState != vrrp.Master || !s.LowerPriorityNoAdvert {
			t.Errorf("instance %+v", s)
		}
	},
	"lvs-http-get.conf": func(t *testing.T, lc *loadedConfig) {
		wantLines(t, ipvsLines(t, lc), "TCP 192.0.2.60:80 rr 1m0s -> 198.51.100.1:80 w2 Masq")
		wantLines(t, checksOf(t, lc),
			`HTTP_GET 198.51.100.1:80 every 10s retry 2 after 2s host "" tls false url /health [{200 299}] 9b3ac5b1d7e3d8f5ec3b5c1e2f0a4d61`)
		if ss := lc.Config.VirtualServers[0].SorryServer; ss == nil || ss.IP.String() != "198.51.100.99" || ss.Port != 80 {
			t.Errorf("sorry_server %+v", ss)
		}
	},
	"lvs-inhibit.conf": func(t *testing.T, lc *loadedConfig) {
		if !lc.Config.VirtualServers[0].RealServers[0].InhibitOnFailure {
			t.Error("inhibit_on_failure is off")
		}
		wantLines(t, ipvsLines(t, lc), "TCP 192.0.2.61:80 wlc 0s -> 198.51.100.2:80 w1 Route")
	},
	"lvs-status-code.conf": func(t *testing.T, lc *loadedConfig) {
		wantLines(t, checksOf(t, lc),
			`HTTP_GET 198.51.100.3:80 every 1m0s retry 1 after 3s host "" tls false url /ready [{200 200} {204 204} {300 302}] `)
	},
	"lvs-ssl-get.conf": func(t *testing.T, lc *loadedConfig) {
		wantLines(t, checksOf(t, lc), `SSL_GET 198.51.100.4:8443 every 1m0s retry 1 after 3s host "" tls true url / [{200 299}] `)
	},
	"lvs-virtualhost.conf": func(t *testing.T, lc *loadedConfig) {
		wantLines(t, checksOf(t, lc),
			`SSL_GET 198.51.100.5:443 every 1m0s retry 1 after 3s host "www.example.org" tls true url / [{200 299}] `,
			`SSL_GET 198.51.100.6:443 every 1m0s retry 1 after 3s host "node6.example.org" tls true url / [{200 299}] `,
			`SSL_GET 198.51.100.7:443 every 1m0s retry 1 after 3s host "check.example.org" tls true url / [{200 299}] `)
	},
	"lvs-misc-check.conf": func(t *testing.T, lc *loadedConfig) {
		wantLines(t, checksOf(t, lc),
			`MISC_CHECK /bin/test every 1m0s retry 0 after 1s argv ["/bin/test" "-e" "/tmp/corpus up"] dynamic true timeout 5s`)
	},
	"lvs-alpha.conf": func(t *testing.T, lc *loadedConfig) {
		wantLines(t, checksOf(t, lc), "TCP_CHECK 198.51.100.15:80 every 1m0s retry 1 after 1s alpha to 198.51.100.15:80")
	},
	"lvs-fwmark.conf": func(t *testing.T, lc *loadedConfig) {
		wantLines(t, ipvsLines(t, lc), "FWM 7 IPv4 rr 30s -> 198.51.100.9:80 w1 Route")
	},
	"lvs-group.conf": func(t *testing.T, lc *loadedConfig) {
		wantLines(t, ipvsLines(t, lc),
			"FWM 9 IPv4 wrr 0s -> 198.51.100.10:80 w3 Masq",
			"TCP 192.0.2.70:80 wrr 0s -> 198.51.100.10:80 w3 Masq",
			"TCP 192.0.2.71:80 wrr 0s -> 198.51.100.10:80 w3 Masq",
			"TCP 192.0.2.72:80 wrr 0s -> 198.51.100.10:80 w3 Masq")
	},
	"lvs-ipv6.conf": func(t *testing.T, lc *loadedConfig) {
		wantLines(t, ipvsLines(t, lc),
			"TCP [2001:db8::10]:25 rr 0s -> [2001:db8:1::1]:25 w1 Masq",
			"TCP [2001:db8::20]:25 rr 0s -> [2001:db8:1::1]:25 w1 Masq",
			"TCP [2001:db8::21]:25 rr 0s -> [2001:db8:1::1]:25 w1 Masq",
			"TCP [2001:db8::22]:25 rr 0s -> [2001:db8:1::1]:25 w1 Masq")
	},
}
