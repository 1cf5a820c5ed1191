package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/httpapi"
)

// anonymousRoutes are the only routes that may be served without
// authentication (DESIGN §4).
var anonymousRoutes = []string{"GET /healthz", "GET /readyz", "GET /v1/openapi.json"}

func TestEveryRouteNamesAPermission(t *testing.T) {
	known := []svcgate.Permission{
		svcgate.PermRead, svcgate.PermMetrics, svcgate.PermCreate, svcgate.PermConfigure, svcgate.PermDelete,
		svcgate.PermLogs, svcgate.PermAudit, svcgate.PermAdmin, httpapi.PermAction, httpapi.PermPerItem,
	}
	for _, rt := range httpapi.Routes() {
		anonymous := slices.Contains(anonymousRoutes, rt.Pattern)
		switch {
		case rt.Permission == svcgate.PermNone && !anonymous:
			t.Errorf("%s has no permission; only %v may", rt.Pattern, anonymousRoutes)
		case rt.Permission != svcgate.PermNone && anonymous:
			t.Errorf("%s needs %q but must stay anonymous", rt.Pattern, rt.Permission)
		case rt.Permission != svcgate.PermNone && !slices.Contains(known, rt.Permission):
			t.Errorf("%s needs %q, which is no permission", rt.Pattern, rt.Permission)
		}
		if strings.Contains(rt.Pattern, "{name}") != (rt.Scope == "name") {
			t.Errorf("%s has scope %q: routes with {name} and only they authorize that name", rt.Pattern, rt.Scope)
		}
		if rt.Permission == httpapi.PermAction && !strings.Contains(rt.Pattern, "{action}") {
			t.Errorf("%s takes its permission from an {action} it does not have", rt.Pattern)
		}
		if rt.Permission == httpapi.PermPerItem && rt.Scope != "body" {
			t.Errorf("%s is authorized per item but not by its handler", rt.Pattern)
		}
	}
}

// concretePath fills a pattern's wildcards with valid values.
func concretePath(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = strings.ReplaceAll(path, "{name}", "web")
	path = strings.ReplaceAll(path, "{action}", "start")
	return method, path
}

// TestEveryProtectedRouteDeniesAnonymousCallers requests every route of
// the table without and with a wrong token: all but the anonymous ones
// answer 401 with a challenge, and nothing reaches a dependency.
func TestEveryProtectedRouteDeniesAnonymousCallers(t *testing.T) {
	f := newFixture(t).start(t)
	for _, rt := range httpapi.Routes() {
		method, path := concretePath(rt.Pattern)
		for _, token := range []string{"-", "svcg_wrong"} {
			r := f.do(t, req{Method: method, Path: path, Token: token, Body: `{}`})
			if slices.Contains(anonymousRoutes, rt.Pattern) {
				if r.Status != http.StatusOK {
					t.Errorf("%s %s anonymous: status %d, want 200", method, path, r.Status)
				}
				continue
			}
			r.wantProblem(t, http.StatusUnauthorized, svcgate.CodeUnauthenticated)
			if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s: WWW-Authenticate = %q, want a Bearer challenge", method, path, r.Header.Get("WWW-Authenticate"))
			}
		}
	}
	if n := len(f.Control.Calls()) + f.Configure.Calls() + len(f.Authz.Calls()); n != 0 {
		t.Errorf("%d calls reached the controller, configurer or authorizer without authentication", n)
	}
}

// TestEveryProtectedRouteAuthorizes denies everything and checks each
// route asks for its permission before doing anything.
func TestEveryProtectedRouteAuthorizes(t *testing.T) {
	f := newFixture(t)
	f.Authz.AuthorizeFunc = denyUnless()
	f.start(t)
	want := map[string]string{
		"GET /v1/agent":                     "read@",
		"POST /v1/agent/reload":             "admin@",
		"GET /v1/services":                  "read@",
		"POST /v1/services":                 "create@web",
		"GET /v1/services/{name}":           "read@web",
		"PATCH /v1/services/{name}":         "configure@web",
		"DELETE /v1/services/{name}":        "delete@web",
		"POST /v1/services/{name}/{action}": "start@web",
		"GET /v1/events":                    "read@",
	}
	bodies := map[string]string{
		"POST /v1/services":         `{"name":"web","binary_path":"/bin/web"}`,
		"PATCH /v1/services/{name}": `{"description":"x"}`,
	}
	for _, rt := range httpapi.Routes() {
		if slices.Contains(anonymousRoutes, rt.Pattern) || rt.Permission == httpapi.PermPerItem {
			continue // batch items are authorized one by one: TestBatch
		}
		method, path := concretePath(rt.Pattern)
		before := len(f.Authz.Calls())
		r := f.do(t, req{Method: method, Path: path, Body: bodies[rt.Pattern]})
		r.wantProblem(t, http.StatusForbidden, svcgate.CodeForbidden)
		calls := f.Authz.Calls()[before:]
		if len(calls) != 1 || string(calls[0].Perm)+"@"+calls[0].Service != want[rt.Pattern] || calls[0].Principal != adminPrincipal.ID {
			t.Errorf("%s asked the authorizer %+v, want %s for %s", rt.Pattern, calls, want[rt.Pattern], adminPrincipal.ID)
		}
	}
	if n := len(f.Control.Calls()) + f.Configure.Calls(); n != 0 {
		t.Errorf("%d calls reached the controller or configurer without authorization", n)
	}
}

