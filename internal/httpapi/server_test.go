package httpapi_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/httpapi"
)

func TestNewServerDefaults(t *testing.T) {
	h := http.NotFoundHandler()
	s := httpapi.NewServer(h, httpapi.ServerOptions{})
	if s.ReadHeaderTimeout != 5*time.Second || s.ReadTimeout != 30*time.Second || s.IdleTimeout != 120*time.Second ||
		s.MaxHeaderBytes != 64<<10 || s.WriteTimeout != 0 || s.ErrorLog == nil {
		t.Errorf("defaults: %+v", s)
	}
	s = httpapi.NewServer(h, httpapi.ServerOptions{ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second,
		IdleTimeout: 3 * time.Second, MaxHeaderBytes: 4096})
	if s.ReadHeaderTimeout != time.Second || s.ReadTimeout != 2*time.Second || s.IdleTimeout != 3*time.Second || s.MaxHeaderBytes != 4096 {
		t.Errorf("options not applied: %+v", s)
	}
}

// TestEventStreamOutlivesServerTimeouts streams through a real server
// whose read and write timeouts are far shorter than the stream: the
// handler lifts them for itself.
func TestEventStreamOutlivesServerTimeouts(t *testing.T) {
	f := newFixture(t)
	f.Opts.EventKeepAlive = time.Hour
	var subscriptions atomic.Int64
	f.Opts.Events = &fakeEvents{SubscribeFunc: func(ctx context.Context, after uint64) (<-chan svcgate.Event, bool) {
		subscriptions.Add(1)
		ch := make(chan svcgate.Event)
		go func() {
			defer close(ch)
			for seq := after + 1; seq <= 3; seq++ {
				select {
				case <-time.After(150 * time.Millisecond):
				case <-ctx.Done():
					return
				}
				ch <- event(seq, "web", svcgate.StateRunning, svcgate.StateStartPending)
			}
		}()
		return ch, true
	}}
	srv := httpapi.NewServer(httpapi.NewHandler(f.Opts), httpapi.ServerOptions{ReadTimeout: 100 * time.Millisecond})
	srv.WriteTimeout = 100 * time.Millisecond // as a careless operator might
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	var seqs []uint64
	hc := &http.Client{Transport: newContractTransport(t, http.DefaultTransport)}
	c := httpapi.NewClient("http://"+ln.Addr().String(), adminToken, hc)
	stop := errors.New("stop")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Events(ctx, 0, func(e svcgate.Event) error {
		seqs = append(seqs, e.Seq)
		if len(seqs) == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || len(seqs) != 3 {
		t.Fatalf("Events = %v after %v", err, seqs)
	}
	if n := subscriptions.Load(); n != 1 {
		t.Errorf("the stream was cut and resumed %d times; the server's timeouts reached it", n-1)
	}
}
