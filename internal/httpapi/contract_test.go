package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/google/go-cmp/cmp"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/httpapi"
)

// loadDocument parses and validates the embedded OpenAPI document.
func loadDocument(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(httpapi.OpenAPI())
	if err != nil {
		t.Fatalf("load the OpenAPI document: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	return doc
}

// contractTransport checks every response a test receives against the
// OpenAPI document: documented routes against their operation (status,
// headers, body schema; an undocumented status fails), anything else
// (unknown paths, wrong methods, names the document's router cannot
// place) must be a problem. SSE bodies are checked frame by frame as they
// are read. Violations fail the test when it ends.
type contractTransport struct {
	base    http.RoundTripper
	doc     *openapi3.T
	router  routers.Router
	schemas openapi3.Schemas

	mu         sync.Mutex
	violations []string
}

func newContractTransport(t testing.TB, base http.RoundTripper) *contractTransport {
	t.Helper()
	doc := loadDocument(t)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("router of the OpenAPI document: %v", err)
	}
	ct := &contractTransport{base: base, doc: doc, router: router, schemas: doc.Components.Schemas}
	t.Cleanup(func() {
		ct.mu.Lock()
		defer ct.mu.Unlock()
		for _, v := range ct.violations {
			t.Errorf("response does not match the OpenAPI document: %s", v)
		}
	})
	return ct
}

func (ct *contractTransport) violation(r *http.Request, format string, args ...any) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	ct.violations = append(ct.violations, r.Method+" "+r.URL.RequestURI()+": "+fmt.Sprintf(format, args...))
}

func (ct *contractTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := ct.base.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	if resp.Header.Get("X-Request-Id") == "" {
		ct.violation(r, "status %d without X-Request-Id", resp.StatusCode)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	route, params, routeErr := ct.router.FindRoute(r)
	if routeErr == nil && expand(route.Path, params) != r.URL.Path {
		// The legacy router forgives trailing slashes and empty segments;
		// the API does not.
		routeErr = fmt.Errorf("%s only resembles %s", r.URL.Path, route.Path)
	}

	if mt == "text/event-stream" && resp.StatusCode == http.StatusOK {
		if routeErr != nil {
			ct.violation(r, "an event stream on an undocumented route")
		} else {
			ct.validate(r, route, params, resp, &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: true})
		}
		resp.Body = &sseChecker{rc: resp.Body, ct: ct, req: r}
		return resp, nil
	}

	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))

	if resp.StatusCode >= 400 && resp.Request.Method != http.MethodHead {
		ct.checkProblem(r, resp, body)
	}
	if routeErr != nil {
		// Not an operation of the document: only errors may come back.
		if resp.StatusCode < 400 {
			ct.violation(r, "status %d on a route the document does not have (%v)", resp.StatusCode, routeErr)
		}
		if resp.StatusCode == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == "" {
			ct.violation(r, "405 without Allow")
		}
		return resp, nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	ct.validate(r, route, params, resp, &openapi3filter.Options{IncludeResponseStatus: true})
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// expand fills a path template with the router's parameters.
func expand(template string, params map[string]string) string {
	for k, v := range params {
		if v == "" {
			return ""
		}
		template = strings.ReplaceAll(template, "{"+k+"}", v)
	}
	return template
}

func (ct *contractTransport) validate(r *http.Request, route *routers.Route, params map[string]string, resp *http.Response, opts *openapi3filter.Options) {
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   resp.Body,
		Options:                opts,
	}
	if err := openapi3filter.ValidateResponse(r.Context(), in); err != nil {
		ct.violation(r, "status %d: %v", resp.StatusCode, err)
	}
}

// checkProblem holds every error body to the Problem schema, also where
// no operation applies.
func (ct *contractTransport) checkProblem(r *http.Request, resp *http.Response, body []byte) {
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/problem+json" {
		// /readyz answers 503 with its health body, as documented.
		if !(r.URL.Path == "/readyz" && resp.StatusCode == http.StatusServiceUnavailable) {
			ct.violation(r, "status %d with Content-Type %q, not a problem", resp.StatusCode, mt)
		}
		return
	}
	ct.checkSchema(r, "Problem", body)
}

func (ct *contractTransport) checkSchema(r *http.Request, schema string, data []byte) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		ct.violation(r, "%s is not JSON: %v", schema, err)
		return
	}
	if err := ct.schemas[schema].Value.VisitJSON(v, openapi3.VisitAsResponse()); err != nil {
		ct.violation(r, "%s %s: %v", schema, data, err)
	}
}

