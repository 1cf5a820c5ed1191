package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/svcgate/svcgate"
)

// problemType prefixes a code to form a problem's type URI. A URN names
// the problem without naming a host the document would have to serve.
const problemType = "urn:svcgate:problem:"

// problemContentType is the media type of every error body (RFC 9457).
const problemContentType = "application/problem+json"

// codeStatus is the one table that maps the error codes of package svcgate
// to HTTP statuses (DESIGN §3). The first code listed for a status is the
// one CodeOf returns for it; the OpenAPI document's code enum lists the
// same codes (a test compares them).
var codeStatus = []struct {
	code   string
	status int
	title  string
}{
	{svcgate.CodeInvalidRequest, http.StatusBadRequest, "Invalid request"},
	{svcgate.CodeInvalidName, http.StatusBadRequest, "Invalid service name"},
	{svcgate.CodeInvalidWait, http.StatusBadRequest, "Invalid wait"},
	{svcgate.CodeUnauthenticated, http.StatusUnauthorized, "Unauthenticated"},
	{svcgate.CodeForbidden, http.StatusForbidden, "Forbidden"},
	{svcgate.CodeProtectedService, http.StatusForbidden, "Protected service"},
	{svcgate.CodeNotFound, http.StatusNotFound, "Not found"},
	{svcgate.CodeServiceNotFound, http.StatusNotFound, "Service not found"},
	{svcgate.CodeMethodNotAllowed, http.StatusMethodNotAllowed, "Method not allowed"},
	{svcgate.CodeConflict, http.StatusConflict, "Conflict"},
	{svcgate.CodeInvalidTransition, http.StatusConflict, "Invalid transition"},
	{svcgate.CodeStartFailed, http.StatusConflict, "Start failed"},
	{svcgate.CodeDependentsRunning, http.StatusConflict, "Dependents running"},
	{svcgate.CodeBodyTooLarge, http.StatusRequestEntityTooLarge, "Body too large"},
	{svcgate.CodeUnsupportedMediaType, http.StatusUnsupportedMediaType, "Unsupported media type"},
	{svcgate.CodeUnsupportedAction, http.StatusUnprocessableEntity, "Unsupported action"},
	{svcgate.CodeRateLimited, http.StatusTooManyRequests, "Rate limited"},
	{svcgate.CodeInternal, http.StatusInternalServerError, "Internal error"},
	{svcgate.CodeBackendError, http.StatusInternalServerError, "Backend error"},
	{svcgate.CodeNotReady, http.StatusServiceUnavailable, "Not ready"},
	{svcgate.CodeAuditUnavailable, http.StatusServiceUnavailable, "Audit unavailable"},
	{svcgate.CodeTimeout, http.StatusGatewayTimeout, "Timeout"},
}

// Codes returns every error code the API uses, in the order of the status
// table.
func Codes() []string {
	out := make([]string, len(codeStatus))
	for i, c := range codeStatus {
		out[i] = c.code
	}
	return out
}

// StatusOf returns the HTTP status of an error code, and 500 for a code
// it does not know.
func StatusOf(code string) int {
	for _, c := range codeStatus {
		if c.code == code {
			return c.status
		}
	}
	return http.StatusInternalServerError
}

// CodeOf returns the error code a client should assume for an error
// status whose body carries no code (a proxy's page, say): the first code
// of that status in the table, invalid_request for other 4xx, backend_error
// for 502, and internal for anything else.
func CodeOf(status int) string {
	for _, c := range codeStatus {
		if c.status == status {
			return c.code
		}
	}
	switch {
	case status == http.StatusBadGateway:
		return svcgate.CodeBackendError
	case status >= 400 && status < 500:
		return svcgate.CodeInvalidRequest
	}
	return svcgate.CodeInternal
}

func titleOf(code string) string {
	for _, c := range codeStatus {
		if c.code == code {
			return c.title
		}
	}
	return "Internal error"
}

func knownCode(code string) bool {
	for _, c := range codeStatus {
		if c.code == code {
			return true
		}
	}
	return false
}

// Problem is the RFC 9457 body of every error response, and of a failed
// item in a batch. Service, Dependents and OSError are set when the error
// carries them.
type Problem struct {
	Type       string           `json:"type"`
	Title      string           `json:"title"`
	Status     int              `json:"status"`
	Detail     string           `json:"detail"`
	Code       string           `json:"code"`
	TraceID    string           `json:"trace_id"`
	Service    *svcgate.Service `json:"service,omitempty"`
	Dependents []string         `json:"dependents,omitempty"`
	OSError    string           `json:"os_error,omitempty"`
}

// Err returns p as the *svcgate.Error it was made from: the code (CodeOf
// the status when the code is missing or unknown), the detail as message,
// and the service, dependents and OS error.
func (p *Problem) Err() *svcgate.Error {
	code := p.Code
	if !knownCode(code) {
		code = CodeOf(p.Status)
	}
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	return &svcgate.Error{Code: code, Message: msg, Service: p.Service, Dependents: p.Dependents, OSError: p.OSError}
}

// problemFor turns err into the problem the caller sees. Only *svcgate.Error
// values with a known code pass their message on; anything else becomes a
// generic internal error, because its text may hold paths, addresses or
// other details that are for the log only.
func problemFor(err error, traceID string) Problem {
	var e *svcgate.Error
	if !errors.As(err, &e) || !knownCode(e.Code) {
		return Problem{
			Type:    problemType + svcgate.CodeInternal,
			Title:   titleOf(svcgate.CodeInternal),
			Status:  http.StatusInternalServerError,
			Detail:  "internal error; the trace id locates the details in the agent's log",
			Code:    svcgate.CodeInternal,
			TraceID: traceID,
		}
	}
	p := Problem{
		Type:       problemType + e.Code,
		Title:      titleOf(e.Code),
		Status:     StatusOf(e.Code),
		Detail:     e.Message,
		Code:       e.Code,
		TraceID:    traceID,
		Dependents: e.Dependents,
	}
	if p.Detail == "" {
		p.Detail = p.Title
	}
	if e.Service != nil {
		s := normalize(*e.Service)
		p.Service = &s
	}
	if e.Code == svcgate.CodeBackendError {
		p.OSError = e.OSError
	}
	return p
}

// writeError writes err as a problem and logs it when it is the server's
// fault (5xx), with the full error text and the trace id.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	ri := infoFrom(r.Context())
	p := problemFor(err, ri.traceID)
	if p.Status >= 500 {
		ri.logger.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("trace_id", ri.traceID), slog.String("code", p.Code), slog.Any("error", err))
	}
	writeProblem(w, p)
}

// writeProblem writes p with the headers its status calls for.
func writeProblem(w http.ResponseWriter, p Problem) {
	switch p.Status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="svcgate"`)
	case http.StatusTooManyRequests:
		// svcgate.Error carries no delay; one second is the smallest
		// honest hint and keeps well-behaved clients from hammering.
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", strconv.Itoa(1))
		}
	}
	writeJSON(w, problemContentType, p.Status, p)
}
