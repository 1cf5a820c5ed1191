package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/svcgate/svcgate"
)

// frame is one SSE block as it went over the wire: its lines in order.
type frame []string

// readFrames reads an event stream to its end.
func readFrames(t testing.TB, body io.Reader) []frame {
	t.Helper()
	var (
		out []frame
		cur frame
	)
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		if sc.Text() == "" {
			out = append(out, cur)
			cur = nil
			continue
		}
		cur = append(cur, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read the stream: %v", err)
	}
	if cur != nil {
		t.Errorf("the stream ended inside a frame: %q", cur)
	}
	return out
}

// stream opens GET /v1/events with the given headers.
func (f *fixture) stream(t testing.TB, ctx context.Context, query string, header ...string) *http.Response {
	t.Helper()
	r, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/v1/events"+query, nil)
	r.Header.Set("Authorization", "Bearer "+adminToken)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	resp, err := f.hc.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func event(seq uint64, name string, st, prev svcgate.State) svcgate.Event {
	return svcgate.Event{Seq: seq, Time: since.Add(time.Duration(seq) * time.Second), Type: svcgate.EventChanged,
		Service: svc(name, st), Previous: prev}
}

func eventFrame(e svcgate.Event) frame {
	s := e.Service
	return frame{
		fmt.Sprintf("id: %d", e.Seq),
		"event: " + string(e.Type),
		fmt.Sprintf(`data: {"seq":%d,"time":"%s","type":"%s","service":{"name":"%s","display_name":"%s","description":"","state":"%s","start_type":"manual","pid":0,"accepts":[],"exit_code":0,"since":"2026-11-30T10:00:00Z","dependencies":[],"backend":"supervisor"},"previous":"%s"}`,
			e.Seq, e.Time.Format(time.RFC3339), e.Type, s.Name, s.DisplayName, s.State, e.Previous),
	}
}

// hub is a fake event hub over a fixed history: Subscribe sends the
// events after after, then closes the channel (as when a subscriber falls
// behind), unless hold keeps it open until ctx ends.
type hub struct {
	history []svcgate.Event
	oldest  uint64 // events before this seq were evicted
	head    uint64 // what LastSeq reports
	hold    bool

	mu     sync.Mutex
	afters []uint64
}

func (h *hub) Subscribe(ctx context.Context, after uint64) (<-chan svcgate.Event, bool) {
	h.mu.Lock()
	h.afters = append(h.afters, after)
	h.mu.Unlock()
	ch := make(chan svcgate.Event)
	go func() {
		defer close(ch)
		for _, e := range h.history {
			if e.Seq <= after {
				continue
			}
			select {
			case ch <- e:
			case <-ctx.Done():
				return
			}
		}
		if h.hold {
			<-ctx.Done()
		}
	}()
	return ch, after+1 >= h.oldest
}

func (h *hub) LastSeq() uint64 { return h.head }

func (h *hub) Afters() []uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]uint64(nil), h.afters...)
}

func TestEvents(t *testing.T) {
	history := []svcgate.Event{
		event(5, "web", svcgate.StateStopPending, svcgate.StateRunning),
		event(6, "web", svcgate.StateStopped, svcgate.StateStopPending),
		event(7, "db", svcgate.StateRunning, svcgate.StateStartPending),
	}
	reset := frame{"event: reset", `data: {"reason":"events after 2 are no longer buffered; list the services again"}`}
	tests := []struct {
		name      string
		query     string
		header    []string
		wantAfter uint64
		want      []frame
	}{
		{"without a position, from the newest event, which is named first", "", nil, 5,
			[]frame{{"id: 5"}, eventFrame(history[1]), eventFrame(history[2])}},
		{"resume with Last-Event-ID", "", []string{"Last-Event-ID", "5"}, 5, []frame{eventFrame(history[1]), eventFrame(history[2])}},
		{"resume with after", "?after=6", nil, 6, []frame{eventFrame(history[2])}},
		{"Last-Event-ID wins over after", "?after=1", []string{"Last-Event-ID", "6"}, 6, []frame{eventFrame(history[2])}},
		{"reset when events were evicted", "", []string{"Last-Event-ID", "2"}, 2,
			[]frame{reset, eventFrame(history[0]), eventFrame(history[1]), eventFrame(history[2])}},
		{"only names matching the filter", "?name=w*", []string{"Last-Event-ID", "4"}, 4, []frame{eventFrame(history[0]), eventFrame(history[1])}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &hub{history: history, oldest: 5, head: 5}
			f := newFixture(t)
			f.Opts.Events = h
			f.start(t)
			resp := f.stream(t, context.Background(), tt.query, tt.header...)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			// The stream ends by itself when the hub closes the channel.
			frames := readFrames(t, resp.Body)
			if len(frames) == 0 || cmp.Diff(frame{"retry: 2000"}, frames[0]) != "" {
				t.Fatalf("first frame %q, want the retry hint", frames)
			}
			if diff := cmp.Diff(tt.want, frames[1:]); diff != "" {
				t.Errorf("frames (-want +got):\n%s", diff)
			}
			if got := h.Afters(); len(got) != 1 || got[0] != tt.wantAfter {
				t.Errorf("Subscribe after %v, want %d", got, tt.wantAfter)
			}
		})
	}
}

func TestEventsRejectsBadResumePoints(t *testing.T) {
	f := newFixture(t)
	h := &hub{}
	f.Opts.Events = h
	f.start(t)
	for _, tt := range []struct {
		query  string
		header []string
	}{
		{"", []string{"Last-Event-ID", "abc"}},
		{"", []string{"Last-Event-ID", "-1"}},
		{"?after=x", nil},
		{"?name=%5B", nil},
		{"?name=", nil},
		{"?since=1", nil},
	} {
		resp := f.stream(t, context.Background(), tt.query, tt.header...)
		b, _ := io.ReadAll(resp.Body)
		r := response{Status: resp.StatusCode, Header: resp.Header, Body: b}
		r.wantProblem(t, http.StatusBadRequest, svcgate.CodeInvalidRequest)
	}
	if n := len(h.Afters()); n != 0 {
		t.Errorf("bad requests subscribed %d times", n)
	}
}

func TestEventsKeepAliveAndCancel(t *testing.T) {
	h := &hub{history: []svcgate.Event{event(1, "web", svcgate.StateRunning, svcgate.StateStartPending)}, hold: true}
	f := newFixture(t)
	f.Opts.Events = h
	f.Opts.EventKeepAlive = 5 * time.Millisecond
	f.start(t)

	ctx, cancel := context.WithCancel(context.Background())
	resp := f.stream(t, ctx, "")
	br := bufio.NewReader(resp.Body)
	var lines []string
	for len(lines) < 20 {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", lines, err)
		}
		lines = append(lines, strings.TrimSuffix(l, "\n"))
		if strings.HasPrefix(l, ": keepalive") {
			break
		}
	}
	if !strings.HasPrefix(lines[len(lines)-1], ": keepalive") || !strings.Contains(strings.Join(lines, "\n"), "id: 1\n") {
		t.Errorf("no keepalive after the event: %q", lines)
	}
	cancel()
	// The handler notices the client left, and the hub's context ends.
	deadline := time.After(5 * time.Second)
	for {
		select {
		case <-deadline:
			t.Fatal("the stream did not end after the client left")
		default:
		}
		if _, err := br.ReadString('\n'); err != nil {
			break
		}
	}
}
