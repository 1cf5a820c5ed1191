package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/control"
	"github.com/svcgate/svcgate/internal/httpapi"
)

// The tokens the fake authenticator knows.
const (
	adminToken  = "svcg_admin"
	viewerToken = "svcg_viewer"
)

var (
	adminPrincipal  = svcgate.Principal{ID: "tok-admin", Name: "admin", Kind: "token", Roles: []string{"admin"}}
	viewerPrincipal = svcgate.Principal{ID: "tok-viewer", Name: "viewer", Kind: "token", Roles: []string{"viewer"}}
)

var since = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

// svc returns a service snapshot as a backend would report it, with nil
// lists the handler must turn into [].
func svc(name string, st svcgate.State) svcgate.Service {
	return svcgate.Service{Name: name, DisplayName: strings.ToUpper(name), State: st,
		StartType: svcgate.StartManual, Since: since, Backend: "supervisor"}
}

type fakeBackend struct {
	GetFunc func(ctx context.Context, name string) (svcgate.Service, error)
}

var _ svcgate.Backend = (*fakeBackend)(nil)

func (f *fakeBackend) Name() string { return "supervisor" }
func (f *fakeBackend) List(ctx context.Context) ([]svcgate.Service, error) {
	panic("the handler must list from the cache, never from the backend")
}
func (f *fakeBackend) Get(ctx context.Context, name string) (svcgate.Service, error) {
	return f.GetFunc(ctx, name)
}
func (f *fakeBackend) Control(context.Context, string, svcgate.Action, svcgate.ControlOptions) (svcgate.ControlResult, error) {
	panic("the handler must control through Control, never the backend")
}

type fakeServices struct {
	ServicesFunc func() (uint64, []svcgate.Service)
}

var _ httpapi.Services = (*fakeServices)(nil)

func (f *fakeServices) Services() (uint64, []svcgate.Service) { return f.ServicesFunc() }

type fakeEvents struct {
	SubscribeFunc func(ctx context.Context, after uint64) (<-chan svcgate.Event, bool)
	// Head is what LastSeq reports.
	Head uint64
}

var _ httpapi.Events = (*fakeEvents)(nil)

func (f *fakeEvents) Subscribe(ctx context.Context, after uint64) (<-chan svcgate.Event, bool) {
	return f.SubscribeFunc(ctx, after)
}

func (f *fakeEvents) LastSeq() uint64 { return f.Head }

type controlCall struct {
	Name   string
	Action svcgate.Action
	Opts   control.Options
}

// fakeControl records every call so that tests can assert that bad input
// never reached it.
type fakeControl struct {
	ControlFunc func(ctx context.Context, name string, a svcgate.Action, o control.Options) (control.Result, error)

	mu    sync.Mutex
	calls []controlCall
}

var _ httpapi.Control = (*fakeControl)(nil)

func (f *fakeControl) Control(ctx context.Context, name string, a svcgate.Action, o control.Options) (control.Result, error) {
	f.mu.Lock()
	f.calls = append(f.calls, controlCall{name, a, o})
	f.mu.Unlock()
	return f.ControlFunc(ctx, name, a, o)
}

func (f *fakeControl) Calls() []controlCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]controlCall(nil), f.calls...)
}

type fakeConfigure struct {
	CreateFunc func(ctx context.Context, spec svcgate.ServiceSpec, dryRun bool) (control.Result, error)
	UpdateFunc func(ctx context.Context, name string, u svcgate.ServiceUpdate, dryRun bool) (control.Result, error)
	DeleteFunc func(ctx context.Context, name string, stop, dryRun bool) (control.Result, error)

	mu    sync.Mutex
	calls int
}

var _ httpapi.Configure = (*fakeConfigure)(nil)

func (f *fakeConfigure) count() {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
}

func (f *fakeConfigure) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeConfigure) Create(ctx context.Context, spec svcgate.ServiceSpec, dryRun bool) (control.Result, error) {
	f.count()
	return f.CreateFunc(ctx, spec, dryRun)
}
func (f *fakeConfigure) Update(ctx context.Context, name string, u svcgate.ServiceUpdate, dryRun bool) (control.Result, error) {
	f.count()
	return f.UpdateFunc(ctx, name, u, dryRun)
}
func (f *fakeConfigure) Delete(ctx context.Context, name string, stop, dryRun bool) (control.Result, error) {
	f.count()
	return f.DeleteFunc(ctx, name, stop, dryRun)
}

// fakeAuthn knows two bearer tokens.
type fakeAuthn struct{}

