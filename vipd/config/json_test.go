package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestJSON(t *testing.T) {
	cfg := mustParse(t, instance("version 3\nadvert_int 0.1\n")+`vrrp_instance V2 {
    interface eth1
    virtual_router_id 52
    authentication {
        auth_type PASS
        auth_pass hunter2
    }
    virtual_ipaddress {
        10.0.0.1/24
    }
}
virtual_server 10.0.0.1 5672 {
    protocol TCP
    real_server 10.0.0.2 5672 {
        AMQP_CHECK {
            user monitor
            password hunter3
        }
    }
}`)
	b, err := cfg.JSON()
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		`"advert_int": "100ms"`, `"auth_pass": "<redacted>"`, `"password": "<redacted>"`, `"delay_loop": "1m0s"`,
		`"virtual_router_id": 52`, `"address": "10.0.0.1/24"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("JSON lacks %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "hunter") {
		t.Errorf("JSON shows a secret:\n%s", s)
	}
	plain, err := json.Marshal(cfg)
	if err != nil || strings.Contains(string(plain), "hunter") {
		t.Errorf("json.Marshal: %v, shows a secret: %v", err, strings.Contains(string(plain), "hunter"))
	}
	var back struct {
		VRRPInstance []struct {
			AdvertInt Duration `json:"advert_int"`
		} `json:"vrrp_instance"`
	}
	if err := json.Unmarshal(b, &back); err != nil || back.VRRPInstance[0].AdvertInt.Duration().String() != "100ms" {
		t.Errorf("round trip: %v %+v", err, back)
	}
}

func TestSecretFormatting(t *testing.T) {
	s := Secret("hunter2")
	a := Authentication{AuthType: "PASS", AuthPass: s}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "pass", s, "auth", a)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", a, a, a, s), s.String(), logged.String()} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("secret printed: %s", out)
		}
	}
	if s.Reveal() != "hunter2" || Secret("").String() != "" {
		t.Error("Reveal or empty String")
	}
}
