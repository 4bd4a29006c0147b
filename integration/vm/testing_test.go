package vm

import (
	"strings"
	"testing"
)

func TestCheckGuestRun(t *testing.T) {
	const passed = "=== RUN   TestA\n--- PASS: TestA (0.01s)\n=== RUN   TestB\n=== RUN   TestB/x\n    --- PASS: TestB/x (0.00s)\n--- PASS: TestB (0.02s)\nPASS\n"
	for _, tc := range []struct {
		name, output string
		want         []string
		errHas       string // "" = passes
	}{
		{"all passed", passed, []string{"TestA", "TestB"}, ""},
		{"carriage returns", strings.ReplaceAll(passed, "\n", "\r\n"), []string{"TestA", "TestB"}, ""},
		{"exit 0 but a test missing", passed, []string{"TestA", "TestB", "TestC"}, "no PASS line for TestC"},
		{"nothing ran", "testing: warning: no tests to run\nPASS\n", []string{"TestA"}, "ran no test"},
		{"top-level skip", "=== RUN   TestA\n--- SKIP: TestA (0.00s)\n    a_test.go:9: not in the guest\nPASS\n", []string{"TestA"}, "TestA skipped"},
		{"subtest skip", "=== RUN   TestA\n    --- SKIP: TestA/v6 (0.00s)\n--- PASS: TestA (0.00s)\nPASS\n", []string{"TestA"}, "TestA/v6 skipped"},
		{"failure", "--- FAIL: TestA (0.00s)\nFAIL\n", []string{"TestA"}, "TestA failed"},
		{"pass of another test only", "--- PASS: TestAB (0.00s)\nPASS\n", []string{"TestA"}, "no PASS line for TestA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkGuestRun(tc.want, tc.output)
			switch {
			case tc.errHas == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.errHas != "" && err == nil:
				t.Fatalf("passed; want an error containing %q", tc.errHas)
			case tc.errHas != "" && !strings.Contains(err.Error(), tc.errHas):
				t.Fatalf("error %q does not say %q", err, tc.errHas)
			}
		})
	}
}
