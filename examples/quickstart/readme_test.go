package main

import (
	"os"
	"strings"
	"testing"
)

// The README opens with this program: it must be this file, word for word,
// so that what a reader copies compiles (this package builds in every test
// run) and runs (integration/examples TestQuickstart runs it on a cluster).
func TestREADMEShowsThisProgram(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	program, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```go\n"+string(program)+"```\n") {
		t.Error("README.md does not show examples/quickstart/main.go as it is: copy the file into README's first Go block")
	}
}
