package vm

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/internal/testenv"
)

func TestValidate(t *testing.T) {
	ok := Config{Command: []string{"true"}}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"zero value plus a command", func(*Config) {}, ""},
		{"defaults", func(c *Config) { d := DefaultConfig(); d.Command = c.Command; *c = d }, ""},
		{"no command", func(c *Config) { c.Command = nil }, "Command is empty"},
		{"nul in argument", func(c *Config) { c.Command = []string{"echo", "a\x00b"} }, "NUL"},
		{"memory", func(c *Config) { c.Memory = "lots" }, "Memory"},
		{"memory bytes", func(c *Config) { c.Memory = "1024" }, ""},
		{"cpus", func(c *Config) { c.CPUs = -1 }, "CPUs"},
		{"timeout", func(c *Config) { c.Timeout = -time.Second }, "Timeout"},
		{"env", func(c *Config) { c.Env = []string{"NOEQUALS"} }, "Env"},
		{"env key", func(c *Config) { c.Env = []string{"1A=b"} }, "Env"},
		{"env ok", func(c *Config) { c.Env = []string{"A_1=x=y z"} }, ""},
		{"relative file", func(c *Config) { c.Files = map[string]string{"bin/x": "/x"} }, "not absolute"},
		{"reserved file", func(c *Config) { c.Files = map[string]string{"/init": "/x"} }, "reserved"},
		{"reserved dir", func(c *Config) { c.Files = map[string]string{"/amqpha/run.sh": "/x"} }, "reserved"},
		{"reserved modules", func(c *Config) { c.Files = map[string]string{"/lib/modules/x": "/x"} }, "reserved"},
		{"file ok", func(c *Config) { c.Files = map[string]string{"/amqpha-data/x": "/x"} }, ""},
		{"relative binary", func(c *Config) { c.Binaries = []string{"ipvsadm"} }, "absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			c.Command = append([]string(nil), ok.Command...)
			tt.mod(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want an error about %s", err, tt.wantErr)
			}
		})
	}
}

func TestWithDefaultsCopies(t *testing.T) {
	c := Config{Command: []string{"a"}, Files: map[string]string{"/x": "/y"}, Modules: []string{"veth"}}
	d := c.withDefaults()
	c.Command[0], c.Files["/x"], c.Modules[0] = "changed", "changed", "changed"
	if d.Command[0] != "a" || d.Files["/x"] != "/y" || d.Modules[0] != "veth" {
		t.Errorf("withDefaults shares the caller's slices or maps: %+v", d)
	}
	if d.Memory != "512M" || d.CPUs != 1 || d.Timeout != 2*time.Minute || d.CacheDir == "" {
		t.Errorf("defaults not filled: %+v", d)
	}
	if z := (Config{Command: []string{"a"}}).withDefaults(); len(z.Modules) != len(DefaultModules()) {
		t.Errorf("nil Modules became %v", z.Modules)
	}
	if e := (Config{Command: []string{"a"}, Modules: []string{}}).withDefaults(); e.Modules == nil || len(e.Modules) != 0 {
		t.Errorf("empty Modules became %v", e.Modules)
	}
}

// runScript's quoting survives a real shell: the host's sh runs the script
// with printf as the command.
func TestRunScriptQuoting(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		testenv.Missing(t, "no sh: %v", err)
	}
	args := []string{"plain", "with space", "it's", `"double"`, "$HOME", "`date`", "back\\slash", "new\nline", ""}
	script := runScript([]string{"X=it's $HOME"}, append([]string{"printf", "[%s]"}, args...))
	out, err := exec.Command(sh, "-c", script+"\n").Output()
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, a := range args {
		want.WriteString("[" + a + "]")
	}
	if string(out) != want.String() {
		t.Errorf("got %q, want %q", out, want.String())
	}
	envOut, err := exec.Command(sh, "-c", runScript([]string{"X=it's $HOME"}, []string{"sh", "-c", `printf %s "$X"`})).Output()
	if err != nil || string(envOut) != "it's $HOME" {
		t.Errorf("env: %q, %v", envOut, err)
	}
}
