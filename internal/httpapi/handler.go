package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/control"
)

// Services is the watch-fed cache GET /v1/services is served from. It
// returns the services sorted by name and a generation that changes
// whenever the list does; the slice is shared and must not be modified.
type Services interface {
	Services() (generation uint64, services []svcgate.Service)
}

// Events is the event hub GET /v1/events streams from.
type Events interface {
	// Subscribe returns the events with Seq > after, then new ones as they
	// happen. complete is false when some events after after were already
	// evicted from the resume buffer. The channel is closed when ctx ends
	// or the subscriber fell too far behind.
	Subscribe(ctx context.Context, after uint64) (events <-chan svcgate.Event, complete bool)
	// LastSeq returns the seq of the newest event, where a stream that
	// names no position starts.
	LastSeq() uint64
}

// Control carries out an action on one service and waits for its target
// state as o says. Its errors are *svcgate.Error values.
type Control interface {
	Control(ctx context.Context, name string, a svcgate.Action, o control.Options) (control.Result, error)
}

// Configure creates, changes and deletes services. Its errors are
// *svcgate.Error values.
type Configure interface {
	Create(ctx context.Context, spec svcgate.ServiceSpec, dryRun bool) (control.Result, error)
	Update(ctx context.Context, name string, u svcgate.ServiceUpdate, dryRun bool) (control.Result, error)
	Delete(ctx context.Context, name string, stop, dryRun bool) (control.Result, error)
}

// Authenticator turns a request's credentials into a principal. It fails
// with an unauthenticated *svcgate.Error.
type Authenticator interface {
	Authenticate(r *http.Request) (svcgate.Principal, error)
}

// Authorizer decides whether p holds perm on service ("" for requests not
// about one service). It fails with a forbidden or protected_service
// *svcgate.Error.
type Authorizer interface {
	Authorize(p svcgate.Principal, perm svcgate.Permission, service string) error
}

// AgentInfo describes the running agent (GET /v1/agent). The JSON form
// adds uptime_seconds.
type AgentInfo struct {
	Version          string    `json:"version"`
	Backend          string    `json:"backend"`
	Capabilities     []string  `json:"capabilities"`
	StartedAt        time.Time `json:"started_at"`
	ConfigGeneration uint64    `json:"config_generation"`
}

// Options are the dependencies of the handler. Backend, Services, Events,
// Control, Authenticator and Authorizer are required; the rest have
// defaults.
type Options struct {
	// Logger receives one line per request and the details of every
	// internal error; nil discards.
	Logger *slog.Logger
	// Backend answers GET /v1/services/{name}, live.
	Backend svcgate.Backend
	// Services serves GET /v1/services.
	Services Services
	// Events feeds GET /v1/events.
	Events Events
	// Control carries out actions, single and batched.
	Control Control
	// Configure creates, updates and deletes services; nil when the
	// backend cannot, and those routes answer 422 unsupported_action.
	Configure Configure
	// Authenticator and Authorizer guard every route but health and the
	// OpenAPI document.
	Authenticator Authenticator
	Authorizer    Authorizer
	// Agent describes the agent; nil reports the backend's name only.
	Agent func() AgentInfo
	// Ready reports readiness for GET /readyz; nil means always ready.
	Ready func() bool
	// Reload reloads the configuration; nil answers 422
	// unsupported_action.
	Reload func(ctx context.Context) error
	// MaxBodyBytes caps request bodies; 0 means 1 MiB.
	MaxBodyBytes int64
	// EventKeepAlive is the interval of SSE keepalive comments; 0 means
	// 15s.
	EventKeepAlive time.Duration
	// Now is the clock of timestamps and uptime; nil means time.Now.
	Now func() time.Time
}

// DefaultMaxBodyBytes is the body cap when Options.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// defaultKeepAlive keeps proxies with a 30-60s idle timeout from cutting a
// quiet event stream.
const defaultKeepAlive = 15 * time.Second

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.EventKeepAlive <= 0 {
		o.EventKeepAlive = defaultKeepAlive
	}
	if o.Ready == nil {
		o.Ready = func() bool { return true }
	}
	if o.Agent == nil {
		b := o.Backend
		o.Agent = func() AgentInfo {
			info := AgentInfo{Version: "unknown"}
			if b != nil {
				info.Backend = b.Name()
			}
			return info
		}
	}
	if o.Reload == nil {
		o.Reload = func(context.Context) error {
			return svcgate.Errorf(svcgate.CodeUnsupportedAction, "this agent cannot reload its configuration")
		}
	}
	return o
}

