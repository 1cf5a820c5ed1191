package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/authn"
	"github.com/svcgate/svcgate/internal/backend/supervisor"
	"github.com/svcgate/svcgate/internal/config"
	"github.com/svcgate/svcgate/internal/control"
	"github.com/svcgate/svcgate/internal/httpapi"
	"github.com/svcgate/svcgate/internal/hub"
	"github.com/svcgate/svcgate/internal/rbac"
)

func serveCmd(e env, g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the agent in the foreground",
		Long: `Run the agent in the foreground, logging JSON to stderr, until SIGINT or SIGTERM.

Without --config (or $SVCGATE_CONFIG) it runs the embedded default: the API on
127.0.0.1:8484, state in ./state, and the backend chosen for this machine.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg := config.Default()
			path := firstNonEmpty(g.config, e.getenv("SVCGATE_CONFIG"))
			if path != "" {
				var err error
				if cfg, err = config.Load(path); err != nil {
					return err
				}
			}
			return serve(c.Context(), path, cfg, e)
		},
	}
}

func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	return nil
}

// serve runs the agent with cfg, read from path ("" for the embedded
// default), until ctx ends. SIGHUP and POST /v1/agent/reload read path again.
//
// Shutdown runs in the order that loses nothing: stop accepting and drain
// in-flight requests (closing event streams first, since they never go
// idle), then stop the backend's programs, then the event hub.
func serve(ctx context.Context, path string, cfg *config.Config, e env) error {
	logger, err := newLogger(cfg.Log, e.stderr)
	if err != nil {
		return err
	}
	if !cfg.Loopback() {
		// TLS comes with the security issue; until then only loopback is
		// safe to serve.
		return fmt.Errorf("listen %s: a non-loopback address requires TLS, which this build cannot serve yet; use a loopback address", cfg.Listen)
	}

	tokens, err := authn.OpenTokens(cfg.StateDir, nil)
	if err != nil {
		return err
	}
	tokenPath, created, err := tokens.Bootstrap(cfg.StateDir)
	if err != nil {
		return err
	}
	if created {
		logger.Info("created the admin token; use it as a bearer token or let the CLI read it", "path", tokenPath)
	} else {
		logger.Info("using the existing tokens", "tokens", tokens.Len(), "admin_token_path", tokenPath)
	}

	backend, runBackend, err := openBackend(cfg, logger)
	if err != nil {
		return err
	}
	h := hub.New(backend, hub.Options{Buffer: cfg.Events.Buffer, Logger: logger})
	ctl := control.New(backend, control.ControllerOptions{Notifier: h, Logger: logger})
	started := time.Now()
	store := config.NewStore(cfg)
	rl := &reloader{path: path, store: store, backend: backend, log: logger}
	opts := httpapi.Options{
		Logger:        logger,
		Backend:       backend,
		Services:      h,
		Events:        h,
		Control:       ctl,
		Authenticator: tokens,
		Authorizer:    rbac.Builtin(),
		Agent: func() httpapi.AgentInfo {
			return httpapi.AgentInfo{
				Version:          version,
				Backend:          backend.Name(),
				Capabilities:     capabilities(backend),
				StartedAt:        started,
				ConfigGeneration: store.Generation(),
			}
		},
		Ready:        h.Ready,
		Reload:       rl.Reload,
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
	}
	if _, ok := backend.(svcgate.Configurer); ok {
		opts.Configure = ctl
	}
	srv := httpapi.NewServer(httpapi.NewHandler(opts), httpapi.ServerOptions{
		ReadHeaderTimeout: time.Duration(cfg.HTTP.ReadHeaderTimeout),
		ReadTimeout:       time.Duration(cfg.HTTP.ReadTimeout),
		IdleTimeout:       time.Duration(cfg.HTTP.IdleTimeout),
		MaxHeaderBytes:    cfg.HTTP.MaxHeaderBytes,
		Logger:            logger,
	})
	// Streams set their own per-write deadlines, so a configured write
	// timeout only bounds ordinary responses.
	srv.WriteTimeout = time.Duration(cfg.HTTP.WriteTimeout)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}

	// The backend and the hub outlive the HTTP server: requests draining
	// at shutdown still reach them.
	backendCtx, stopBackend := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackend()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Go(func() {
		if err := runBackend(backendCtx); err != nil {
			errc <- fmt.Errorf("backend: %w", err)
		}
	})
	hubCtx, stopHub := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHub()
	hubDone := make(chan struct{})
	go func() { defer close(hubDone); h.Run(hubCtx) }()
	srv.RegisterOnShutdown(h.CloseSubscribers)
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve: %w", err)
		}
	}()
	onReloadSignal(ctx, func() { rl.Reload(backendCtx) })
	logger.Info("svcgate is listening", "addr", ln.Addr().String(), "backend", backend.Name(), "version", version, "state_dir", cfg.StateDir)

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case runErr = <-errc:
		logger.Error("shutting down after a failure", "err", runErr)
	}
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(cfg.HTTP.ShutdownTimeout))
	defer cancel()
	if err := srv.Shutdown(drain); err != nil {
		logger.Warn("requests still running at the shutdown timeout were cut off", "err", err)
		srv.Close()
	}
	stopBackend()
	wg.Wait()
	stopHub()
	<-hubDone
	logger.Info("stopped")
	return runErr
}

// openBackend builds the configured backend and returns it with the
// function that runs it.
func openBackend(cfg *config.Config, logger *slog.Logger) (svcgate.Backend, func(context.Context) error, error) {
	name := cfg.Backend
	if name == "auto" {
		// The supervisor is the embedded default; the Windows and systemd
		// backends take over here as they are built.
		name = "supervisor"
	}
	switch name {
	case "supervisor":
		b, err := supervisor.New(supervisor.Options{StateDir: cfg.StateDir, Programs: cfg.Programs, Logger: logger.With("backend", "supervisor")})
		if err != nil {
			return nil, nil, err
		}
		return b, b.Run, nil
	}
	return nil, nil, fmt.Errorf("backend %q is not available in this build for %s", name, runtime.GOOS)
}

// capabilities lists what the API can do with this backend beyond list,
// get and control, as /v1/agent reports it.
func capabilities(b svcgate.Backend) []string {
	var caps []string
	if _, ok := b.(svcgate.Watcher); ok {
		caps = append(caps, "watch")
	} else {
		caps = append(caps, "poll")
	}
	if _, ok := b.(svcgate.Configurer); ok {
		caps = append(caps, "configure")
	}
	return caps
}

func newLogger(c config.Log, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, err
	}
	o := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, o)), nil
	}
	return slog.New(slog.NewJSONHandler(w, o)), nil
}