func TestUnknownPaths(t *testing.T) {
	f := newFixture(t).start(t)
	for _, path := range []string{"/", "/nope", "/v1", "/v1/services/web/start/extra", "/v1/tokens", "/v1/services/"} {
		f.do(t, req{Method: http.MethodGet, Path: path, Token: "-"}).wantProblem(t, http.StatusUnauthorized, svcgate.CodeUnauthenticated)
		f.do(t, req{Method: http.MethodGet, Path: path}).wantProblem(t, http.StatusNotFound, svcgate.CodeNotFound)
	}
}

func TestWrongMethods(t *testing.T) {
	f := newFixture(t).start(t)
	tests := []struct {
		method, path, token string
		status              int
		allow               string
	}{
		{http.MethodPut, "/v1/services", "", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{http.MethodPost, "/v1/services/web", "", http.StatusMethodNotAllowed, "DELETE, GET, HEAD, PATCH"},
		{http.MethodGet, "/v1/services/web/start", "", http.StatusMethodNotAllowed, "POST"},
		{http.MethodDelete, "/v1/events", "", http.StatusMethodNotAllowed, "GET, HEAD"},
		// Health stays anonymous, even for the wrong method.
		{http.MethodPost, "/healthz", "-", http.StatusMethodNotAllowed, "GET, HEAD"},
		// Deny by default: an anonymous caller learns nothing of the table.
		{http.MethodPut, "/v1/services", "-", http.StatusUnauthorized, ""},
	}
	for _, tt := range tests {
		r := f.do(t, req{Method: tt.method, Path: tt.path, Token: tt.token})
		if tt.status == http.StatusUnauthorized {
			r.wantProblem(t, tt.status, svcgate.CodeUnauthenticated)
			continue
		}
		r.wantProblem(t, tt.status, svcgate.CodeMethodNotAllowed)
		if got := r.Header.Get("Allow"); got != tt.allow {
			t.Errorf("%s %s: Allow = %q, want %q", tt.method, tt.path, got, tt.allow)
		}
	}
}

func TestUnknownQueryParametersAreRejected(t *testing.T) {
	f := newFixture(t).start(t)
	for _, path := range []string{
		"/v1/services?sort=name",
		"/v1/services?state=running&state=stopped",
		"/v1/agent?verbose=1",
		"/v1/services/web?x=",
		"/healthz?probe=1",
		"/v1/services?%zz",
	} {
		r := f.do(t, req{Method: http.MethodGet, Path: path})
		r.wantProblem(t, http.StatusBadRequest, svcgate.CodeInvalidRequest)
	}
	r := post(f, t, "/v1/services/web/stop?dryrun=true", "")
	p := r.wantProblem(t, http.StatusBadRequest, svcgate.CodeInvalidRequest)
	if !strings.Contains(p.Detail, `"dryrun"`) {
		t.Errorf("detail %q does not name the unknown parameter", p.Detail)
	}
	if n := len(f.Control.Calls()); n != 0 {
		t.Errorf("a misspelt dry run reached the controller %d times", n)
	}
}

func TestTraceIDAndRequestLog(t *testing.T) {
	f := newFixture(t).start(t)
	r := get(f, t, "/v1/services/web")
	id := r.Header.Get("X-Request-Id")
	if len(id) != 32 {
		t.Fatalf("X-Request-Id = %q, want 32 hex digits", id)
	}
	if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("Cache-Control %q, X-Content-Type-Options %q", r.Header.Get("Cache-Control"), r.Header.Get("X-Content-Type-Options"))
	}
	if other := get(f, t, "/v1/services/web").Header.Get("X-Request-Id"); other == id {
		t.Errorf("two requests share trace id %q", id)
	}
	var found bool
	for _, l := range f.Logs.lines(t) {
		if l["trace_id"] != id {
			continue
		}
		found = true
		want := map[string]any{"msg": "request", "method": "GET", "route": "GET /v1/services/{name}",
			"status": float64(200), "principal": adminPrincipal.ID}
		for k, v := range want {
			if l[k] != v {
				t.Errorf("log %s = %v, want %v", k, l[k], v)
			}
		}
		if _, ok := l["duration"]; !ok {
			t.Error("the request log line has no duration")
		}
	}
	if !found {
		t.Errorf("no log line carries trace id %s", id)
	}
}

func TestPanicsBecomeInternalProblems(t *testing.T) {
	f := newFixture(t)
	f.Backend.GetFunc = func(_ context.Context, name string) (svcgate.Service, error) {
		panic("boom: secret detail")
	}
	f.start(t)
	r := get(f, t, "/v1/services/web")
	p := r.wantProblem(t, http.StatusInternalServerError, svcgate.CodeInternal)
	if strings.Contains(string(r.Body), "secret") {
		t.Errorf("the panic leaked into the body: %s", r.Body)
	}
	var logged bool
	for _, l := range f.Logs.lines(t) {
		if l["msg"] == "handler panicked" && l["trace_id"] == p.TraceID && strings.Contains(l["panic"].(string), "secret detail") {
			logged = true
		}
	}
	if !logged {
		t.Error("the panic is not logged with the trace id")
	}
	if r := get(f, t, "/healthz"); r.Status != http.StatusOK {
		t.Errorf("after a panic /healthz answers %d", r.Status)
	}
}

func TestNewHandlerRefusesMissingAuthentication(t *testing.T) {
	f := newFixture(t)
	f.Opts.Authenticator = nil
	defer func() {
		if recover() == nil {
			t.Error("NewHandler without an authenticator did not panic")
		}
	}()
	httpapi.NewHandler(f.Opts)
}
