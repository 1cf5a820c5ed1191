package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/httpapi"
)

func TestHealth(t *testing.T) {
	var ready atomic.Bool
	ready.Store(true)
	f := newFixture(t)
	f.Opts.Ready = ready.Load
	f.start(t)

	check := func(path string, status int, state string) {
		t.Helper()
		r := f.do(t, req{Method: http.MethodGet, Path: path, Token: "-"})
		if r.Status != status {
			t.Fatalf("%s: status %d, want %d", path, r.Status, status)
		}
		var body map[string]any
		r.decode(t, &body)
		want := map[string]any{"service": "svcgate", "status": state, "timestamp": "2026-11-30T10:01:30Z"}
		if diff := cmp.Diff(want, body); diff != "" {
			t.Errorf("%s body (-want +got), and nothing more:\n%s", path, diff)
		}
	}
	check("/healthz", 200, "UP")
	check("/readyz", 200, "UP")
	ready.Store(false)
	check("/healthz", 200, "UP")
	check("/readyz", 503, "DOWN")
	// A client reading the bare 503 takes it for not_ready.
	if got := httpapi.CodeOf(http.StatusServiceUnavailable); got != svcgate.CodeNotReady {
		t.Errorf("CodeOf(503) = %q", got)
	}
}

func TestAgent(t *testing.T) {
	f := newFixture(t).start(t)
	r := get(f, t, "/v1/agent")
	var body map[string]any
	r.decode(t, &body)
	want := map[string]any{
		"version": "1.2.3", "backend": "supervisor", "capabilities": []any{"watch", "configure"},
		"started_at": "2026-11-30T10:00:00Z", "config_generation": float64(4), "uptime_seconds": float64(90),
	}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("agent (-want +got):\n%s", diff)
	}
	// A viewer may read the agent; the authorizer is asked for read on no service.
	f.do(t, req{Method: http.MethodGet, Path: "/v1/agent", Token: viewerToken})
	calls := f.Authz.Calls()
	if last := calls[len(calls)-1]; last != (authzCall{viewerPrincipal.ID, svcgate.PermRead, ""}) {
		t.Errorf("authorizer asked %+v", last)
	}
}

func TestAgentDefaults(t *testing.T) {
	f := newFixture(t)
	f.Opts.Agent, f.Opts.Reload = nil, nil
	f.start(t)
	var info httpapi.AgentInfo
	get(f, t, "/v1/agent").decode(t, &info)
	if info.Backend != "supervisor" || info.Capabilities == nil {
		t.Errorf("default agent info %+v", info)
	}
	post(f, t, "/v1/agent/reload", "").wantProblem(t, http.StatusUnprocessableEntity, svcgate.CodeUnsupportedAction)
}

func TestReload(t *testing.T) {
	var gen atomic.Uint64
	gen.Store(4)
	f := newFixture(t)
	agent := f.Opts.Agent
	f.Opts.Agent = func() httpapi.AgentInfo {
		info := agent()
		info.ConfigGeneration = gen.Load()
		return info
	}
	fail := errors.New("")
	f.Opts.Reload = func(context.Context) error {
		if fail.Error() != "" {
			return fail
		}
		gen.Add(1)
		return nil
	}
	f.start(t)

	r := post(f, t, "/v1/agent/reload", "")
	if r.Status != http.StatusOK || string(r.Body) != "{\"config_generation\":5}\n" {
		t.Errorf("status %d: %s", r.Status, r.Body)
	}
	fail = &svcgate.Error{Code: svcgate.CodeInvalidRequest, Message: "config line 3: unknown key", Err: errors.New("yaml")}
	p := post(f, t, "/v1/agent/reload", "").wantProblem(t, http.StatusBadRequest, svcgate.CodeInvalidRequest)
	if p.Detail != "config line 3: unknown key" {
		t.Errorf("detail %q", p.Detail)
	}
	fail = errors.New("open /etc/svcgate/secret.yaml: permission denied")
	r = post(f, t, "/v1/agent/reload", "")
	r.wantProblem(t, http.StatusInternalServerError, svcgate.CodeInternal)
	var raw map[string]any
	_ = json.Unmarshal(r.Body, &raw)
	if d, _ := raw["detail"].(string); d == "" || strings.Contains(d, "secret") {
		t.Errorf("detail %q", d)
	}

	f.Authz.AuthorizeFunc = denyUnless("read@")
	post(f, t, "/v1/agent/reload", "").wantProblem(t, http.StatusForbidden, svcgate.CodeForbidden)
}
