package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/control"
)

const demoSpec = `{"name":"demo","display_name":"Demo","binary_path":"/usr/local/bin/demo","args":["--port","9000"],
	"start_type":"manual","dependencies":["tcpip"],
	"recovery":{"actions":[{"type":"restart","delay":"5s"}],"reset_after":"24h"}}`

func TestCreate(t *testing.T) {
	f := newFixture(t)
	var got svcgate.ServiceSpec
	create := f.Configure.CreateFunc
	f.Configure.CreateFunc = func(ctx context.Context, spec svcgate.ServiceSpec, dryRun bool) (control.Result, error) {
		got = spec
		return create(ctx, spec, dryRun)
	}
	f.start(t)

	r := post(f, t, "/v1/services", demoSpec)
	if r.Status != http.StatusCreated || r.Header.Get("Location") != "/v1/services/demo" {
		t.Fatalf("status %d, Location %q: %s", r.Status, r.Header.Get("Location"), r.Body)
	}
	want := svcgate.ServiceSpec{Name: "demo", DisplayName: "Demo", BinaryPath: "/usr/local/bin/demo",
		Args: []string{"--port", "9000"}, StartType: svcgate.StartManual, Dependencies: []string{"tcpip"},
		Recovery: &svcgate.Recovery{Actions: []svcgate.RecoveryAction{{Type: "restart", Delay: svcgate.Duration(5 * time.Second)}},
			ResetAfter: svcgate.Duration(24 * time.Hour)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
	var b resultJSON
	r.decode(t, &b)
	if b.Service == nil || b.Service.Name != "demo" || !b.Changed {
		t.Errorf("body %s", r.Body)
	}

	r = post(f, t, "/v1/services?dry_run=true", demoSpec)
	r.decode(t, &b)
	if r.Status != http.StatusOK || !b.DryRun || len(b.Plan) != 1 || r.Header.Get("Location") != "" {
		t.Errorf("dry run: status %d, body %s", r.Status, r.Body)
	}
}

func TestCreateRejects(t *testing.T) {
	tests := []struct {
		name, body, contentType string
		status                  int
		code                    string
	}{
		{"an invalid name", `{"name":"../x","binary_path":"/bin/x"}`, "", 400, svcgate.CodeInvalidName},
		{"an invalid dependency", `{"name":"x","binary_path":"/bin/x","dependencies":["a b"]}`, "", 400, svcgate.CodeInvalidName},
		{"no binary path", `{"name":"x"}`, "", 400, svcgate.CodeInvalidRequest},
		{"an unknown start type", `{"name":"x","binary_path":"/bin/x","start_type":"sometimes"}`, "", 400, svcgate.CodeInvalidRequest},
		{"a bad duration", `{"name":"x","binary_path":"/bin/x","recovery":{"actions":[],"reset_after":"soon"}}`, "", 400, svcgate.CodeInvalidRequest},
		{"an unknown field", `{"name":"x","binary_path":"/bin/x","user":"root"}`, "", 400, svcgate.CodeInvalidRequest},
		{"YAML", "name: x\n", "application/yaml", 415, svcgate.CodeUnsupportedMediaType},
		{"a denied name", `{"name":"secret","binary_path":"/bin/x"}`, "", 403, svcgate.CodeForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.Authz.AuthorizeFunc = func(_ svcgate.Principal, perm svcgate.Permission, service string) error {
				if perm != svcgate.PermCreate || service == "secret" {
					return svcgate.Errorf(svcgate.CodeForbidden, "no")
				}
				return nil
			}
			f.start(t)
			r := f.do(t, req{Method: http.MethodPost, Path: "/v1/services", Body: tt.body, ContentType: tt.contentType})
			r.wantProblem(t, tt.status, tt.code)
			if f.Configure.Calls() != 0 {
				t.Error("a rejected create reached the configurer")
			}
		})
	}
}

func TestCreateConflictAndUnsupported(t *testing.T) {
	f := newFixture(t)
	f.Configure.CreateFunc = func(context.Context, svcgate.ServiceSpec, bool) (control.Result, error) {
		return control.Result{}, svcgate.Errorf(svcgate.CodeConflict, "demo exists")
	}
	f.start(t)
	post(f, t, "/v1/services", demoSpec).wantProblem(t, http.StatusConflict, svcgate.CodeConflict)

	f = newFixture(t)
	f.Opts.Configure = nil
	f.start(t)
	post(f, t, "/v1/services", demoSpec).wantProblem(t, http.StatusUnprocessableEntity, svcgate.CodeUnsupportedAction)
	f.do(t, req{Method: http.MethodPatch, Path: "/v1/services/web", Body: `{}`}).wantProblem(t, http.StatusUnprocessableEntity, svcgate.CodeUnsupportedAction)
	f.do(t, req{Method: http.MethodDelete, Path: "/v1/services/web"}).wantProblem(t, http.StatusUnprocessableEntity, svcgate.CodeUnsupportedAction)
}

func TestUpdate(t *testing.T) {
	f := newFixture(t)
	var got svcgate.ServiceUpdate
	var gotDry bool
	f.Configure.UpdateFunc = func(_ context.Context, name string, u svcgate.ServiceUpdate, dryRun bool) (control.Result, error) {
		got, gotDry = u, dryRun
		if dryRun {
			return control.Result{Service: svc(name, svcgate.StateRunning), DryRun: true,
				Plan: []control.Step{{Service: name, Action: "update", Changes: []string{"start_type"}}}}, nil
		}
		return control.Result{Service: svc(name, svcgate.StateRunning), Changed: true}, nil
	}
	f.start(t)

	for _, ct := range []string{"application/json", "application/merge-patch+json", "application/json; charset=utf-8"} {
		r := f.do(t, req{Method: http.MethodPatch, Path: "/v1/services/web", ContentType: ct,
			Body: `{"start_type":"disabled","description":null}`})
		if r.Status != http.StatusOK {
			t.Fatalf("%s: status %d: %s", ct, r.Status, r.Body)
		}
		if got.StartType == nil || *got.StartType != svcgate.StartDisabled || got.Description != nil {
			t.Errorf("%s: update %+v", ct, got)
		}
	}
	r := f.do(t, req{Method: http.MethodPatch, Path: "/v1/services/web?dry_run=true", Body: `{"start_type":"auto"}`})
	var b resultJSON
	r.decode(t, &b)
	if !gotDry || !b.DryRun || b.Plan[0].Changes[0] != "start_type" {
		t.Errorf("dry run: %s", r.Body)
	}

	for _, bad := range []struct {
		body, ct string
		status   int
		code     string
	}{
		{`{"start_type":"sometimes"}`, "", 400, svcgate.CodeInvalidRequest},
		{`{"start_type":""}`, "", 400, svcgate.CodeInvalidRequest},
		{`{"dependencies":["ok","-bad"]}`, "", 400, svcgate.CodeInvalidName},
		{`{"name":"renamed"}`, "", 400, svcgate.CodeInvalidRequest},
		{`[{"op":"replace","path":"/description","value":"x"}]`, "application/json-patch+json", 415, svcgate.CodeUnsupportedMediaType},
		{`{"description":"x"}`, "text/plain", 415, svcgate.CodeUnsupportedMediaType},
	} {
		before := f.Configure.Calls()
		r := f.do(t, req{Method: http.MethodPatch, Path: "/v1/services/web", Body: bad.body, ContentType: bad.ct})
		r.wantProblem(t, bad.status, bad.code)
		if f.Configure.Calls() != before {
			t.Errorf("%s reached the configurer", bad.body)
		}
	}
}

func TestDelete(t *testing.T) {
	f := newFixture(t)
	type call struct {
		Name         string
		Stop, DryRun bool
	}
	var calls []call
	f.Configure.DeleteFunc = func(_ context.Context, name string, stop, dryRun bool) (control.Result, error) {
		calls = append(calls, call{name, stop, dryRun})
		switch {
		case name == "busy":
			return control.Result{}, svcgate.Errorf(svcgate.CodeConflict, "busy is running; delete with stop=true")
		case dryRun:
			return control.Result{DryRun: true, Plan: []control.Step{{Service: name, Action: "delete"}}}, nil
		}
		return control.Result{Changed: true, Stopped: []string{"dependent"}}, nil
	}
	f.start(t)

	r := f.do(t, req{Method: http.MethodDelete, Path: "/v1/services/web?stop=true"})
	var b resultJSON
	r.decode(t, &b)
	if r.Status != http.StatusOK || b.Deleted != "web" || b.Stopped[0] != "dependent" || b.Service != nil {
		t.Errorf("status %d: %s", r.Status, r.Body)
	}
	r = f.do(t, req{Method: http.MethodDelete, Path: "/v1/services/web?dry_run=true"})
	b = resultJSON{}
	r.decode(t, &b)
	if r.Status != http.StatusOK || b.Deleted != "" || !b.DryRun || b.Plan[0].Action != "delete" {
		t.Errorf("dry run: status %d: %s", r.Status, r.Body)
	}
	f.do(t, req{Method: http.MethodDelete, Path: "/v1/services/busy"}).wantProblem(t, http.StatusConflict, svcgate.CodeConflict)
	p := f.do(t, req{Method: http.MethodDelete, Path: "/v1/services/web?stop=yes"}).wantProblem(t, http.StatusBadRequest, svcgate.CodeInvalidRequest)
	if !strings.Contains(p.Detail, "stop") {
		t.Errorf("detail %q", p.Detail)
	}
	want := []call{{"web", true, false}, {"web", false, true}, {"busy", false, false}}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("Delete calls (-want +got):\n%s", diff)
	}
}
