package main

import (
	"testing"
	"time"
)

func TestLongestGap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms ...int) []stallConfirm {
		var cs []stallConfirm
		for _, m := range ms {
			cs = append(cs, stallConfirm{at: t0.Add(time.Duration(m) * time.Millisecond)})
		}
		return cs
	}
	// The fault lasts from 0 to 1000 ms; the window ends at 3000 ms.
	from, to, end := t0, t0.Add(time.Second), t0.Add(3*time.Second)
	for _, tc := range []struct {
		name       string
		cs         []stallConfirm
		gap, began time.Duration // began: from t0
		unfinished bool
	}{
		{"the gap around the injection", at(-100, 300, 310, 2000), 1690 * time.Millisecond, 310 * time.Millisecond, false},
		{"only the injection's gap", at(-100, 300, 310, 320, 990, 1010), 670 * time.Millisecond, 320 * time.Millisecond, false},
		{"open at the undo, until its confirm", at(-10, 500, 2500, 2510), 2000 * time.Millisecond, 500 * time.Millisecond, false},
		{"a gap after the fault does not count", at(-10, 10, 1500, 2900), 1490 * time.Millisecond, 10 * time.Millisecond, false},
		{"no confirm after the fault", at(-200), 3200 * time.Millisecond, -200 * time.Millisecond, true},
		{"none at all", nil, 3 * time.Second, 0, true},
		{"confirms after the window's end", at(-10, 3500), 3010 * time.Millisecond, -10 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			began, gap, unfinished := longestGap(tc.cs, from, to, end)
			if gap != tc.gap || began.Sub(t0) != tc.began || unfinished != tc.unfinished {
				t.Errorf("longestGap = %v from %v, unfinished %v; want %v from %v, unfinished %v",
					gap, began.Sub(t0), unfinished, tc.gap, tc.began, tc.unfinished)
			}
		})
	}
}
