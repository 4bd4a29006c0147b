package realserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultStateDir is where Start records what it changed.
const DefaultStateDir = "/run/vipd/realserver"

// ErrNotStarted is returned by Stop and Status for a VIP that Start did not
// set up (or that Stop already undid).
var ErrNotStarted = errors.New("realserver: not started for this VIP")

// Sysctls are the ARP settings a DR real server needs, with their values.
var Sysctls = []Sysctl{
	{"net/ipv4/conf/lo/arp_ignore", "1"},
	{"net/ipv4/conf/lo/arp_announce", "2"},
	{"net/ipv4/conf/all/arp_ignore", "1"},
	{"net/ipv4/conf/all/arp_announce", "2"},
}

// Sysctl is one /proc/sys key (with slashes) and its value.
type Sysctl struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Config says where the host's /proc/sys and the state directory are; the
// zero value uses /proc/sys and DefaultStateDir.
type Config struct {
	ProcSys  string
	StateDir string
}

func (c Config) procSys() string {
	if c.ProcSys == "" {
		return "/proc/sys"
	}
	return c.ProcSys
}

func (c Config) stateDir() string {
	if c.StateDir == "" {
		return DefaultStateDir
	}
	return c.StateDir
}

// vipState is what Start changed for one VIP.
type vipState struct {
	VIP          netip.Addr `json:"vip"`
	AddedAddress bool       `json:"added_address"`
}

// sysctlState is the sysctls' values before the first VIP started.
type sysctlState struct {
	Previous []Sysctl `json:"previous"`
}

// Status is what Status reports.
type Status struct {
	VIP      netip.Addr `json:"vip"`
	Started  bool       `json:"started"`   // Start recorded this VIP
	Address  bool       `json:"address"`   // the VIP is on lo
	ARPReady bool       `json:"arp_ready"` // the ARP sysctls have the DR values (IPv4)
}

func (c Config) vipFile(vip netip.Addr) string {
	return filepath.Join(c.stateDir(), "vip-"+strings.ReplaceAll(vip.String(), ":", "_")+".json")
}

func (c Config) sysctlFile() string { return filepath.Join(c.stateDir(), "sysctl.json") }

func (c Config) readSysctl(key string) (string, error) {
	b, err := os.ReadFile(filepath.Join(c.procSys(), key))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func (c Config) writeSysctl(key, value string) error {
	if err := os.WriteFile(filepath.Join(c.procSys(), key), []byte(value+"\n"), 0o644); err != nil {
		return fmt.Errorf("realserver: set %s = %s: %w", strings.ReplaceAll(key, "/", "."), value, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// startedVIPs lists the VIPs with a state file.
func (c Config) startedVIPs() ([]string, error) {
	m, err := filepath.Glob(filepath.Join(c.stateDir(), "vip-*.json"))
	sort.Strings(m)
	return m, err
}

// Start puts vip on lo (as a /32 or /128) and, for IPv4, sets the ARP
// sysctls, recording the previous state. Starting a started VIP changes
// nothing.
func Start(c Config, vip netip.Addr) error {
	vip = vip.Unmap()
	if !vip.IsValid() {
		return errors.New("realserver: no VIP given")
	}
	if err := os.MkdirAll(c.stateDir(), 0o700); err != nil {
		return fmt.Errorf("realserver: state directory: %w", err)
	}
	if _, err := os.Stat(c.vipFile(vip)); err == nil {
		return nil
	}
	if vip.Is4() {
		if _, err := os.Stat(c.sysctlFile()); errors.Is(err, os.ErrNotExist) {
			var prev sysctlState
			for _, s := range Sysctls {
				v, err := c.readSysctl(s.Key)
				if err != nil {
					return fmt.Errorf("realserver: %w", err)
				}
				prev.Previous = append(prev.Previous, Sysctl{s.Key, v})
			}
			if err := writeJSON(c.sysctlFile(), prev); err != nil {
				return fmt.Errorf("realserver: record sysctls: %w", err)
			}
		}
		for _, s := range Sysctls {
			if err := c.writeSysctl(s.Key, s.Value); err != nil {
				return err
			}
		}
	}
	had, err := hasLoopbackAddr(vip)
	if err != nil {
		return err
	}
	if !had {
		if err := addLoopbackAddr(vip); err != nil {
			return err
		}
	}
	return writeJSON(c.vipFile(vip), vipState{VIP: vip, AddedAddress: !had})
}

// Stop undoes Start for vip: the address goes if Start added it, and when
// no other IPv4 VIP remains started the sysctls get their previous values.
func Stop(c Config, vip netip.Addr) error {
	vip = vip.Unmap()
	var st vipState
	if err := readJSON(c.vipFile(vip), &st); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ErrNotStarted
		}
		return fmt.Errorf("realserver: state of %s: %w", vip, err)
	}
	if st.AddedAddress {
		if err := removeLoopbackAddr(vip); err != nil {
			return err
		}
	}
	if err := os.Remove(c.vipFile(vip)); err != nil {
		return fmt.Errorf("realserver: %w", err)
	}
	if !vip.Is4() {
		return nil
	}
	others, err := c.startedVIPs()
	if err != nil {
		return err
	}
	for _, f := range others {
		var o vipState
		if readJSON(f, &o) == nil && o.VIP.Is4() {
			return nil // another IPv4 VIP still needs the ARP settings
		}
	}
	var prev sysctlState
	if err := readJSON(c.sysctlFile(), &prev); err != nil {
		return fmt.Errorf("realserver: recorded sysctls: %w", err)
	}
	for _, s := range prev.Previous {
		if err := c.writeSysctl(s.Key, s.Value); err != nil {
			return err
		}
	}
	return os.Remove(c.sysctlFile())
}

// GetStatus reports vip's state. It is "ready" when the address is on lo and
// (for IPv4) the ARP sysctls have the DR values.
func GetStatus(c Config, vip netip.Addr) (Status, error) {
	vip = vip.Unmap()
	s := Status{VIP: vip}
	_, err := os.Stat(c.vipFile(vip))
	s.Started = err == nil
	if s.Address, err = hasLoopbackAddr(vip); err != nil {
		return s, err
	}
	s.ARPReady = true
	if vip.Is4() {
		for _, want := range Sysctls {
			v, err := c.readSysctl(want.Key)
			if err != nil {
				return s, fmt.Errorf("realserver: %w", err)
			}
			s.ARPReady = s.ARPReady && v == want.Value
		}
	}
	return s, nil
}

// Ready reports whether the real server is set up for vip.
func (s Status) Ready() bool { return s.Address && s.ARPReady }