var _ httpapi.Authenticator = fakeAuthn{}

func (fakeAuthn) Authenticate(r *http.Request) (svcgate.Principal, error) {
	switch r.Header.Get("Authorization") {
	case "Bearer " + adminToken:
		return adminPrincipal, nil
	case "Bearer " + viewerToken:
		return viewerPrincipal, nil
	case "":
		return svcgate.Principal{}, svcgate.Errorf(svcgate.CodeUnauthenticated, "no credentials")
	}
	return svcgate.Principal{}, svcgate.Errorf(svcgate.CodeUnauthenticated, "invalid token")
}

type authzCall struct {
	Principal string
	Perm      svcgate.Permission
	Service   string
}

// fakeAuthz allows everything unless AuthorizeFunc says otherwise, and
// records what it was asked.
type fakeAuthz struct {
	AuthorizeFunc func(p svcgate.Principal, perm svcgate.Permission, service string) error

	mu    sync.Mutex
	calls []authzCall
}

var _ httpapi.Authorizer = (*fakeAuthz)(nil)

func (f *fakeAuthz) Authorize(p svcgate.Principal, perm svcgate.Permission, service string) error {
	f.mu.Lock()
	f.calls = append(f.calls, authzCall{p.ID, perm, service})
	f.mu.Unlock()
	if f.AuthorizeFunc == nil {
		return nil
	}
	return f.AuthorizeFunc(p, perm, service)
}

func (f *fakeAuthz) Calls() []authzCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]authzCall(nil), f.calls...)
}

// denyUnless returns an AuthorizeFunc that allows only the listed
// permission@service pairs ("@" alone for service "").
func denyUnless(allowed ...string) func(svcgate.Principal, svcgate.Permission, string) error {
	return func(p svcgate.Principal, perm svcgate.Permission, service string) error {
		for _, a := range allowed {
			if a == string(perm)+"@"+service {
				return nil
			}
		}
		return svcgate.Errorf(svcgate.CodeForbidden, "%s may not %s %s", p.Name, perm, service)
	}
}

// syncBuffer collects log output written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the JSON log records written so far.
func (s *syncBuffer) lines(t testing.TB) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(s.b.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// fixture is a running API over fakes with default, successful behaviour
// that tests override field by field.
type fixture struct {
	Opts      httpapi.Options
	Backend   *fakeBackend
	Services  *fakeServices
	Events    *fakeEvents
	Control   *fakeControl
	Configure *fakeConfigure
	Authz     *fakeAuthz
	Logs      *syncBuffer

	srv      *httptest.Server
	contract *contractTransport
	hc       *http.Client
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{
		Backend: &fakeBackend{GetFunc: func(_ context.Context, name string) (svcgate.Service, error) {
			if name == "web" {
				return svc("web", svcgate.StateRunning), nil
			}
			return svcgate.Service{}, svcgate.Errorf(svcgate.CodeServiceNotFound, "no service %q", name)
		}},
		Services: &fakeServices{ServicesFunc: func() (uint64, []svcgate.Service) {
			return 1, []svcgate.Service{svc("db", svcgate.StateStopped), svc("web", svcgate.StateRunning)}
		}},
		Events: &fakeEvents{SubscribeFunc: func(ctx context.Context, after uint64) (<-chan svcgate.Event, bool) {
			ch := make(chan svcgate.Event)
			close(ch)
			return ch, true
		}},
		Control: &fakeControl{ControlFunc: func(_ context.Context, name string, a svcgate.Action, o control.Options) (control.Result, error) {
			return control.Result{Service: svc(name, a.Target()), Changed: true, Duration: 1500 * time.Millisecond}, nil
		}},
		Configure: &fakeConfigure{
			CreateFunc: func(_ context.Context, spec svcgate.ServiceSpec, dryRun bool) (control.Result, error) {
				if dryRun {
					return control.Result{DryRun: true, Plan: []control.Step{{Service: spec.Name, Action: "create"}}}, nil
				}
				return control.Result{Service: svc(spec.Name, svcgate.StateStopped), Changed: true}, nil
			},
			UpdateFunc: func(_ context.Context, name string, u svcgate.ServiceUpdate, dryRun bool) (control.Result, error) {
				return control.Result{Service: svc(name, svcgate.StateStopped), Changed: true, DryRun: dryRun}, nil
			},
			DeleteFunc: func(_ context.Context, name string, stop, dryRun bool) (control.Result, error) {
				return control.Result{Changed: true, DryRun: dryRun}, nil
			},
		},
		Authz: &fakeAuthz{},
		Logs:  &syncBuffer{},
	}
	f.Opts = httpapi.Options{
		Logger:        slog.New(slog.NewJSONHandler(f.Logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Backend:       f.Backend,
		Services:      f.Services,
		Events:        f.Events,
		Control:       f.Control,
		Configure:     f.Configure,
		Authenticator: fakeAuthn{},
		Authorizer:    f.Authz,
		Agent: func() httpapi.AgentInfo {
			return httpapi.AgentInfo{Version: "1.2.3", Backend: "supervisor", Capabilities: []string{"watch", "configure"},
				StartedAt: since, ConfigGeneration: 4}
		},
		Reload: func(context.Context) error { return nil },
		Now:    func() time.Time { return since.Add(90 * time.Second) },
	}
	return f
}

// start serves the API; changes to Opts after start have no effect.
func (f *fixture) start(t testing.TB) *fixture {
	t.Helper()
	f.contract = newContractTransport(t, http.DefaultTransport)
	f.srv = httptest.NewServer(httpapi.NewHandler(f.Opts))
	t.Cleanup(f.srv.Close)
	f.hc = &http.Client{
		Transport: f.contract,
		// The API never redirects; a redirect would hide what the mux did.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return f
}

// client returns an API client of the fixture that authenticates with
// token, its responses checked against the document like every other.
func (f *fixture) client(token string) *httpapi.Client {
	return httpapi.NewClient(f.srv.URL, token, f.hc)
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// problem decodes the body as a problem, after checking the media type and
// that the trace id in the body is the one in the header.
func (r response) problem(t testing.TB) httpapi.Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, r.Body)
	}
	var p httpapi.Problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.Body, err)
	}
	if p.TraceID == "" || p.TraceID != r.Header.Get("X-Request-Id") {
		t.Errorf("trace_id %q, X-Request-Id %q: want both set and equal", p.TraceID, r.Header.Get("X-Request-Id"))
	}
	if p.Type != "urn:svcgate:problem:"+p.Code || p.Status != r.Status {
		t.Errorf("problem type %q status %d for code %q and response status %d", p.Type, p.Status, p.Code, r.Status)
	}
	return p
}

