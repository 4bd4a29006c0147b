package cluster

import (
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		ok   bool
	}{
		{"zero", Options{}, true},
		{"max nodes", Options{Nodes: MaxNodes}, true},
		{"too many nodes", Options{Nodes: MaxNodes + 1}, false},
		{"negative nodes", Options{Nodes: -1}, false},
		{"whole ticktime", Options{NetTicktime: 10 * time.Second}, true},
		{"fractional ticktime", Options{NetTicktime: 1500 * time.Millisecond}, false},
		{"negative lifetime", Options{MaxLifetime: -time.Second}, false},
		{"extra IPv4", Options{ExtraIP: "10.213.0.1"}, true},
		{"extra IPv6", Options{ExtraIP: "fd00::1"}, true},
		{"extra not an IP", Options{ExtraIP: "bridge0"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.o.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestParseAlarms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
		err  bool
	}{
		{`{"alarms":[],"node":"a@localhost","result":"ok"}`, false, false},
		{`{"global":[],"local":["Memory alarm on node a@localhost"],"message":"x","result":"ok"}`, true, false},
		{`not json`, false, true},
	} {
		got, err := parseAlarms([]byte(tc.in))
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("parseAlarms(%s) = %v, %v", tc.in, got, err)
		}
	}
}

func FuzzParseAlarms(f *testing.F) {
	f.Add([]byte(`{"alarms":[]}`))
	f.Add([]byte(`{"local":["x"],"global":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseAlarms(b) // must not panic
	})
}
