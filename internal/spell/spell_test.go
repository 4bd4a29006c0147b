package spell

import (
	"slices"
	"testing"
)

func TestSuggest(t *testing.T) {
	words := []string{"verify", "heartbeat", "cacertfile", "certfile"}
	orig := slices.Clone(words)
	for in, want := range map[string]string{
		"cacertfil": "cacertfile", // one short
		"hartbeat":  "heartbeat",  // one missing
		"HEARTBEAT": "heartbeat",  // case
		"vreify":    "verify",     // a swap is one edit
		"x":         "",           // nothing near
		"verify":    "",           // the word itself is no suggestion
		"certfiel":  "certfile",
	} {
		if got := Suggest(in, words); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", in, got, want)
		}
	}
	if !slices.Equal(words, orig) {
		t.Fatalf("Suggest reordered its candidates: %v", words)
	}
}
