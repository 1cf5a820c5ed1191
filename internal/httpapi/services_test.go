package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/httpapi"
)

func names(l httpapi.ServiceList) []string {
	var out []string
	for _, s := range l.Services {
		out = append(out, s.Name)
	}
	return out
}

func TestListServices(t *testing.T) {
	f := newFixture(t)
	list := []svcgate.Service{
		svc("api", svcgate.StateRunning),
		svc("db", svcgate.StateStopped),
		svc("web-1", svcgate.StateRunning),
		svc("web-2", svcgate.StateFailed),
	}
	list[0].StartType = svcgate.StartAuto
	list[2].StartType = svcgate.StartAuto
	f.Services.ServicesFunc = func() (uint64, []svcgate.Service) { return 7, list }
	f.start(t)

	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"api", "db", "web-1", "web-2"}},
		{"?state=running", []string{"api", "web-1"}},
		{"?state=running,failed", []string{"api", "web-1", "web-2"}},
		{"?name=web-*", []string{"web-1", "web-2"}},
		{"?name=web-%5B2-9%5D", []string{"web-2"}},
		{"?start_type=auto", []string{"api", "web-1"}},
		{"?start_type=manual,disabled&state=failed", []string{"web-2"}},
		{"?name=web-*&state=running&start_type=auto", []string{"web-1"}},
		{"?name=nothing", nil},
	}
	for _, tt := range tests {
		t.Run("list"+tt.query, func(t *testing.T) {
			r := get(f, t, "/v1/services"+tt.query)
			if r.Status != http.StatusOK {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			var l httpapi.ServiceList
			r.decode(t, &l)
			if diff := cmp.Diff(tt.want, names(l)); diff != "" || l.Generation != 7 {
				t.Errorf("generation %d, names (-want +got):\n%s", l.Generation, diff)
			}
			if !bytes.Contains(r.Body, []byte(`"services":[`)) {
				t.Errorf("services is not an array: %s", r.Body)
			}
		})
	}
	// The backend left Accepts and Dependencies nil; clients get arrays.
	r := get(f, t, "/v1/services")
	if !bytes.Contains(r.Body, []byte(`"accepts":[]`)) || bytes.Contains(r.Body, []byte("null")) {
		t.Errorf("nil lists are not normalized: %s", r.Body)
	}
	if list[0].Accepts != nil {
		t.Error("the handler modified the cache's shared slice")
	}
}

func TestListServicesRejectsBadFilters(t *testing.T) {
	f := newFixture(t).start(t)
	for _, q := range []string{
		"state=runing",
		"state=running,",
		"state=",
		"start_type=sometimes",
		"name=%5B",    // "[": unterminated class
		"name=web%5C", // trailing backslash
		"name=",
		"limit=10",
	} {
		t.Run(q, func(t *testing.T) {
			p := get(f, t, "/v1/services?"+q).wantProblem(t, http.StatusBadRequest, svcgate.CodeInvalidRequest)
			if p.Detail == "" {
				t.Error("the problem does not say what is wrong")
			}
		})
	}
}

// TestListServicesEncodesOncePerGeneration shows the cache at work: while
// the generation stays, the bytes of the first encoding are served even
// when the fake (breaking the Services contract on purpose) hands out a
// different list; a new generation is encoded anew.
func TestListServicesEncodesOncePerGeneration(t *testing.T) {
	f := newFixture(t)
	var gen atomic.Uint64
	var calls atomic.Int64
	gen.Store(1)
	f.Services.ServicesFunc = func() (uint64, []svcgate.Service) {
		n := calls.Add(1)
		return gen.Load(), []svcgate.Service{svc(fmt.Sprintf("svc-%d", n), svcgate.StateRunning)}
	}
	f.start(t)

	first := get(f, t, "/v1/services")
	second := get(f, t, "/v1/services")
	if !bytes.Equal(first.Body, second.Body) || !bytes.Contains(first.Body, []byte(`"svc-1"`)) {
		t.Errorf("same generation, different bodies:\n%s\n%s", first.Body, second.Body)
	}
	gen.Store(2)
	third := get(f, t, "/v1/services")
	if !bytes.Contains(third.Body, []byte(`"svc-3"`)) || !bytes.Contains(third.Body, []byte(`"generation":2`)) {
		t.Errorf("a new generation served the old body: %s", third.Body)
	}
	// Filtered requests are encoded per request, from the current list.
	filtered := get(f, t, "/v1/services?name=svc-*")
	if !bytes.Contains(filtered.Body, []byte(`"svc-4"`)) {
		t.Errorf("filtered list: %s", filtered.Body)
	}
}

