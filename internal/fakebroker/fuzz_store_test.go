package fakebroker

import (
	"strings"
	"testing"
	"time"
)

// naiveTopicMatch is the definition of topic matching, by backtracking.
func naiveTopicMatch(pattern, words []string) bool {
	if len(pattern) == 0 {
		return len(words) == 0
	}
	switch pattern[0] {
	case "#":
		for i := 0; i <= len(words); i++ {
			if naiveTopicMatch(pattern[1:], words[i:]) {
				return true
			}
		}
		return false
	case "*":
		return len(words) > 0 && naiveTopicMatch(pattern[1:], words[1:])
	}
	return len(words) > 0 && words[0] == pattern[0] && naiveTopicMatch(pattern[1:], words[1:])
}

func FuzzTopicMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"order.*.eu.#", "order.new.eu"}, {"#", ""}, {"#.#", "a"}, {"*", ""}, {"a.#.b", "a.b"},
		{"a.#.b", "a.x.y.b"}, {"*.*", "a"}, {"", ""}, {"a..b", "a..b"}, {"#.*", "a.b"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, key string) {
		p, w := strings.Split(pattern, "."), strings.Split(key, ".")
		if len(p) > 12 || len(w) > 12 { // the reference is exponential
			return
		}
		if got, want := topicMatch(p, w), naiveTopicMatch(p, w); got != want {
			t.Fatalf("topicMatch(%q, %q) = %v, want %v", pattern, key, got, want)
		}
	})
}

// A pattern of many "#" against a long key is matched at once.
func TestTopicMatchManyHashes(t *testing.T) {
	p := strings.Split(strings.Repeat("#.", 120)+"x", ".")
	w := strings.Split(strings.Repeat("a.", 127)+"b", ".")
	done := make(chan bool, 1)
	go func() { done <- topicMatch(p, w) }()
	select {
	case got := <-done:
		if got {
			t.Fatal("matched")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("topicMatch did not return in 10 s")
	}
}
