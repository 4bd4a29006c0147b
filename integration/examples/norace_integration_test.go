//go:build integration && !race

package examples

const raceEnabled = false
