package httpapi

import (
	"log/slog"
	"net/http"
	"time"
)

// ServerOptions tune the http.Server NewServer builds. Zero fields take
// the defaults below.
type ServerOptions struct {
	// ReadHeaderTimeout bounds reading a request's headers (slowloris);
	// default 5s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included; default
	// 30s. The event stream lifts it for itself.
	ReadTimeout time.Duration
	// IdleTimeout bounds an idle keep-alive connection; default 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps request headers; default 64 KiB.
	MaxHeaderBytes int
	// Logger receives the server's own errors (TLS handshakes, broken
	// connections) at warn level; nil discards them.
	Logger *slog.Logger
}

// The defaults of ServerOptions.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
)

// NewServer returns an http.Server for h with the timeouts and limits of
// o. It sets no WriteTimeout: an action may wait up to five minutes for
// its target state (svcgate.WaitMax) and the event stream runs for hours;
// both bound their own writes instead. The caller sets TLSConfig and
// serves on its own listener.
func NewServer(h http.Handler, o ServerOptions) *http.Server {
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
}
