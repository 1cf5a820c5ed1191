package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/control"
)

// resultJSON is the success body of the mutation routes, as a client
// reads it.
type resultJSON struct {
	Service    *svcgate.Service `json:"service"`
	Changed    bool             `json:"changed"`
	DurationMS int64            `json:"duration_ms"`
	Stopped    []string         `json:"stopped"`
	DryRun     bool             `json:"dry_run"`
	Plan       []control.Step   `json:"plan"`
	Deleted    string           `json:"deleted"`
}

func TestAction(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		body     string
		result   control.Result
		wantOpts control.Options
		status   int
		check    func(t *testing.T, b resultJSON)
	}{
		{
			name:     "start waits 30s by default",
			path:     "/v1/services/web/start",
			result:   control.Result{Service: svc("web", svcgate.StateRunning), Changed: true, Duration: 1500 * time.Millisecond},
			wantOpts: control.Options{Wait: 30 * time.Second},
			status:   http.StatusOK,
			check: func(t *testing.T, b resultJSON) {
				if !b.Changed || b.DurationMS != 1500 || b.Service.State != svcgate.StateRunning {
					t.Errorf("body %+v", b)
				}
			},
		},
		{
			name:     "start on a running service is a success without change",
			path:     "/v1/services/web/start?wait=2m",
			result:   control.Result{Service: svc("web", svcgate.StateRunning)},
			wantOpts: control.Options{Wait: 2 * time.Minute},
			status:   http.StatusOK,
			check: func(t *testing.T, b resultJSON) {
				if b.Changed {
					t.Error("changed is true")
				}
			},
		},
		{
			name:     "wait=0 answers 202 while the target is not reached",
			path:     "/v1/services/web/stop?wait=0",
			result:   control.Result{Service: svc("web", svcgate.StateStopPending), Changed: true, Pending: true},
			wantOpts: control.Options{Wait: 0},
			status:   http.StatusAccepted,
			check: func(t *testing.T, b resultJSON) {
				if b.Service.State != svcgate.StateStopPending {
					t.Errorf("body %+v", b)
				}
			},
		},
		{
			name:     "wait=5m is the maximum",
			path:     "/v1/services/web/restart?wait=5m",
			result:   control.Result{Service: svc("web", svcgate.StateRunning), Changed: true},
			wantOpts: control.Options{Wait: 5 * time.Minute},
			status:   http.StatusOK,
		},
		{
			name: "dependents=stop stops dependents first and names them",
			path: "/v1/services/db/stop?dependents=stop",
			result: control.Result{Service: svc("db", svcgate.StateStopped), Changed: true,
				Stopped: []string{"web", "api"}},
			wantOpts: control.Options{Wait: 30 * time.Second, StopDependents: true},
			status:   http.StatusOK,
			check: func(t *testing.T, b resultJSON) {
				if diff := cmp.Diff([]string{"web", "api"}, b.Stopped); diff != "" {
					t.Errorf("stopped (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "dry run answers the plan",
			path: "/v1/services/db/stop?dry_run=true&dependents=stop",
			result: control.Result{Service: svc("db", svcgate.StateRunning), DryRun: true, Plan: []control.Step{
				{Service: "web", Action: "stop", From: svcgate.StateRunning, To: svcgate.StateStopped},
				{Service: "db", Action: "stop", From: svcgate.StateRunning, To: svcgate.StateStopped},
			}},
			wantOpts: control.Options{Wait: 30 * time.Second, DryRun: true, StopDependents: true},
			status:   http.StatusOK,
			check: func(t *testing.T, b resultJSON) {
				if !b.DryRun || len(b.Plan) != 2 || b.Plan[0].Service != "web" || b.Service.Name != "db" {
					t.Errorf("body %+v", b)
				}
			},
		},
		{
			name:     "a dry run with nothing to do has an empty plan",
			path:     "/v1/services/web/start?dry_run=true",
			result:   control.Result{Service: svc("web", svcgate.StateRunning), DryRun: true},
			wantOpts: control.Options{Wait: 30 * time.Second, DryRun: true},
			status:   http.StatusOK,
			check: func(t *testing.T, b resultJSON) {
				if !b.DryRun || b.Plan == nil || len(b.Plan) != 0 {
					t.Errorf("plan %#v", b.Plan)
				}
			},
		},
		{
			name:     "start passes args",
			path:     "/v1/services/web/start",
			body:     `{"args":["--port","9000"]}`,
			result:   control.Result{Service: svc("web", svcgate.StateRunning), Changed: true},
			wantOpts: control.Options{Wait: 30 * time.Second, Args: []string{"--port", "9000"}},
			status:   http.StatusOK,
		},
		{
			name:     "an empty JSON body is fine",
			path:     "/v1/services/web/stop",
			body:     `{}`,
			result:   control.Result{Service: svc("web", svcgate.StateStopped), Changed: true},
			wantOpts: control.Options{Wait: 30 * time.Second},
			status:   http.StatusOK,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.Control.ControlFunc = func(context.Context, string, svcgate.Action, control.Options) (control.Result, error) {
				return tt.result, nil
			}
			f.start(t)
			r := post(f, t, tt.path, tt.body)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			calls := f.Control.Calls()
			if len(calls) != 1 {
				t.Fatalf("%d calls to Control", len(calls))
			}
			if diff := cmp.Diff(tt.wantOpts, calls[0].Opts); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
			segs := strings.Split(strings.SplitN(tt.path, "?", 2)[0], "/")
			if calls[0].Name != segs[3] || string(calls[0].Action) != segs[4] {
				t.Errorf("Control(%q, %q)", calls[0].Name, calls[0].Action)
			}
			var b resultJSON
			r.decode(t, &b)
			if tt.check != nil {
				tt.check(t, b)
			}
		})
	}
}

func TestActionRejectsBadInput(t *testing.T) {
	tests := []struct {
		name        string
		path        string
		body        string
		contentType string
		status      int
		code        string
		detail      string
	}{
		{"wait is not a duration", "/v1/services/web/start?wait=abc", "", "", 400, svcgate.CodeInvalidWait, "abc"},
		{"wait is negative", "/v1/services/web/start?wait=-1s", "", "", 400, svcgate.CodeInvalidWait, "negative"},
		{"wait is over 5m", "/v1/services/web/start?wait=6m", "", "", 400, svcgate.CodeInvalidWait, "maximum"},
		{"wait has no unit", "/v1/services/web/start?wait=30", "", "", 400, svcgate.CodeInvalidWait, ""},
		{"dry_run is not a boolean", "/v1/services/web/start?dry_run=yes", "", "", 400, svcgate.CodeInvalidRequest, "dry_run"},
		{"dependents is not stop", "/v1/services/web/stop?dependents=ignore", "", "", 400, svcgate.CodeInvalidRequest, "dependents"},
		{"unknown action", "/v1/services/web/explode", "", "", 404, svcgate.CodeNotFound, "explode"},
		{"args on stop", "/v1/services/web/stop", `{"args":["x"]}`, "", 400, svcgate.CodeInvalidRequest, "start"},
		{"unknown field", "/v1/services/web/start", `{"args":[],"foo":1}`, "", 400, svcgate.CodeInvalidRequest, `unknown field "foo"`},
		{"trailing data", "/v1/services/web/start", `{"args":[]} {"args":["x"]}`, "", 400, svcgate.CodeInvalidRequest, "after the JSON value"},
		{"malformed JSON", "/v1/services/web/start", `{"args":`, "", 400, svcgate.CodeInvalidRequest, ""},
		{"args of the wrong type", "/v1/services/web/start", `{"args":"--port"}`, "", 400, svcgate.CodeInvalidRequest, `"args"`},
		{"a body that is not JSON", "/v1/services/web/start", `args=x`, "application/x-www-form-urlencoded", 415, svcgate.CodeUnsupportedMediaType, ""},
		{"a body without Content-Type", "/v1/services/web/start", `{"args":[]}`, "-", 415, svcgate.CodeUnsupportedMediaType, ""},
		{"a 2 MB body", "/v1/services/web/start", `{"args":["` + strings.Repeat("x", 2<<20) + `"]}`, "", 413, svcgate.CodeBodyTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t).start(t)
			r := f.do(t, req{Method: http.MethodPost, Path: tt.path, Body: tt.body, ContentType: tt.contentType})
			p := r.wantProblem(t, tt.status, tt.code)
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q does not mention %q", p.Detail, tt.detail)
			}
			if n := len(f.Control.Calls()); n != 0 {
				t.Errorf("bad input reached the controller %d times", n)
			}
		})
	}
}

