package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/control"
	"github.com/svcgate/svcgate/internal/httpapi"
)

func TestBatch(t *testing.T) {
	f := newFixture(t)
	f.Authz.AuthorizeFunc = func(p svcgate.Principal, perm svcgate.Permission, service string) error {
		if service == "secret" {
			return svcgate.Errorf(svcgate.CodeForbidden, "no %s on secret", perm)
		}
		return nil
	}
	f.Control.ControlFunc = func(_ context.Context, name string, a svcgate.Action, o control.Options) (control.Result, error) {
		switch name {
		case "db":
			s := svc("db", svcgate.StateStopped)
			return control.Result{}, &svcgate.Error{Code: svcgate.CodeInvalidTransition, Message: "db is stopped", Service: &s}
		case "slow":
			return control.Result{Service: svc(name, svcgate.StateStartPending), Changed: true, Pending: true}, nil
		}
		return control.Result{Service: svc(name, a.Target()), Changed: true, Duration: 20 * time.Millisecond}, nil
	}
	f.start(t)

	r := post(f, t, "/v1/actions?wait=0", `{"items":[
		{"service_id":"web","action":"start"},
		{"service_id":"db","action":"pause"},
		{"service_id":"bad name","action":"start"},
		{"service_id":"web","action":"explode"},
		{"service_id":"secret","action":"stop"},
		{"service_id":"slow","action":"start"},
		{"service_id":"api","action":"restart"}
	]}`)
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	var b httpapi.BatchResult
	r.decode(t, &b)
	type row struct {
		ID     string
		Action svcgate.Action
		Status int
		Code   string
	}
	var got []row
	for _, it := range b.Results {
		code := ""
		if it.Problem != nil {
			code = it.Problem.Code
			if it.Problem.TraceID != r.Header.Get("X-Request-Id") {
				t.Errorf("%s: item trace_id %q", it.ServiceID, it.Problem.TraceID)
			}
		}
		got = append(got, row{it.ServiceID, it.Action, it.Status, code})
	}
	want := []row{
		{"web", "start", 200, ""},
		{"db", "pause", 409, svcgate.CodeInvalidTransition},
		{"bad name", "start", 400, svcgate.CodeInvalidName},
		{"web", "explode", 404, svcgate.CodeNotFound},
		{"secret", "stop", 403, svcgate.CodeForbidden},
		{"slow", "start", 202, ""},
		{"api", "restart", 200, ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results in request order (-want +got):\n%s", diff)
	}
	if b.Succeeded != 3 || b.Failed != 4 {
		t.Errorf("succeeded %d failed %d, want 3 and 4", b.Succeeded, b.Failed)
	}
	if b.Results[0].DurationMS != 20 || !b.Results[0].Changed || b.Results[0].Service.State != svcgate.StateRunning {
		t.Errorf("first result %+v", b.Results[0])
	}
	if s := b.Results[1].Service; s == nil || s.State != svcgate.StateStopped {
		t.Errorf("a failed item does not carry the service state from its error: %+v", s)
	}

	// Only valid, authorized items reached the controller, with wait=0.
	reached := map[string]bool{}
	for _, c := range f.Control.Calls() {
		reached[c.Name+" "+string(c.Action)] = true
		if c.Opts.Wait != 0 {
			t.Errorf("%s ran with wait %v, want 0", c.Name, c.Opts.Wait)
		}
	}
	if diff := cmp.Diff(map[string]bool{"web start": true, "db pause": true, "slow start": true, "api restart": true}, reached); diff != "" {
		t.Errorf("items that reached Control (-want +got):\n%s", diff)
	}
	// Each item was authorized with its own action and service.
	asked := map[string]bool{}
	for _, c := range f.Authz.Calls() {
		asked[string(c.Perm)+"@"+c.Service] = true
	}
	for _, want := range []string{"start@web", "pause@db", "stop@secret", "start@slow", "restart@api"} {
		if !asked[want] {
			t.Errorf("the authorizer was not asked for %s; asked %v", want, asked)
		}
	}
	if asked["start@bad name"] || asked["explode@web"] {
		t.Error("invalid items were authorized instead of rejected first")
	}
}

func TestBatchSingleForm(t *testing.T) {
	f := newFixture(t).start(t)
	r := post(f, t, "/v1/actions?dry_run=true", `{"service_id":"web","action":"stop"}`)
	var b httpapi.BatchResult
	r.decode(t, &b)
	if r.Status != 200 || len(b.Results) != 1 || b.Results[0].ServiceID != "web" || b.Succeeded != 1 {
		t.Fatalf("status %d body %s", r.Status, r.Body)
	}
	if c := f.Control.Calls(); len(c) != 1 || !c[0].Opts.DryRun || c[0].Opts.Wait != 30*time.Second {
		t.Errorf("calls %+v, want one dry run waiting 30s", c)
	}
}

func TestBatchRejectsBadBatches(t *testing.T) {
	items := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"items":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"service_id":"svc-%d","action":"start"}`, i)
		}
		b.WriteString("]}")
		return b.String()
	}
	tests := []struct {
		name, query, body string
		status            int
		code              string
	}{
		{"both forms", "", `{"service_id":"web","action":"start","items":[{"service_id":"db","action":"stop"}]}`, 400, svcgate.CodeInvalidRequest},
		{"no items", "", `{"items":[]}`, 400, svcgate.CodeInvalidRequest},
		{"nothing", "", `{}`, 400, svcgate.CodeInvalidRequest},
		{"1001 items", "", items(1001), 400, svcgate.CodeInvalidRequest},
		{"unknown field in an item", "", `{"items":[{"service_id":"web","action":"start","force":true}]}`, 400, svcgate.CodeInvalidRequest},
		{"bad wait", "?wait=abc", items(1), 400, svcgate.CodeInvalidWait},
		{"not JSON", "", "service_id=web", 415, svcgate.CodeUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t).start(t)
			ct := ""
			if tt.code == svcgate.CodeUnsupportedMediaType {
				ct = "text/plain"
			}
			r := f.do(t, req{Method: http.MethodPost, Path: "/v1/actions" + tt.query, Body: tt.body, ContentType: ct})
			r.wantProblem(t, tt.status, tt.code)
			if n := len(f.Control.Calls()); n != 0 {
				t.Errorf("a rejected batch reached the controller %d times", n)
			}
		})
	}

	t.Run("1000 items are allowed and bounded in parallelism", func(t *testing.T) {
		f := newFixture(t)
		var running, peak atomic.Int64
		f.Control.ControlFunc = func(_ context.Context, name string, a svcgate.Action, _ control.Options) (control.Result, error) {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			running.Add(-1)
			return control.Result{Service: svc(name, a.Target()), Changed: true}, nil
		}
		f.start(t)
		r := post(f, t, "/v1/actions", items(1000))
		var b httpapi.BatchResult
		r.decode(t, &b)
		if r.Status != 200 || b.Succeeded != 1000 || b.Results[999].ServiceID != "svc-999" {
			t.Fatalf("status %d, succeeded %d", r.Status, b.Succeeded)
		}
		if p := peak.Load(); p > 64 || p < 2 {
			t.Errorf("peak parallelism %d, want 2..64", p)
		}
	})
}

func TestBatchItemErrorsAreProblems(t *testing.T) {
	// The item's error object is a full problem, decodable by clients.
	f := newFixture(t).start(t)
	r := post(f, t, "/v1/actions", `{"service_id":"-x","action":"start"}`)
	var raw struct {
		Results []map[string]json.RawMessage `json:"results"`
	}
	r.decode(t, &raw)
	var p httpapi.Problem
	if err := json.Unmarshal(raw.Results[0]["error"], &p); err != nil || p.Type != "urn:svcgate:problem:invalid_name" || p.Status != 400 || p.Title == "" {
		t.Errorf("item error %s: %v", raw.Results[0]["error"], err)
	}
}
