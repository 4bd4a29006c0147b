package config

// Config is a whole configuration: one field per top-level block kind, in
// the order of the file. Its json form (keyword names as keys, durations
// as "1s", secrets redacted) is what `vipd check -dump` prints.
type Config struct {
	GlobalDefs          GlobalDefs           `json:"global_defs"`
	VRRPScripts         []VRRPScript         `json:"vrrp_script,omitempty"`
	VRRPInstances       []VRRPInstance       `json:"vrrp_instance,omitempty"`
	VRRPSyncGroups      []VRRPSyncGroup      `json:"vrrp_sync_group,omitempty"`
	VirtualServerGroups []VirtualServerGroup `json:"virtual_server_group,omitempty"`
	VirtualServers      []VirtualServer      `json:"virtual_server,omitempty"`
	SSL                 *SSL                 `json:"SSL,omitempty"`

	// Files lists the files read, the main one first, then the included
	// ones in the order they were included.
	Files []string `json:"-"`
	// Notes are warnings about the configuration, in file order.
	Notes []Note `json:"-"`
}

// DefaultConfig returns an empty configuration with keepalived's global
// defaults.
func DefaultConfig() *Config {
	return &Config{GlobalDefs: DefaultGlobalDefs()}
}

// VRRPScript returns the vrrp_script called name, or nil.
func (c *Config) VRRPScript(name string) *VRRPScript {
	for i := range c.VRRPScripts {
		if c.VRRPScripts[i].Name == name {
			return &c.VRRPScripts[i]
		}
	}
	return nil
}

// VRRPInstance returns the vrrp_instance called name, or nil.
func (c *Config) VRRPInstance(name string) *VRRPInstance {
	for i := range c.VRRPInstances {
		if c.VRRPInstances[i].Name == name {
			return &c.VRRPInstances[i]
		}
	}
	return nil
}

// VirtualServerGroup returns the virtual_server_group called name, or nil.
func (c *Config) VirtualServerGroup(name string) *VirtualServerGroup {
	for i := range c.VirtualServerGroups {
		if c.VirtualServerGroups[i].Name == name {
			return &c.VirtualServerGroups[i]
		}
	}
	return nil
}

// NotesOf returns the notes of one kind.
func (c *Config) NotesOf(kind NoteKind) []Note {
	var out []Note
	for _, n := range c.Notes {
		if n.Kind == kind {
			out = append(out, n)
		}
	}
	return out
}

func (d *decoder) decode(root *stmt) *Config {
	cfg := DefaultConfig()
	d.walk("top level", root, d.topKeywords(cfg), nil, nil)
	return cfg
}

func (d *decoder) topKeywords(cfg *Config) keywords {
	return keywords{
		"global_defs": block(func(s *stmt) {
			if len(s.args) > 0 {
				d.errorf(s, s.kw.line, "global_defs: expected no argument before '{', got %d", len(s.args))
			}
			d.globalDefs(&cfg.GlobalDefs, s)
		}),
		"vrrp_script": block(func(s *stmt) {
			if sc, ok := d.vrrpScript(s); ok {
				cfg.VRRPScripts = append(cfg.VRRPScripts, sc)
			}
		}),
		"vrrp_instance": block(func(s *stmt) {
			if in, ok := d.vrrpInstance(s); ok {
				cfg.VRRPInstances = append(cfg.VRRPInstances, in)
			}
		}),
		"vrrp_sync_group": block(func(s *stmt) {
			if g, ok := d.vrrpSyncGroup(s); ok {
				cfg.VRRPSyncGroups = append(cfg.VRRPSyncGroups, g)
			}
		}),
		"virtual_server": block(func(s *stmt) {
			if vs, ok := d.virtualServer(s); ok {
				cfg.VirtualServers = append(cfg.VirtualServers, vs)
			}
		}),
		"SSL": block(func(s *stmt) {
			if len(s.args) > 0 {
				d.errorf(s, s.kw.line, "SSL: expected no argument before '{', got %d", len(s.args))
			}
			if cfg.SSL != nil {
				d.errorf(s, s.kw.line, "SSL: a second SSL block (the first is at %s)", cfg.SSL.Pos)
				return
			}
			cfg.SSL = &SSL{Pos: s.pos()}
			d.walk("SSL", s, d.sslKeywords(cfg.SSL), newMeta(), func() any { return cfg.SSL })
		}),
		"virtual_server_group": block(func(s *stmt) {
			if g, ok := d.virtualServerGroup(s); ok {
				cfg.VirtualServerGroups = append(cfg.VirtualServerGroups, g)
			}
		}),
	}
}

// SSL is keepalived's top-level SSL block: the files SSL_GET checks use.
// vipd verifies the real servers' certificates (keepalived does not): CA
// names the authorities it trusts instead of the system's roots;
// Certificate and Key are a client certificate the checks present.
type SSL struct {
	Pos         Pos    `json:"-"`
	CA          string `json:"ca,omitempty"`
	Certificate string `json:"certificate,omitempty"`
	Key         string `json:"key,omitempty"`
	// Password decrypts Key in keepalived; vipd refuses encrypted keys.
	Password Secret `json:"password,omitempty"`
}

func (d *decoder) sslKeywords(c *SSL) keywords {
	path := func(p *string) func(*stmt) {
		return func(s *stmt) {
			if v, ok := d.strArg(s); ok {
				*p = v
			}
		}
	}
	return keywords{
		"ca":          value(path(&c.CA)),
		"certificate": value(path(&c.Certificate)),
		"key":         value(path(&c.Key)),
		"password":    value(d.passwordHandler(&c.Password)),
	}
}
