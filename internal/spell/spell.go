// Package spell suggests the word a misspelt keyword or parameter was
// meant to be, for error messages ("did you mean …?").
package spell

import (
	"slices"
	"strings"
)

// Suggest returns the candidate closest to word by edit distance (letters
// compared without case; a swap of two neighbours counts as one edit), when
// it is close enough to be a likely misspelling; "" otherwise. Ties go to
// the candidate first in sorted order. It does not change candidates and
// may be called from several goroutines at once.
func Suggest(word string, candidates []string) string {
	w := strings.ToLower(word)
	limit := 1
	switch n := len(w); {
	case n > 8:
		limit = 3
	case n > 4:
		limit = 2
	}
	best, bestDist := "", limit+1
	for _, c := range slices.Sorted(slices.Values(candidates)) {
		if c == word {
			continue
		}
		if d := editDistance(w, strings.ToLower(c), bestDist); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b
// (insertions, deletions, substitutions and swaps of adjacent bytes). It
// gives up and returns max when the distance is at least max.
func editDistance(a, b string, max int) int {
	if d := len(a) - len(b); d >= max || -d >= max {
		return max
	}
	if len(a) > 64 || len(b) > 64 {
		return max // keywords are short; do not spend time on long words
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
			rowMin = min(rowMin, v)
		}
		if rowMin >= max {
			return max
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(b)], max)
}
