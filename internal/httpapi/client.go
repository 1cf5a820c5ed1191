package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/control"
)

// Client is a Go client of the API. It implements svcgate.Backend over
// HTTP, so that anything written against a backend (the CLI, a hub) can
// steer a remote agent, and it reaches the rest of the API through its
// other methods. Errors the agent reports are *svcgate.Error values with
// the agent's code. A Client is safe for concurrent use.
type Client struct {
	base  string
	token string
	hc    *http.Client
	name  atomic.Pointer[string]

	// minBackoff and maxBackoff bound the delay before Events reconnects.
	minBackoff, maxBackoff time.Duration
}

// A Client is a backend, and a Configure too: a hub can put a remote agent
// behind its own API.
var (
	_ svcgate.Backend = (*Client)(nil)
	_ Configure       = (*Client)(nil)
)

// maxErrorBody caps how much of an error response is read.
const maxErrorBody = 1 << 20

// NewClient returns a client of the agent at baseURL (such as
// "https://host:8484") that authenticates with the bearer token (none
// when ""). hc carries TLS settings; nil means a plain http.Client. Give hc
// no Timeout if Events is used: the stream is long-lived, and a cut one
// only reconnects.
func NewClient(baseURL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{
		base: strings.TrimRight(baseURL, "/"), token: token, hc: hc,
		minBackoff: 100 * time.Millisecond, maxBackoff: retryMillis * time.Millisecond,
	}
}

// Name returns the remote backend's name once a response has told it, and
// "remote" before that.
func (c *Client) Name() string {
	if n := c.name.Load(); n != nil {
		return *n
	}
	return "remote"
}

func (c *Client) learnName(backend string) {
	if backend != "" && c.name.Load() == nil {
		c.name.Store(&backend)
	}
}

// List returns every service, from the agent's cache.
func (c *Client) List(ctx context.Context) ([]svcgate.Service, error) {
	l, err := c.ListFiltered(ctx, Filter{})
	return l.Services, err
}

// ListFiltered returns the services f selects and the cache generation.
// A bad filter fails with invalid_request, before any request is made.
func (c *Client) ListFiltered(ctx context.Context, f Filter) (ServiceList, error) {
	var l ServiceList
	if err := f.Validate(); err != nil {
		return l, err
	}
	_, err := c.call(ctx, http.MethodGet, "/v1/services", f.query(), nil, &l)
	if err == nil && len(l.Services) > 0 {
		c.learnName(l.Services[0].Backend)
	}
	return l, err
}

// Get returns one service, queried live by the agent.
func (c *Client) Get(ctx context.Context, name string) (svcgate.Service, error) {
	var s svcgate.Service
	_, err := c.call(ctx, http.MethodGet, servicePath(name), nil, nil, &s)
	if err == nil {
		c.learnName(s.Backend)
	}
	return s, err
}

// Control issues action without waiting for its target state (wait=0),
// as svcgate.Backend asks.
func (c *Client) Control(ctx context.Context, name string, action svcgate.Action, opts svcgate.ControlOptions) (svcgate.ControlResult, error) {
	res, err := c.Do(ctx, name, action, control.Options{Args: opts.Args, StopDependents: opts.StopDependents})
	return svcgate.ControlResult{Changed: res.Changed, Stopped: res.Stopped}, err
}

// Do runs action on name with all of o: the wait for the target state
// (0 returns at once with Pending set when the target is not reached),
// arguments, stopping dependents, and dry run.
func (c *Client) Do(ctx context.Context, name string, action svcgate.Action, o control.Options) (control.Result, error) {
	var body any
	if len(o.Args) > 0 {
		body = struct {
			Args []string `json:"args"`
		}{o.Args}
	}
	return c.result(ctx, http.MethodPost, servicePath(name)+"/"+url.PathEscape(string(action)), controlQuery(o), body)
}

// Batch runs items concurrently on the agent with the wait, dry run and
// dependents of o. Items that fail do not fail the batch: each result
// carries its own error (BatchItemResult.Err).
func (c *Client) Batch(ctx context.Context, items []BatchItem, o control.Options) (BatchResult, error) {
	var out BatchResult
	_, err := c.call(ctx, http.MethodPost, "/v1/actions", controlQuery(o), struct {
		Items []BatchItem `json:"items"`
	}{items}, &out)
	return out, err
}

