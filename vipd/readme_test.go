package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/amqpha/amqpha/vipd/config"
)

// The generated parts of vipd/README.md: each stands between
// "<!-- begin NAME -->" and "<!-- end NAME -->" and is rewritten by
// VIPD_UPDATE_README=1 go test -run TestREADMEMatchesCheck ./vipd/
func readmeParts(t *testing.T) map[string]string {
	return map[string]string{
		"features": featureTable(t),
		"refused":  keywordList(config.Refused),
		"warned":   keywordList(config.Warned),
	}
}

// featureTable is the corpus as a table: feature, keepalived samples
// using it, what vipd does, the corpus file.
func featureTable(t *testing.T) string {
	var b strings.Builder
	b.WriteString("| feature | in keepalived's samples | vipd | corpus file |\n|---|---|---|---|\n")
	for _, c := range readCorpus(t) {
		result := c.result
		switch c.result {
		case "warning":
			result = "accepted, with a warning: no effect"
		case "refused":
			result = "**refused**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | [%s](testdata/corpus/%s) |\n", c.feature, c.samples, result, c.name, c.name)
	}
	return b.String()
}

// keywordList lists the keywords of one class, a line for each block and
// reason: "- block: `kw`, `kw`: why".
func keywordList(s config.Support) string {
	type group struct{ block, why string }
	var order []group
	kws := map[group][]string{}
	for _, k := range config.Keywords() {
		if k.Support != s {
			continue
		}
		g := group{k.Block, k.Why}
		if _, ok := kws[g]; !ok {
			order = append(order, g)
		}
		kws[g] = append(kws[g], "`"+k.Keyword+"`")
	}
	var b strings.Builder
	for _, g := range order {
		fmt.Fprintf(&b, "- %s: %s — %s\n", g.block, strings.Join(kws[g], ", "), g.why)
	}
	return b.String()
}

// TestREADMEMatchesCheck: vipd/README.md's feature table is the corpus
// TestCorpus checks, and its lists of refused and warned keywords are the
// tables `vipd check` uses, line for line.
func TestREADMEMatchesCheck(t *testing.T) {
	const path = "README.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for name, want := range readmeParts(t) {
		begin, end := "<!-- begin "+name+" -->\n", "<!-- end "+name+" -->"
		i, j := strings.Index(text, begin), strings.Index(text, end)
		if i < 0 || j < i {
			t.Fatalf("%s: no %q ... %q", path, begin, end)
		}
		got := text[i+len(begin) : j]
		if got == want {
			continue
		}
		if os.Getenv("VIPD_UPDATE_README") == "1" {
			text = text[:i+len(begin)] + want + text[j:]
			continue
		}
		t.Errorf("%s: the %s part differs from what vipd check does; run VIPD_UPDATE_README=1 go test -run TestREADMEMatchesCheck ./vipd/\ngot:\n%s\nwant:\n%s", path, name, got, want)
	}
	if os.Getenv("VIPD_UPDATE_README") == "1" {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
