package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// instanceStatus is what `vipd status` and GET /status show of one
// instance.
type instanceStatus struct {
	Name         string    `json:"name"`
	State        string    `json:"state"`
	Interface    string    `json:"interface"`
	SyncGroup    string    `json:"sync_group,omitempty"`
	VRID         int       `json:"virtual_router_id"`
	Version      int       `json:"version"`
	Priority     int       `json:"priority"`
	BasePriority int       `json:"base_priority"`
	Master       string    `json:"master,omitempty"`
	VIPs         []string  `json:"virtual_ipaddress"`
	Excluded     []string  `json:"virtual_ipaddress_excluded,omitempty"`
	Since        time.Time `json:"since"`
	PeerChecksum string    `json:"peer_checksum,omitempty"`
	Counters     counters  `json:"counters"`
}

type counters struct {
	AdvertsSent     uint64            `json:"adverts_sent"`
	AdvertsReceived uint64            `json:"adverts_received"`
	SendErrors      uint64            `json:"send_errors"`
	GARPs           uint64            `json:"garp_sent"`
	GARPErrors      uint64            `json:"garp_errors"`
	NotifyRuns      uint64            `json:"notify_runs"`
	NotifyFailures  uint64            `json:"notify_failures"`
	NotifyDropped   uint64            `json:"notify_dropped"`
	AddressErrors   uint64            `json:"address_errors"`
	Drops           map[string]uint64 `json:"drops"`
	Transitions     map[string]uint64 `json:"transitions"`
}

func (m *instanceMetrics) counters() counters {
	drops, transitions := m.snapshot()
	return counters{
		AdvertsSent:     m.advertsSent.Load(),
		AdvertsReceived: m.advertsReceived.Load(),
		SendErrors:      m.sendErrors.Load(),
		GARPs:           m.garps.Load(),
		GARPErrors:      m.garpErrors.Load(),
		NotifyRuns:      m.notifyRuns.Load(),
		NotifyFailures:  m.notifyFailures.Load(),
		NotifyDropped:   m.notifyDropped.Load(),
		AddressErrors:   m.addrErrors.Load(),
		Drops:           drops,
		Transitions:     transitions,
	}
}

// daemonStatus is the whole answer of GET /status.
type daemonStatus struct {
	RouterID  string           `json:"router_id,omitempty"`
	Config    string           `json:"config"`
	Loaded    time.Time        `json:"loaded"`
	Instances []instanceStatus `json:"instances"`
	IPVS      *ipvsStatus      `json:"ipvs,omitempty"`
}

// statusServer serves GET /status (JSON) and GET /metrics (Prometheus text)
// on a loopback address by default.
type statusServer struct {
	srv *http.Server
	ln  net.Listener
	log *slog.Logger
}

func startStatusServer(addr string, get func() daemonStatus, log *slog.Logger) (*statusServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("status endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(get())
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		st := get()
		writeProm(w, st.Instances)
		writeIPVSProm(w, st.IPVS)
	})
	s := &statusServer{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		ln:  ln,
		log: log,
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("status endpoint stopped", "err", err)
		}
	}()
	return s, nil
}

func (s *statusServer) Addr() string { return s.ln.Addr().String() }

func (s *statusServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// fetchStatus asks a running daemon for its status.
func fetchStatus(ctx context.Context, addr string, out io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("no vipd answers at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("vipd at %s answered %s", addr, resp.Status)
	}
	_, err = io.Copy(out, resp.Body)
	return err
}
