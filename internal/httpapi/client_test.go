package httpapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/control"
	"github.com/svcgate/svcgate/internal/httpapi"
)

func TestClientBackend(t *testing.T) {
	f := newFixture(t).start(t)
	c := f.client(adminToken)
	ctx := context.Background()

	if c.Name() != "remote" {
		t.Errorf("Name before any call = %q, want remote", c.Name())
	}
	list, err := c.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "db" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if c.Name() != "supervisor" {
		t.Errorf("Name after a list = %q, want the remote backend's", c.Name())
	}
	s, err := c.Get(ctx, "web")
	if err != nil || s.State != svcgate.StateRunning || !s.Since.Equal(since) {
		t.Errorf("Get = %+v, %v", s, err)
	}

	res, err := c.Control(ctx, "web", svcgate.ActionStart, svcgate.ControlOptions{Args: []string{"-v"}})
	if err != nil || !res.Changed {
		t.Errorf("Control = %+v, %v", res, err)
	}
	calls := f.Control.Calls()
	if want := (control.Options{Wait: 0, Args: []string{"-v"}}); cmp.Diff(want, calls[0].Opts) != "" {
		t.Errorf("Control sent %+v, want no wait", calls[0].Opts)
	}
}

func TestClientListFiltered(t *testing.T) {
	f := newFixture(t).start(t)
	c := f.client(viewerToken)
	l, err := c.ListFiltered(context.Background(), httpapi.Filter{States: []svcgate.State{svcgate.StateRunning}, Name: "w*"})
	if err != nil || len(l.Services) != 1 || l.Services[0].Name != "web" || l.Generation != 1 {
		t.Errorf("ListFiltered = %+v, %v", l, err)
	}
	_, err = c.ListFiltered(context.Background(), httpapi.Filter{States: []svcgate.State{"up"}})
	if !svcgate.IsCode(err, svcgate.CodeInvalidRequest) {
		t.Errorf("a bad filter: %v", err)
	}
}

func TestClientDo(t *testing.T) {
	f := newFixture(t)
	f.Control.ControlFunc = func(_ context.Context, name string, a svcgate.Action, o control.Options) (control.Result, error) {
		if o.DryRun {
			return control.Result{Service: svc(name, svcgate.StateRunning), DryRun: true,
				Plan: []control.Step{{Service: "web", Action: "stop", From: svcgate.StateRunning, To: svcgate.StateStopped}}}, nil
		}
		return control.Result{Service: svc(name, svcgate.StateStopPending), Changed: true, Pending: o.Wait == 0,
			Duration: 250 * time.Millisecond, Stopped: []string{"web"}}, nil
	}
	f.start(t)
	c := f.client(adminToken)
	ctx := context.Background()

	o := control.Options{Wait: 90 * time.Second, StopDependents: true}
	res, err := c.Do(ctx, "db", svcgate.ActionStop, o)
	want := control.Result{Service: normalized(svc("db", svcgate.StateStopPending)), Changed: true,
		Duration: 250 * time.Millisecond, Stopped: []string{"web"}}
	if err != nil || cmp.Diff(want, res) != "" {
		t.Errorf("Do = %v; (-want +got):\n%s", err, cmp.Diff(want, res))
	}
	if got := f.Control.Calls()[0].Opts; cmp.Diff(o, got) != "" {
		t.Errorf("sent %+v, want %+v", got, o)
	}

	res, err = c.Do(ctx, "db", svcgate.ActionStop, control.Options{})
	if err != nil || !res.Pending {
		t.Errorf("wait=0: %+v, %v; want Pending from the 202", res, err)
	}
	res, err = c.Do(ctx, "db", svcgate.ActionStop, control.Options{Wait: time.Minute, DryRun: true})
	if err != nil || !res.DryRun || len(res.Plan) != 1 || res.Plan[0].To != svcgate.StateStopped {
		t.Errorf("dry run: %+v, %v", res, err)
	}
}

func normalized(s svcgate.Service) svcgate.Service {
	s.Accepts, s.Dependencies = []svcgate.Accept{}, []string{}
	return s
}

