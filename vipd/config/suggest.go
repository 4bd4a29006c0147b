package config

import "github.com/amqpha/amqpha/internal/spell"

// suggest returns the candidate closest to word, when it is close enough
// to be a likely misspelling; "" otherwise (spell.Suggest).
func suggest(word string, candidates []string) string { return spell.Suggest(word, candidates) }