// NewHandler returns the API. It panics when a required dependency is
// missing: that is a wiring mistake, and an API without an authenticator
// must never start.
func NewHandler(o Options) http.Handler {
	o = o.withDefaults()
	switch {
	case o.Authenticator == nil:
		panic("httpapi: Options.Authenticator is nil")
	case o.Authorizer == nil:
		panic("httpapi: Options.Authorizer is nil")
	case o.Backend == nil, o.Services == nil, o.Events == nil, o.Control == nil:
		panic("httpapi: Options.Backend, Services, Events and Control are required")
	}

	mux := http.NewServeMux()
	allow := map[string][]string{} // path → methods, for 405s
	anonymous := map[string]bool{} // path → every route on it is anonymous
	namePrefixes := map[string]bool{}
	for _, rt := range routes(o) {
		mux.Handle(rt.pattern, guard(o, rt))
		method, path, _ := strings.Cut(rt.pattern, " ")
		if _, seen := anonymous[path]; !seen {
			anonymous[path] = true
		}
		anonymous[path] = anonymous[path] && rt.perm == svcgate.PermNone
		allow[path] = append(allow[path], method)
		if method == http.MethodGet {
			allow[path] = append(allow[path], http.MethodHead)
		}
		if prefix, _, ok := strings.Cut(path, "{name}"); ok {
			namePrefixes[prefix] = true
		}
	}
	// A path-only pattern is less specific than the method ones on the same
	// path, so it catches exactly the wrong methods. ServeMux would answer
	// those itself, but with text, not a problem.
	for path, methods := range allow {
		slices.Sort(methods)
		mux.Handle(path, unmatched(o, anonymous[path], func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", strings.Join(methods, ", "))
			writeProblemCode(w, svcgate.CodeMethodNotAllowed, "this path does not accept the method")
		}))
	}
	// ServeMux takes a last segment that unescapes to "/" (…/services/%2F)
	// for a trailing slash and matches no {name} route; this catches such
	// paths below a {name} so that they fail as the invalid names they are.
	for prefix := range namePrefixes {
		mux.Handle(prefix+"{rest...}", unmatched(o, false, func(w http.ResponseWriter, r *http.Request) {
			seg, _, _ := strings.Cut(strings.TrimPrefix(r.URL.EscapedPath(), prefix), "/")
			if name, err := url.PathUnescape(seg); err == nil && seg != "" {
				if err := svcgate.ValidateName(name); err != nil {
					writeError(w, r, err)
					return
				}
			}
			writeProblemCode(w, svcgate.CodeNotFound, "no such route")
		}))
	}
	mux.Handle("/", unmatched(o, false, func(w http.ResponseWriter, r *http.Request) {
		writeProblemCode(w, svcgate.CodeNotFound, "no such route")
	}))
	return observe(o, mux)
}

// scope says which service a route's permission is checked against.
type scope int

const (
	// scopeAgent routes are not about one service: authorized with "".
	scopeAgent scope = iota
	// scopeName routes name their service in the {name} path value, which
	// is validated before it is authorized.
	scopeName
	// scopeBody routes name their services in the body: the middleware
	// only authenticates and the handler authorizes each service through
	// authorize, with the route's permission (or each batch item's).
	scopeBody
)

// Permission markers the middleware resolves per request.
const (
	// permAction is the permission of the action in the {action} path value.
	permAction svcgate.Permission = "(action)"
	// permPerItem marks the batch route: each item needs its action's
	// permission for its service.
	permPerItem svcgate.Permission = "(per item)"
)

// route is one entry of the route table.
type route struct {
	pattern string             // ServeMux pattern, method first
	perm    svcgate.Permission // what the caller needs; PermNone only for health and the document
	scope   scope              // which service perm is checked against
	query   []string           // the query parameters the route accepts; any other is a 400
	handler http.Handler
}

// guard enforces, in order: authentication (401 before anything else is
// looked at), the route's query parameters, the {name} grammar, the
// {action}, and authorization. Nothing reaches a handler that did not pass.
func guard(o Options, rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := infoFrom(r.Context())
		ri.route = rt.pattern
		var p svcgate.Principal
		if rt.perm != svcgate.PermNone {
			var err error
			if p, err = o.Authenticator.Authenticate(r); err != nil {
				writeError(w, r, err)
				return
			}
			ri.principal = p.ID
			r = r.WithContext(svcgate.NewContext(r.Context(), p))
		}
		if err := checkQuery(r, rt.query); err != nil {
			writeError(w, r, err)
			return
		}
		service := ""
		if rt.scope == scopeName {
			service = r.PathValue("name")
			if err := svcgate.ValidateName(service); err != nil {
				writeError(w, r, err)
				return
			}
		}
		perm := rt.perm
		if perm == permAction {
			a := svcgate.Action(r.PathValue("action"))
			if !a.Valid() {
				writeError(w, r, unknownAction(a))
				return
			}
			perm = svcgate.ActionPermission(a)
		}
		if perm != svcgate.PermNone && rt.scope != scopeBody {
			if err := o.Authorizer.Authorize(p, perm, service); err != nil {
				writeError(w, r, err)
				return
			}
		}
		rt.handler.ServeHTTP(w, r)
	})
}