func TestClientBatchAndConfigure(t *testing.T) {
	f := newFixture(t).start(t)
	c := f.client(adminToken)
	ctx := context.Background()

	b, err := c.Batch(ctx, []httpapi.BatchItem{{ServiceID: "web", Action: "stop"}, {ServiceID: "..", Action: "stop"}},
		control.Options{Wait: time.Second})
	if err != nil || b.Succeeded != 1 || b.Failed != 1 {
		t.Fatalf("Batch = %+v, %v", b, err)
	}
	if b.Results[0].Err() != nil || !svcgate.IsCode(b.Results[1].Err(), svcgate.CodeInvalidName) {
		t.Errorf("item errors %v, %v", b.Results[0].Err(), b.Results[1].Err())
	}

	spec := svcgate.ServiceSpec{Name: "demo", BinaryPath: "/bin/demo"}
	if res, err := c.Create(ctx, spec, false); err != nil || res.Service.Name != "demo" {
		t.Errorf("Create = %+v, %v", res, err)
	}
	if res, err := c.Create(ctx, spec, true); err != nil || !res.DryRun {
		t.Errorf("Create dry run = %+v, %v", res, err)
	}
	desc := "new"
	if res, err := c.Update(ctx, "web", svcgate.ServiceUpdate{Description: &desc}, false); err != nil || !res.Changed {
		t.Errorf("Update = %+v, %v", res, err)
	}
	if res, err := c.Delete(ctx, "web", true, false); err != nil || !res.Changed {
		t.Errorf("Delete = %+v, %v", res, err)
	}
	info, err := c.Agent(ctx)
	if err != nil || info.Version != "1.2.3" || info.ConfigGeneration != 4 {
		t.Errorf("Agent = %+v, %v", info, err)
	}
}

// TestClientErrors checks that every problem comes back as the
// *svcgate.Error it started as.
func TestClientErrors(t *testing.T) {
	pending := svc("web", svcgate.StateStartPending)
	errs := []*svcgate.Error{
		{Code: svcgate.CodeServiceNotFound, Message: "no service web"},
		{Code: svcgate.CodeInvalidTransition, Message: "stopped"},
		{Code: svcgate.CodeStartFailed, Message: "exited", Service: &pending},
		{Code: svcgate.CodeDependentsRunning, Message: "api runs", Dependents: []string{"api"}},
		{Code: svcgate.CodeUnsupportedAction, Message: "no pause"},
		{Code: svcgate.CodeTimeout, Message: "not running in 1s", Service: &pending},
		{Code: svcgate.CodeBackendError, Message: "SCM failed", OSError: "1053"},
		{Code: svcgate.CodeProtectedService, Message: "protected"},
		{Code: svcgate.CodeAuditUnavailable, Message: "audit down"},
	}
	for _, want := range errs {
		t.Run(want.Code, func(t *testing.T) {
			f := newFixture(t)
			f.Control.ControlFunc = func(context.Context, string, svcgate.Action, control.Options) (control.Result, error) {
				return control.Result{}, want
			}
			f.start(t)
			_, err := f.client(adminToken).Do(context.Background(), "web", svcgate.ActionStart, control.Options{Wait: time.Second})
			var got *svcgate.Error
			if !errors.As(err, &got) {
				t.Fatalf("error %T %v, want *svcgate.Error", err, err)
			}
			w := *want
			if w.Service != nil {
				s := normalized(*w.Service)
				w.Service = &s
			}
			if diff := cmp.Diff(&w, got); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}

	f := newFixture(t).start(t)
	ctx := context.Background()
	if _, err := f.client("svcg_wrong").List(ctx); !svcgate.IsCode(err, svcgate.CodeUnauthenticated) {
		t.Errorf("wrong token: %v", err)
	}
	if _, err := f.client(adminToken).Get(ctx, "a b"); !svcgate.IsCode(err, svcgate.CodeInvalidName) {
		t.Errorf("invalid name: %v", err)
	}
	if _, err := f.client(adminToken).Get(ctx, "/"); !svcgate.IsCode(err, svcgate.CodeInvalidName) {
		t.Errorf("a slash: %v", err)
	}
	if _, err := f.client(adminToken).Do(ctx, "web", "explode", control.Options{}); !svcgate.IsCode(err, svcgate.CodeNotFound) {
		t.Errorf("unknown action: %v", err)
	}
}

// TestClientNonProblemErrors maps bare statuses, as a proxy would send
// them, through CodeOf.
func TestClientNonProblemErrors(t *testing.T) {
	for status, code := range map[int]string{
		http.StatusBadGateway:         svcgate.CodeBackendError,
		http.StatusServiceUnavailable: svcgate.CodeNotReady,
		http.StatusNotFound:           svcgate.CodeNotFound,
		http.StatusGatewayTimeout:     svcgate.CodeTimeout,
		http.StatusTeapot:             svcgate.CodeInvalidRequest,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "upstream trouble", status)
		}))
		_, err := httpapi.NewClient(srv.URL, "", nil).Get(context.Background(), "web")
		srv.Close()
		if !svcgate.IsCode(err, code) {
			t.Errorf("%d: %v, want %s", status, err, code)
		}
	}
}