// Create creates a service (or plans to, with dryRun).
func (c *Client) Create(ctx context.Context, spec svcgate.ServiceSpec, dryRun bool) (control.Result, error) {
	return c.result(ctx, http.MethodPost, "/v1/services", boolQuery(url.Values{}, "dry_run", dryRun), spec)
}

// Update changes the fields set in u.
func (c *Client) Update(ctx context.Context, name string, u svcgate.ServiceUpdate, dryRun bool) (control.Result, error) {
	return c.result(ctx, http.MethodPatch, servicePath(name), boolQuery(url.Values{}, "dry_run", dryRun), u)
}

// Delete deletes a service, stopping it first when stop is set.
func (c *Client) Delete(ctx context.Context, name string, stop, dryRun bool) (control.Result, error) {
	q := boolQuery(boolQuery(url.Values{}, "stop", stop), "dry_run", dryRun)
	return c.result(ctx, http.MethodDelete, servicePath(name), q, nil)
}

// Agent describes the remote agent.
func (c *Client) Agent(ctx context.Context) (AgentInfo, error) {
	var info AgentInfo
	_, err := c.call(ctx, http.MethodGet, "/v1/agent", nil, nil, &info)
	if err == nil {
		c.learnName(info.Backend)
	}
	return info, err
}

// Events calls fn with every event after after (0: whatever the agent
// still buffers), in order, until ctx ends (returning ctx.Err()) or fn
// returns an error (returning it). A dropped stream is resumed from the
// last event delivered, after a short backoff, so fn sees each event once.
// When the agent no longer holds the events the client missed, fn gets an
// event of Type EventReset (no Seq, no service): whatever the caller built
// from earlier events is stale and it should list the services again.
// Errors that retrying cannot cure (401, 403, 400) end Events at once.
func (c *Client) Events(ctx context.Context, after uint64, fn func(svcgate.Event) error) error {
	last, positioned := after, after > 0
	backoff, maxBackoff := c.minBackoff, c.maxBackoff
	for {
		setPosition := func(n uint64) { last, positioned = n, true }
		delivered, err := c.stream(ctx, last, positioned, &maxBackoff, setPosition, func(e svcgate.Event) error {
			if e.Type != EventReset {
				if positioned && e.Seq <= last {
					return nil // already delivered before a reconnect
				}
				last, positioned = e.Seq, true
			}
			return fn(e)
		})
		var ce callbackError
		switch {
		case errors.As(err, &ce):
			return ce.err
		case ctx.Err() != nil:
			return ctx.Err()
		case permanent(err):
			return err
		}
		if delivered {
			backoff = c.minBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// callbackError carries the error of Events' callback out of the stream.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// permanent reports whether a stream error is the agent refusing the
// request, which reconnecting would only repeat.
func permanent(err error) bool {
	var e *svcgate.Error
	if !errors.As(err, &e) {
		return false
	}
	s := StatusOf(e.Code)
	return s >= 400 && s < 500 && s != http.StatusTooManyRequests
}

// stream follows one connection of the event stream until it ends. It
// reports whether it delivered an event, which resets the backoff, and
// sets retry to the reconnection delay the agent asks for.
func (c *Client) stream(ctx context.Context, after uint64, positioned bool, retry *time.Duration, position func(uint64), fn func(svcgate.Event) error) (delivered bool, err error) {
	req, err := c.request(ctx, http.MethodGet, "/v1/events", nil, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if positioned {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(after, 10))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, responseError(resp)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return false, fmt.Errorf("event stream: unexpected Content-Type %q", resp.Header.Get("Content-Type"))
	}

	var (
		br         = bufio.NewReader(resp.Body)
		typ, id    string
		data       bytes.Buffer
		dataSeen   bool
		maxPending = 4 << 20 // one event's data; more is a broken stream
	)
	for {
		line, err := readLine(br, maxPending)
		if err != nil {
			return delivered, err
		}
		if line == "" { // a blank line dispatches the event
			if !dataSeen && id != "" {
				// An id alone positions the stream without an event.
				if n, err := strconv.ParseUint(id, 10, 64); err == nil {
					position(n)
				}
			}
			if dataSeen {
				if err := dispatch(typ, id, data.Bytes(), fn); err != nil {
					return delivered, err
				}
				delivered = true
			}
			typ, id, dataSeen = "", "", false
			data.Reset()
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "": // a comment, such as the keepalive
		case "event":
			typ = value
		case "id":
			id = value
		case "data":
			if dataSeen {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			dataSeen = true
			if data.Len() > maxPending {
				return delivered, errors.New("event stream: event too large")
			}
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil && ms > 0 {
				*retry = max(c.minBackoff, time.Duration(ms)*time.Millisecond)
			}
		}
	}
}

// dispatch decodes one SSE event and hands it to fn.
func dispatch(typ, id string, data []byte, fn func(svcgate.Event) error) error {
	if svcgate.EventType(typ) == EventReset {
		if err := fn(svcgate.Event{Type: EventReset}); err != nil {
			return callbackError{err}
		}
		return nil
	}
	var e svcgate.Event
	if err := json.Unmarshal(data, &e); err != nil {
		return fmt.Errorf("event stream: event %s: %w", id, err)
	}
	if n, err := strconv.ParseUint(id, 10, 64); err == nil {
		e.Seq = n
	}
	if err := fn(e); err != nil {
		return callbackError{err}
	}
	return nil
}

// readLine reads one line of at most limit bytes, without its line break.
func readLine(br *bufio.Reader, limit int) (string, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > limit {
			return "", errors.New("event stream: line too long")
		}
		switch {
		case err == nil:
			return strings.TrimRight(string(line), "\r\n"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(line) == 0:
			return "", io.ErrUnexpectedEOF // the server ended the stream
		default:
			return "", err
		}
	}
}

func servicePath(name string) string { return "/v1/services/" + url.PathEscape(name) }

func controlQuery(o control.Options) url.Values {
	q := url.Values{"wait": {o.Wait.String()}}
	if o.StopDependents {
		q.Set("dependents", "stop")
	}
	return boolQuery(q, "dry_run", o.DryRun)
}

func boolQuery(q url.Values, name string, v bool) url.Values {
	if v {
		q.Set(name, "true")
	}
	return q
}

// result makes a mutation request and turns its body into a Result.
func (c *Client) result(ctx context.Context, method, path string, q url.Values, body any) (control.Result, error) {
	var b resultBody
	status, err := c.call(ctx, method, path, q, body, &b)
	if err != nil {
		return control.Result{}, err
	}
	res := control.Result{
		Changed:  b.Changed,
		Duration: time.Duration(b.DurationMS) * time.Millisecond,
		Pending:  status == http.StatusAccepted,
		Stopped:  b.Stopped,
		DryRun:   b.DryRun,
		Plan:     b.Plan,
	}
	if b.Service != nil {
		res.Service = *b.Service
		c.learnName(b.Service.Backend)
	}
	return res, nil
}

func (c *Client) request(ctx context.Context, method, path string, q url.Values, body any) (*http.Request, error) {
	u, err := url.Parse(c.base + path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode body: %w", method, path, err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", jsonContentType)
	}
	req.Header.Set("Accept", jsonContentType)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// call makes one request and decodes a 2xx body into out; any other
// status becomes the *svcgate.Error the body describes.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, body, out any) (int, error) {
	req, err := c.request(ctx, method, path, q, body)
	if err != nil {
		return 0, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, responseError(resp)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// responseError turns an error response into an *svcgate.Error: from its
// problem body when there is one, else from its status alone (a proxy's
// error page, say).
func responseError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == problemContentType || mt == jsonContentType {
		var p Problem
		if json.Unmarshal(b, &p) == nil && (p.Code != "" || p.Detail != "") {
			if p.Status == 0 {
				p.Status = resp.StatusCode
			}
			return p.Err()
		}
	}
	return svcgate.Errorf(CodeOf(resp.StatusCode), "%s %s: %s", resp.Request.Method, resp.Request.URL.Path, resp.Status)
}
