package health

import (
	"bytes"
	"log/slog"
)

// logString is how v appears in a log line.
func logString(v any) string {
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "v", v)
	return b.String()
}