// authorize is the check of scopeBody routes, made by their handlers once
// the body names the service.
func authorize(ctx context.Context, a Authorizer, perm svcgate.Permission, service string) error {
	p, ok := svcgate.PrincipalFrom(ctx)
	if !ok {
		// guard authenticates every scopeBody route; reaching this is a
		// wiring mistake, and the safe answer is no.
		return svcgate.Errorf(svcgate.CodeUnauthenticated, "authentication required")
	}
	return a.Authorize(p, perm, service)
}

func unknownAction(a svcgate.Action) error {
	names := make([]string, len(svcgate.Actions))
	for i, v := range svcgate.Actions {
		names[i] = string(v)
	}
	return svcgate.Errorf(svcgate.CodeNotFound, "unknown action %q; the actions are %s", a, strings.Join(names, ", "))
}

// unmatched answers requests no route takes. Unauthenticated callers get
// 401 whatever the path, so the route table cannot be probed anonymously.
func unmatched(o Options, anonymous bool, answer http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := infoFrom(r.Context())
		ri.route = r.Pattern
		if !anonymous {
			p, err := o.Authenticator.Authenticate(r)
			if err != nil {
				writeError(w, r, err)
				return
			}
			ri.principal = p.ID
		}
		answer(w, r)
	})
}

// writeProblemCode writes a problem for code without going through an
// error value.
func writeProblemCode(w http.ResponseWriter, code, detail string) {
	writeProblem(w, problemFor(svcgate.Errorf(code, "%s", detail), traceIDOf(w)))
}

// checkQuery rejects query parameters the route does not know, and
// parameters given twice: a misspelt ?dryrun=true must not turn a dry run
// into a real one.
func checkQuery(r *http.Request, allowed []string) error {
	if r.URL.RawQuery == "" {
		return nil
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return svcgate.Errorf(svcgate.CodeInvalidRequest, "malformed query string")
	}
	for k, v := range q {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return svcgate.Errorf(svcgate.CodeInvalidRequest, "unknown query parameter %q; this route takes none", k)
			}
			return svcgate.Errorf(svcgate.CodeInvalidRequest, "unknown query parameter %q; this route takes %s", k, strings.Join(allowed, ", "))
		}
		if len(v) > 1 {
			return svcgate.Errorf(svcgate.CodeInvalidRequest, "query parameter %q is given more than once", k)
		}
	}
	return nil
}

// requestInfo is what the middleware learns about a request, for its log
// line and its problems.
type requestInfo struct {
	traceID   string
	logger    *slog.Logger
	route     string
	principal string
}

type infoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{logger: slog.New(slog.DiscardHandler)}
}

// traceIDOf reads the trace id back from the response header observe set.
func traceIDOf(w http.ResponseWriter) string { return w.Header().Get("X-Request-Id") }

// observe gives each request a trace id (X-Request-Id, every log line,
// every problem), turns a panic into a 500 problem, and logs the request
// once it is answered.
func observe(o Options, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &requestInfo{traceID: newTraceID(), logger: o.Logger}
		rec := &recorder{ResponseWriter: w}
		h := rec.Header()
		h.Set("X-Request-Id", ri.traceID)
		// Service states are live data: no cache keeps them (a handler may
		// say otherwise), and no browser guesses a type for them.
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, ri))
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				o.Logger.LogAttrs(r.Context(), slog.LevelError, "handler panicked",
					slog.String("trace_id", ri.traceID), slog.String("route", ri.route), slog.Any("panic", v))
				if rec.status == 0 {
					writeProblem(rec, problemFor(nil, ri.traceID))
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			o.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("trace_id", ri.traceID),
				slog.String("method", r.Method),
				slog.String("route", ri.route),
				slog.String("path", r.URL.EscapedPath()),
				slog.Int("status", status),
				slog.Duration("duration", time.Since(start)),
				slog.String("principal", ri.principal),
				slog.Int64("bytes", rec.bytes))
		}()
		next.ServeHTTP(rec, r)
	})
}

func newTraceID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b[:])
}

// recorder remembers the status and size of a response. Unwrap lets
// http.ResponseController reach the connection underneath for flushing
// and deadlines.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
