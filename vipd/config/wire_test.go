package config

import (
	"net/netip"
	"testing"
)

// requireError parses src and fails unless one error is exactly want
// ("file:line: msg").
func requireError(t *testing.T, src, want string) {
	t.Helper()
	list := errorList(t, src)
	for _, e := range list {
		if e.Error() == want {
			return
		}
	}
	t.Fatalf("errors:\n%v\nwant one: %s", list, want)
}

func TestExcludedAddresses(t *testing.T) {
	in := &mustParse(t, instance("virtual_ipaddress_excluded {\n 2001:db8::5/64 dev eth1\n 192.168.2.1/24\n}")).VRRPInstances[0]
	want := []netip.Prefix{netip.MustParsePrefix("2001:db8::5/64"), netip.MustParsePrefix("192.168.2.1/24")}
	if got := in.ExcludedVIPs(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("excluded %v", got)
	}
	if in.VirtualIPAddressExcluded[0].Dev != "eth1" || len(in.VIPs()) != 1 {
		t.Fatalf("instance %+v", in)
	}
	requireError(t, instance("virtual_ipaddress_excluded {\n 192.168.2.300\n}"),
		`keepalived.conf:8: virtual_ipaddress_excluded: expected an address ADDR or ADDR/PREFIX, got "192.168.2.300"`)
}
