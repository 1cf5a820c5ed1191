package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/httpapi"
)

// TestStatusOf pins DESIGN §3's table.
func TestStatusOf(t *testing.T) {
	want := map[string]int{
		svcgate.CodeInvalidRequest:       400,
		svcgate.CodeInvalidName:          400,
		svcgate.CodeInvalidWait:          400,
		svcgate.CodeUnauthenticated:      401,
		svcgate.CodeForbidden:            403,
		svcgate.CodeProtectedService:     403,
		svcgate.CodeNotFound:             404,
		svcgate.CodeServiceNotFound:      404,
		svcgate.CodeMethodNotAllowed:     405,
		svcgate.CodeInvalidTransition:    409,
		svcgate.CodeStartFailed:          409,
		svcgate.CodeConflict:             409,
		svcgate.CodeDependentsRunning:    409,
		svcgate.CodeBodyTooLarge:         413,
		svcgate.CodeUnsupportedMediaType: 415,
		svcgate.CodeUnsupportedAction:    422,
		svcgate.CodeRateLimited:          429,
		svcgate.CodeInternal:             500,
		svcgate.CodeBackendError:         500,
		svcgate.CodeAuditUnavailable:     503,
		svcgate.CodeNotReady:             503,
		svcgate.CodeTimeout:              504,
	}
	if len(httpapi.Codes()) != len(want) {
		t.Errorf("the table has %d codes, DESIGN §3 %d", len(httpapi.Codes()), len(want))
	}
	for code, status := range want {
		if got := httpapi.StatusOf(code); got != status {
			t.Errorf("StatusOf(%q) = %d, want %d", code, got, status)
		}
	}
	if got := httpapi.StatusOf("no_such_code"); got != 500 {
		t.Errorf("StatusOf(unknown) = %d, want 500", got)
	}
}

func TestCodeOf(t *testing.T) {
	tests := map[int]string{
		400: svcgate.CodeInvalidRequest,
		401: svcgate.CodeUnauthenticated,
		403: svcgate.CodeForbidden,
		404: svcgate.CodeNotFound,
		405: svcgate.CodeMethodNotAllowed,
		409: svcgate.CodeConflict,
		413: svcgate.CodeBodyTooLarge,
		415: svcgate.CodeUnsupportedMediaType,
		418: svcgate.CodeInvalidRequest,
		422: svcgate.CodeUnsupportedAction,
		429: svcgate.CodeRateLimited,
		500: svcgate.CodeInternal,
		502: svcgate.CodeBackendError,
		503: svcgate.CodeNotReady,
		504: svcgate.CodeTimeout,
		599: svcgate.CodeInternal,
	}
	for status, code := range tests {
		if got := httpapi.CodeOf(status); got != code {
			t.Errorf("CodeOf(%d) = %q, want %q", status, got, code)
		}
	}
	for _, code := range httpapi.Codes() {
		if s := httpapi.StatusOf(code); httpapi.StatusOf(httpapi.CodeOf(s)) != s {
			t.Errorf("CodeOf(StatusOf(%q)) does not map back to %d", code, s)
		}
	}
}

func TestProblemErr(t *testing.T) {
	s := svc("web", svcgate.StateFailed)
	p := httpapi.Problem{Status: 409, Code: svcgate.CodeStartFailed, Detail: "web exited", Service: &s, Dependents: []string{"a"}}
	e := p.Err()
	if e.Code != svcgate.CodeStartFailed || e.Message != "web exited" || e.Service.State != svcgate.StateFailed || e.Dependents[0] != "a" {
		t.Errorf("Err() = %+v", e)
	}
	if got := (&httpapi.Problem{Status: http.StatusGatewayTimeout, Code: "from_the_future"}).Err().Code; got != svcgate.CodeTimeout {
		t.Errorf("an unknown code maps to %q, want the status's timeout", got)
	}
}