// TestActionErrors maps each error the controller can report to its
// status, with the service's state, dependents and OS error in the body.
func TestActionErrors(t *testing.T) {
	failed := svc("web", svcgate.StateFailed)
	pending := svc("web", svcgate.StateStartPending)
	tests := []struct {
		err    error
		status int
		check  func(t *testing.T, body string, p problemFields)
	}{
		{svcgate.Errorf(svcgate.CodeServiceNotFound, "no service web"), 404, nil},
		{svcgate.Errorf(svcgate.CodeInvalidTransition, "web is stopped; it cannot pause"), 409, nil},
		{&svcgate.Error{Code: svcgate.CodeStartFailed, Message: "web exited with 1", Service: &failed}, 409,
			func(t *testing.T, _ string, p problemFields) {
				if p.Service == nil || p.Service.State != svcgate.StateFailed {
					t.Errorf("service %+v, want the failed state", p.Service)
				}
			}},
		{svcgate.Errorf(svcgate.CodeConflict, "web is being deleted"), 409, nil},
		{&svcgate.Error{Code: svcgate.CodeDependentsRunning, Message: "api depends on web", Dependents: []string{"api", "worker"}}, 409,
			func(t *testing.T, _ string, p problemFields) {
				if diff := cmp.Diff([]string{"api", "worker"}, p.Dependents); diff != "" {
					t.Errorf("dependents (-want +got):\n%s", diff)
				}
			}},
		{svcgate.Errorf(svcgate.CodeUnsupportedAction, "web does not accept pause"), 422, nil},
		{svcgate.Errorf(svcgate.CodeProtectedService, "sshd is protected; it needs break_glass"), 403, nil},
		{svcgate.Errorf(svcgate.CodeRateLimited, "slow down"), 429, nil},
		{svcgate.Errorf(svcgate.CodeAuditUnavailable, "the audit log cannot be written"), 503, nil},
		{&svcgate.Error{Code: svcgate.CodeTimeout, Message: "web did not reach running within 30s", Service: &pending}, 504,
			func(t *testing.T, _ string, p problemFields) {
				if p.Service == nil || p.Service.State != svcgate.StateStartPending || p.Service.Accepts == nil {
					t.Errorf("service %+v, want the normalized current state", p.Service)
				}
			}},
		{&svcgate.Error{Code: svcgate.CodeBackendError, Message: "StartService failed", OSError: "1053"}, 500,
			func(t *testing.T, _ string, p problemFields) {
				if p.OSError != "1053" {
					t.Errorf("os_error %q", p.OSError)
				}
			}},
		{errors.New("write /var/lib/svcgate/secret: no space left"), 500,
			func(t *testing.T, body string, p problemFields) {
				if p.Code != svcgate.CodeInternal || strings.Contains(body, "secret") {
					t.Errorf("an internal error leaks: %s", body)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(svcgate.ErrorCode(tt.err), func(t *testing.T) {
			f := newFixture(t)
			f.Control.ControlFunc = func(context.Context, string, svcgate.Action, control.Options) (control.Result, error) {
				return control.Result{}, tt.err
			}
			f.start(t)
			r := post(f, t, "/v1/services/web/start", "")
			p := r.wantProblem(t, tt.status, svcgate.ErrorCode(tt.err))
			if tt.status == http.StatusTooManyRequests && r.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			if tt.status < 500 && p.Detail != svcgate.ErrorMessage(tt.err) {
				t.Errorf("detail %q, want the error's message", p.Detail)
			}
			if tt.check != nil {
				tt.check(t, string(r.Body), problemFields{p.Code, p.Service, p.Dependents, p.OSError})
			}
		})
	}
}

type problemFields struct {
	Code       string
	Service    *svcgate.Service
	Dependents []string
	OSError    string
}

func TestActionAuthorization(t *testing.T) {
	f := newFixture(t)
	f.Authz.AuthorizeFunc = denyUnless("start@web", "read@web")
	f.start(t)
	if r := post(f, t, "/v1/services/web/start", ""); r.Status != http.StatusOK {
		t.Errorf("start web: %d %s", r.Status, r.Body)
	}
	post(f, t, "/v1/services/web/stop", "").wantProblem(t, http.StatusForbidden, svcgate.CodeForbidden)
	post(f, t, "/v1/services/db/start", "").wantProblem(t, http.StatusForbidden, svcgate.CodeForbidden)
	if calls := f.Control.Calls(); len(calls) != 1 || calls[0].Action != svcgate.ActionStart {
		t.Errorf("Control calls %+v, want only the allowed start", calls)
	}
	// The permission of an action route is the action.
	var perms []string
	for _, c := range f.Authz.Calls() {
		perms = append(perms, string(c.Perm)+"@"+c.Service)
	}
	if diff := cmp.Diff([]string{"start@web", "stop@web", "start@db"}, perms); diff != "" {
		t.Errorf("authorizer asked (-want +got):\n%s", diff)
	}
}
