package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/backend/supervisor"
	"github.com/svcgate/svcgate/internal/config"
)

// reloader applies a changed configuration file to the running agent:
// build and validate the new configuration, apply what can change live,
// then swap it in. A failed reload keeps the running configuration.
type reloader struct {
	path    string // "" when the agent runs the embedded default
	store   *config.Store
	backend svcgate.Backend
	log     *slog.Logger

	mu sync.Mutex // one reload at a time
}

// Reload reads the configuration file again. It fails with invalid_request
// naming every problem of a bad file, and with unsupported_action when the
// agent runs without a file. Fields that only take effect at a restart
// (listen, state_dir, backend, http limits) are logged as such.
func (r *reloader) Reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.path == "" {
		return svcgate.Errorf(svcgate.CodeUnsupportedAction, "the agent runs the embedded default configuration; there is no file to reload")
	}
	next, err := config.Load(r.path)
	if err != nil {
		r.log.Warn("configuration reload failed; keeping the running configuration", "path", r.path, "err", err)
		var ce *config.Error
		if errors.As(err, &ce) {
			return &svcgate.Error{Code: svcgate.CodeInvalidRequest, Message: ce.Error(), Err: err}
		}
		return &svcgate.Error{Code: svcgate.CodeInvalidRequest, Message: "the configuration file cannot be read", Err: err}
	}
	cur := r.store.Load()
	for field, changed := range map[string]bool{
		"listen":    next.Listen != cur.Listen,
		"state_dir": next.StateDir != cur.StateDir,
		"backend":   next.Backend != cur.Backend,
		"http":      next.HTTP != cur.HTTP,
		"log":       next.Log != cur.Log,
		"events":    next.Events != cur.Events,
	} {
		if changed {
			r.log.Warn("a changed setting takes effect only when the agent restarts", "field", field)
		}
	}
	if sup, ok := r.backend.(*supervisor.Backend); ok {
		if err := sup.SetPrograms(ctx, next.Programs); err != nil {
			r.log.Warn("configuration reload failed; keeping the running configuration", "path", r.path, "err", err)
			return err
		}
	}
	r.store.Swap(next)
	r.log.Info("configuration reloaded", "path", r.path, "generation", r.store.Generation())
	return nil
}
