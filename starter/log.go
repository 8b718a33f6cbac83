package starter

import (
	"log/slog"

	"go.temporal.io/sdk/log"
)

// newLogger adapts slog for the SDK, which is chatty at Info.
func newLogger(l *slog.Logger) log.Logger { return log.NewStructuredLogger(l) }