// collect gathers what Events hands its callback.
type collect struct {
	mu     sync.Mutex
	events []svcgate.Event
	notify chan struct{}
}

func newCollect() *collect { return &collect{notify: make(chan struct{}, 1000)} }

func (c *collect) fn(e svcgate.Event) error {
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
	c.notify <- struct{}{}
	return nil
}

func (c *collect) seqs() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []uint64
	for _, e := range c.events {
		out = append(out, e.Seq)
	}
	return out
}

func (c *collect) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-c.notify:
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out; have %v", c.seqs())
		}
	}
}

// TestClientEventsReconnects drops the stream twice, once by the hub
// closing the channel and once by cutting the connection, and expects
// every event exactly once, in order.
func TestClientEventsReconnects(t *testing.T) {
	var history []svcgate.Event
	for i := uint64(1); i <= 9; i++ {
		history = append(history, event(i, "web", svcgate.StateRunning, svcgate.StateStartPending))
	}
	var (
		mu     sync.Mutex
		afters []uint64
	)
	f := newFixture(t)
	f.Opts.Events = &fakeEvents{SubscribeFunc: func(ctx context.Context, after uint64) (<-chan svcgate.Event, bool) {
		mu.Lock()
		afters = append(afters, after)
		n := len(afters)
		mu.Unlock()
		ch := make(chan svcgate.Event)
		go func() {
			defer close(ch)
			sent := 0
			for _, e := range history {
				if e.Seq <= after {
					continue
				}
				// The first subscription falls behind after 3 events; the
				// second stalls after 3 more until the connection is cut.
				if (n == 1 || n == 2) && sent == 3 {
					if n == 2 {
						<-ctx.Done()
					}
					return
				}
				select {
				case ch <- e:
					sent++
				case <-ctx.Done():
					return
				}
			}
			<-ctx.Done()
		}()
		return ch, true
	}}
	f.start(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := newCollect()
	done := make(chan error, 1)
	go func() { done <- f.client(viewerToken).Events(ctx, 0, got.fn) }()

	got.wait(t, 6)
	f.srv.CloseClientConnections() // the second stream stalls: cut it
	got.wait(t, 3)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Events = %v, want context.Canceled", err)
	}
	if diff := cmp.Diff([]uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}, got.seqs()); diff != "" {
		t.Errorf("events delivered (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]uint64{0, 3, 6}, afters); diff != "" {
		t.Errorf("resume points (-want +got):\n%s", diff)
	}
	if got.events[0].Service.Name != "web" || got.events[0].Type != svcgate.EventChanged {
		t.Errorf("event %+v", got.events[0])
	}
}

func TestClientEventsReset(t *testing.T) {
	f := newFixture(t)
	f.Opts.Events = &hub{history: []svcgate.Event{event(10, "web", svcgate.StateRunning, svcgate.StateStopped)}, oldest: 8, hold: true}
	f.start(t)
	got := newCollect()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.client(adminToken).Events(ctx, 3, got.fn) }()
	got.wait(t, 2)
	cancel()
	<-done
	got.mu.Lock()
	defer got.mu.Unlock()
	if got.events[0].Type != httpapi.EventReset || got.events[0].Seq != 0 || got.events[1].Seq != 10 {
		t.Errorf("events %+v, want a reset, then seq 10", got.events)
	}
}

func TestClientEventsStops(t *testing.T) {
	f := newFixture(t)
	f.Opts.Events = &hub{history: []svcgate.Event{event(1, "web", svcgate.StateRunning, "")}, hold: true}
	f.start(t)
	stop := errors.New("enough")
	err := f.client(adminToken).Events(context.Background(), 0, func(svcgate.Event) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("Events = %v, want the callback's error", err)
	}
	err = f.client("svcg_wrong").Events(context.Background(), 0, func(svcgate.Event) error { return nil })
	if !svcgate.IsCode(err, svcgate.CodeUnauthenticated) {
		t.Errorf("Events with a wrong token = %v, want unauthenticated at once", err)
	}
}

func TestClientSendsTheToken(t *testing.T) {
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"services":[],"generation":0}`)
	}))
	defer srv.Close()
	if _, err := httpapi.NewClient(srv.URL+"/", "svcg_x", nil).List(context.Background()); err != nil || auth != "Bearer svcg_x" {
		t.Errorf("List: %v; Authorization %q", err, auth)
	}
}