// wantProblem checks the status and the code of an error response.
func (r response) wantProblem(t testing.TB, status int, code string) httpapi.Problem {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	p := r.problem(t)
	if p.Code != code {
		t.Fatalf("code = %q, want %q; detail %q", p.Code, code, p.Detail)
	}
	return p
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
}

// req is one test request; Header holds name, value pairs.
type req struct {
	Method, Path string
	Token        string
	Body         string
	ContentType  string
	Header       []string
}

// do sends rq as the admin unless it names a token ("-" for none).
func (f *fixture) do(t testing.TB, rq req) response {
	t.Helper()
	var body io.Reader
	if rq.Body != "" {
		body = strings.NewReader(rq.Body)
	}
	r, err := http.NewRequest(rq.Method, f.srv.URL+rq.Path, body)
	if err != nil {
		t.Fatal(err)
	}
	switch rq.Token {
	case "":
		r.Header.Set("Authorization", "Bearer "+adminToken)
	case "-":
	default:
		r.Header.Set("Authorization", "Bearer "+rq.Token)
	}
	if rq.Body != "" {
		ct := rq.ContentType
		if ct == "" {
			ct = "application/json"
		}
		if ct != "-" {
			r.Header.Set("Content-Type", ct)
		}
	}
	for i := 0; i+1 < len(rq.Header); i += 2 {
		r.Header.Set(rq.Header[i], rq.Header[i+1])
	}
	resp, err := f.hc.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", rq.Method, rq.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", rq.Method, rq.Path, err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func get(f *fixture, t testing.TB, path string) response {
	t.Helper()
	return f.do(t, req{Method: http.MethodGet, Path: path})
}

func post(f *fixture, t testing.TB, path, body string) response {
	t.Helper()
	return f.do(t, req{Method: http.MethodPost, Path: path, Body: body})
}

// badNames are service names the grammar rejects, as they appear in a
// path, each with what it tries.
var badNames = []struct{ what, path string }{
	{"a slash", "%2F"},
	{"a slash inside", "a%2Fb"},
	{"dot dot", "%2E%2E"},
	{"a space", "a%20b"},
	{"a NUL byte", "web%00"},
	{"a leading dash", "-rf"},
	{"a leading dot", ".hidden"},
	{"300 characters", strings.Repeat("a", 300)},
	{"a shell metacharacter", "web%3Bid"},
}