// sseChecker checks each frame of an event stream as the test reads it:
// the data of a named reset against Reset, of any other event against
// Event, with the id equal to the seq and the event name to the type.
type sseChecker struct {
	rc  io.ReadCloser
	ct  *contractTransport
	req *http.Request

	partial   []byte
	id, event string
	data      []string
}

func (s *sseChecker) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	s.partial = append(s.partial, p[:n]...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.line(strings.TrimSuffix(string(s.partial[:i]), "\r"))
		s.partial = s.partial[i+1:]
	}
	return n, err
}

func (s *sseChecker) Close() error { return s.rc.Close() }

func (s *sseChecker) line(l string) {
	if l != "" {
		field, value, _ := strings.Cut(l, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			s.id = value
		case "event":
			s.event = value
		case "data":
			s.data = append(s.data, value)
		case "retry", "":
		default:
			s.ct.violation(s.req, "unknown SSE field %q", field)
		}
		return
	}
	defer func() { s.id, s.event, s.data = "", "", nil }()
	if len(s.data) == 0 {
		return
	}
	data := []byte(strings.Join(s.data, "\n"))
	if s.event == "reset" {
		if s.id != "" {
			s.ct.violation(s.req, "reset event with id %q", s.id)
		}
		s.ct.checkSchema(s.req, "Reset", data)
		return
	}
	s.ct.checkSchema(s.req, "Event", data)
	var e svcgate.Event
	if json.Unmarshal(data, &e) == nil && (s.id != fmt.Sprint(e.Seq) || s.event != string(e.Type)) {
		s.ct.violation(s.req, "frame id %q event %q for seq %d type %q", s.id, s.event, e.Seq, e.Type)
	}
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := loadDocument(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Errorf("openapi = %q, want 3.0.x", doc.OpenAPI)
	}
	f := newFixture(t).start(t)
	r := f.do(t, req{Method: http.MethodGet, Path: "/v1/openapi.json", Token: "-"})
	if r.Status != http.StatusOK || !bytes.Equal(r.Body, httpapi.OpenAPI()) {
		t.Errorf("GET /v1/openapi.json: status %d, body equal to the embedded document: %v", r.Status, bytes.Equal(r.Body, httpapi.OpenAPI()))
	}
}

// TestOpenAPIDocumentMatchesRouteTable fails when a route is missing from
// the document, the document has an operation no route serves, or their
// query parameters differ.
func TestOpenAPIDocumentMatchesRouteTable(t *testing.T) {
	doc := loadDocument(t)
	inDoc := map[string][]string{} // "METHOD /path" → query parameter names
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			var q []string
			for _, p := range append(item.Parameters, op.Parameters...) {
				if p.Value.In == "query" {
					q = append(q, p.Value.Name)
				}
			}
			slices.Sort(q)
			inDoc[method+" "+path] = q
		}
	}
	inTable := map[string][]string{}
	for _, rt := range httpapi.Routes() {
		q := slices.Clone(rt.Query)
		slices.Sort(q)
		inTable[rt.Pattern] = q
	}
	if diff := cmp.Diff(inTable, inDoc); diff != "" {
		t.Errorf("route table (-) and OpenAPI operations (+) differ:\n%s", diff)
	}
}

// TestOpenAPIProblemCodes fails when the document's code enum and the
// status table disagree.
func TestOpenAPIProblemCodes(t *testing.T) {
	doc := loadDocument(t)
	var enum []string
	for _, v := range doc.Components.Schemas["Problem"].Value.Properties["code"].Value.Enum {
		enum = append(enum, v.(string))
	}
	codes := httpapi.Codes()
	slices.Sort(enum)
	slices.Sort(codes)
	if diff := cmp.Diff(codes, enum); diff != "" {
		t.Errorf("status table (-) and the Problem code enum (+) differ:\n%s", diff)
	}
}

// TestContractTransportCatchesDrift makes sure the central check can
// fail: a body missing a required field is reported.
func TestContractTransportCatchesDrift(t *testing.T) {
	drifting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "x")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"services":[{"name":"web"}],"generation":1}`)
	})
	ct := &contractTransport{base: handlerTransport{drifting}}
	doc := loadDocument(t)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	ct.doc, ct.router, ct.schemas = doc, router, doc.Components.Schemas
	r, _ := http.NewRequest(http.MethodGet, "http://agent/v1/services", nil)
	resp, err := ct.RoundTrip(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(ct.violations) != 1 || !strings.Contains(ct.violations[0], "display_name") {
		t.Errorf("violations = %q, want one about the missing display_name", ct.violations)
	}
}

// handlerTransport serves requests with a handler, in process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	resp := w.Result()
	resp.Request = r
	return resp, nil
}
