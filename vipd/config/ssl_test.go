package config

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSSLBlock(t *testing.T) {
	cfg, err := parseSrc(t, "SSL {\n    ca /etc/vipd/rabbit-ca.pem\n    certificate /etc/vipd/vipd.pem\n    key /etc/vipd/vipd.key\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	want := SSL{Pos: Pos{File: "keepalived.conf", Line: 1}, CA: "/etc/vipd/rabbit-ca.pem", Certificate: "/etc/vipd/vipd.pem", Key: "/etc/vipd/vipd.key"}
	if cfg.SSL == nil || *cfg.SSL != want {
		t.Fatalf("SSL = %+v, want %+v", cfg.SSL, want)
	}
	if len(cfg.Notes) != 0 {
		t.Errorf("notes on a valid SSL block: %v", cfg.Notes)
	}
	b, err := json.Marshal(cfg)
	if err != nil || !strings.Contains(string(b), `"SSL":{"ca":"/etc/vipd/rabbit-ca.pem"`) {
		t.Errorf("json: %s, %v", b, err)
	}
}
