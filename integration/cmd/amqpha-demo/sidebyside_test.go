package main

import (
	"testing"
	"time"
)

func TestGapStats(t *testing.T) {
	s := int64(time.Second)
	for _, tc := range []struct {
		name   string
		gaps   []int64
		unseen int
		want   string
	}{
		{"no fault", nil, 0, "—"},
		{"one", []int64{s / 2}, 0, "0.500 / 0.500 s"},
		{"odd count: middle one", []int64{3 * s, s, 2 * s}, 0, "2.000 / 3.000 s"},
		{"even count: mean of the middle two", []int64{4 * s, s, 2 * s, 3 * s}, 0, "2.500 / 4.000 s"},
		{"some never recovered", []int64{s}, 2, "1.000 / 1.000 s, 2 never"},
		{"none recovered", nil, 1, "never"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := gapStats(tc.gaps, tc.unseen); got != tc.want {
				t.Errorf("gapStats(%v, %d) = %q, want %q", tc.gaps, tc.unseen, got, tc.want)
			}
		})
	}
}

func TestShortNode(t *testing.T) {
	for in, want := range map[string]string{"node 0": "0", "node 12": "12", "none": "-", "": "-"} {
		if got := shortNode(in); got != want {
			t.Errorf("shortNode(%q) = %q, want %q", in, got, want)
		}
	}
}
