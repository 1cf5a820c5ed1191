package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/svcgate/svcgate"
)

// EventReset is the type of the SSE event that tells a client it missed
// events (they were evicted from the resume buffer before it came back)
// and must list the services again. Client.Events passes it to its
// callback as an svcgate.Event with this Type and no Seq.
const EventReset svcgate.EventType = "reset"

// retryMillis is the reconnection delay the stream asks EventSource
// clients for.
const retryMillis = 2000

// eventWriteWait bounds each write to an event stream: the server's
// WriteTimeout is lifted for the stream, but a peer that stopped reading
// must not hold the handler forever.
const eventWriteWait = 30 * time.Second

// resetData is the data of a reset event.
type resetData struct {
	Reason string `json:"reason"`
}

// handleEvents streams events as Server-Sent Events. A client resumes with
// Last-Event-ID (or ?after= on its first request); without either the
// stream starts at the newest event and first sends its id, so that a client
// that reconnects before any event arrives still resumes without a gap. The stream
// ends when the hub closes the channel (the client fell too far behind),
// and the client reconnects from its last id.
func handleEvents(hub Events, keepAlive time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after, positioned, err := resumePoint(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		f, err := parseFilter(url.Values{"name": r.URL.Query()["name"]})
		if err != nil {
			writeError(w, r, err)
			return
		}
		ctx := r.Context()
		if !positioned {
			after = hub.LastSeq()
		}
		events, complete := hub.Subscribe(ctx, after)

		rc := http.NewResponseController(w)
		// The stream outlives the server's ReadTimeout and WriteTimeout by
		// design; lift the read deadline and bound each write instead.
		// ErrNotSupported (a test recorder) leaves nothing to lift.
		_ = rc.SetReadDeadline(time.Time{})
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("X-Accel-Buffering", "no") // nginx would otherwise hold events back
		w.WriteHeader(http.StatusOK)

		var buf bytes.Buffer
		send := func() bool {
			_ = rc.SetWriteDeadline(time.Now().Add(eventWriteWait))
			_, err := w.Write(buf.Bytes())
			buf.Reset()
			if err == nil {
				err = rc.Flush()
			}
			return err == nil
		}
		buf.WriteString("retry: " + strconv.Itoa(retryMillis) + "\n\n")
		if !positioned {
			// An id without data sets the client's Last-Event-ID and
			// dispatches nothing (WHATWG HTML, "dispatch the event").
			buf.WriteString("id: " + strconv.FormatUint(after, 10) + "\n\n")
		}
		if !complete && positioned {
			data, _ := json.Marshal(resetData{Reason: "events after " + strconv.FormatUint(after, 10) +
				" are no longer buffered; list the services again"})
			writeFrame(&buf, "", EventReset, data)
		}
		if !send() {
			return
		}

		tick := time.NewTicker(keepAlive)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-events:
				if !ok {
					return
				}
				if !f.Match(e.Service) {
					continue
				}
				e.Service = normalize(e.Service)
				data, err := json.Marshal(e)
				if err != nil {
					infoFrom(ctx).logger.LogAttrs(ctx, slog.LevelError, "event not encodable",
						slog.String("trace_id", infoFrom(ctx).traceID), slog.Uint64("seq", e.Seq), slog.Any("error", err))
					continue
				}
				writeFrame(&buf, strconv.FormatUint(e.Seq, 10), e.Type, data)
			case <-tick.C:
				buf.WriteString(": keepalive\n\n")
			}
			if !send() {
				return
			}
		}
	})
}

// writeFrame appends one SSE event. data is JSON, which holds no raw line
// breaks; the type comes from the hub, but a line break in it would forge
// fields, so it is dropped.
func writeFrame(buf *bytes.Buffer, id string, typ svcgate.EventType, data []byte) {
	if id != "" {
		buf.WriteString("id: " + id + "\n")
	}
	if t := strings.Map(dropLineBreaks, string(typ)); t != "" {
		buf.WriteString("event: " + t + "\n")
	}
	buf.WriteString("data: ")
	buf.Write(data)
	buf.WriteString("\n\n")
}

func dropLineBreaks(r rune) rune {
	if r == '\n' || r == '\r' {
		return -1
	}
	return r
}

// resumePoint reads where a stream resumes: the Last-Event-ID header an
// EventSource sends when it reconnects, else ?after=. The header wins
// because a reconnecting EventSource repeats the URL of its first request.
func resumePoint(r *http.Request) (after uint64, positioned bool, err error) {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, false, svcgate.Errorf(svcgate.CodeInvalidRequest, "malformed Last-Event-ID %q; it is the seq of an event", v)
		}
		return n, true, nil
	}
	if v, ok := r.URL.Query()["after"]; ok {
		n, err := strconv.ParseUint(v[0], 10, 64)
		if err != nil {
			return 0, false, svcgate.Errorf(svcgate.CodeInvalidRequest, "malformed after %q; it is the seq of an event", v[0])
		}
		return n, true, nil
	}
	return 0, false, nil
}
