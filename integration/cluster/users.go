package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// AddUser creates a user who may log in from any address (guest may only
// from loopback) with full permissions on the default virtual host "/", or
// sets the password and permissions of an existing one. Clients that reach
// the nodes through [Options.ExtraIP] log in as such a user.
//
// It goes through the management API of the first running node, so the
// password never appears on a command line, and it is never part of an
// error. Users belong to the whole cluster. AddUser blocks until the node
// has answered or ctx ends.
func (c *Cluster) AddUser(ctx context.Context, name, password string) error {
	if name == "" || password == "" {
		return fmt.Errorf("cluster: AddUser needs a name and a password")
	}
	var base string
	for _, n := range c.Nodes() {
		if n.Running() {
			base = n.ManagementURL()
			break
		}
	}
	if base == "" {
		return fmt.Errorf("cluster: add user %s: %w", name, ErrNotRunning)
	}
	user := url.PathEscape(name)
	if err := mgmtPut(ctx, base+"/api/users/"+user, map[string]string{"password": password, "tags": ""}); err != nil {
		return fmt.Errorf("cluster: add user %s: %w", name, err)
	}
	perms := map[string]string{"configure": ".*", "write": ".*", "read": ".*"}
	if err := mgmtPut(ctx, base+"/api/permissions/%2F/"+user, perms); err != nil {
		return fmt.Errorf("cluster: permissions of user %s: %w", name, err)
	}
	return nil
}

// mgmtPut sends body as JSON to the management API as guest. Its errors
// hold the status and the API's answer, never the body.
func mgmtPut(ctx context.Context, u string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("Content-Type", "application/json")
	req.Close = true // no idle connection (and its goroutines) left behind
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("management API: %s: %s", resp.Status, strings.TrimSpace(string(answer)))
	}
	return nil
}