func TestGetService(t *testing.T) {
	f := newFixture(t).start(t)
	r := get(f, t, "/v1/services/web")
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	var s svcgate.Service
	r.decode(t, &s)
	if want := svc("web", svcgate.StateRunning); s.Name != want.Name || s.State != want.State || !s.Since.Equal(since) {
		t.Errorf("service = %+v", s)
	}
	get(f, t, "/v1/services/nope").wantProblem(t, http.StatusNotFound, svcgate.CodeServiceNotFound)
}

func TestInvalidNamesNeverReachAnything(t *testing.T) {
	f := newFixture(t)
	var gets atomic.Int64
	get0 := f.Backend.GetFunc
	f.Backend.GetFunc = func(ctx context.Context, name string) (svcgate.Service, error) {
		gets.Add(1)
		return get0(ctx, name)
	}
	f.start(t)
	for _, bad := range badNames {
		t.Run(bad.what, func(t *testing.T) {
			for _, rq := range []req{
				{Method: http.MethodGet, Path: "/v1/services/" + bad.path},
				{Method: http.MethodPost, Path: "/v1/services/" + bad.path + "/stop"},
				{Method: http.MethodPatch, Path: "/v1/services/" + bad.path, Body: `{"description":"x"}`},
				{Method: http.MethodDelete, Path: "/v1/services/" + bad.path},
			} {
				f.do(t, rq).wantProblem(t, http.StatusBadRequest, svcgate.CodeInvalidName)
			}
		})
	}
	if n := gets.Load() + int64(len(f.Control.Calls())+f.Configure.Calls()+len(f.Authz.Calls())); n != 0 {
		t.Errorf("%d calls reached the backend, controller, configurer or authorizer with an invalid name", n)
	}
}

func TestBackendErrors(t *testing.T) {
	f := newFixture(t)
	f.Backend.GetFunc = func(_ context.Context, name string) (svcgate.Service, error) {
		switch name {
		case "oserr":
			return svcgate.Service{}, &svcgate.Error{Code: svcgate.CodeBackendError, Message: "the service manager failed",
				OSError: "ERROR_SERVICE_DATABASE_LOCKED (1055)", Err: errors.New("OpenService C:\\secret: 1055")}
		case "plain":
			return svcgate.Service{}, fmt.Errorf("dial unix /run/secret.sock: %w", errors.New("connection refused"))
		case "odd":
			return svcgate.Service{}, svcgate.Errorf("made_up_code", "odd /secret")
		}
		return svcgate.Service{}, nil
	}
	f.start(t)

	r := get(f, t, "/v1/services/oserr")
	p := r.wantProblem(t, http.StatusInternalServerError, svcgate.CodeBackendError)
	if p.OSError != "ERROR_SERVICE_DATABASE_LOCKED (1055)" || strings.Contains(string(r.Body), "secret") {
		t.Errorf("os_error %q; body %s", p.OSError, r.Body)
	}

	for _, name := range []string{"plain", "odd"} {
		r := get(f, t, "/v1/services/"+name)
		p := r.wantProblem(t, http.StatusInternalServerError, svcgate.CodeInternal)
		if strings.Contains(string(r.Body), "secret") {
			t.Errorf("the internal error leaked: %s", r.Body)
		}
		var logged bool
		for _, l := range f.Logs.lines(t) {
			if l["trace_id"] == p.TraceID && l["level"] == "ERROR" && strings.Contains(fmt.Sprint(l["error"]), "secret") {
				logged = true
			}
		}
		if !logged {
			t.Errorf("%s: the full error is not logged under trace id %s", name, p.TraceID)
		}
	}
}

func BenchmarkListServices(b *testing.B) {
	f := newFixture(b)
	list := make([]svcgate.Service, 300)
	for i := range list {
		list[i] = svc(fmt.Sprintf("svc-%03d", i), svcgate.StateRunning)
	}
	f.Services.ServicesFunc = func() (uint64, []svcgate.Service) { return 1, list }
	f.Opts.Logger = nil
	h := httpapi.NewHandler(f.Opts)
	r := httptest.NewRequest(http.MethodGet, "/v1/services", nil)
	r.Header.Set("Authorization", "Bearer "+adminToken)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
