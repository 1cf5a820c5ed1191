package svcgate

import (
	"errors"
	"fmt"
)

// The stable error codes of the API. The HTTP layer keeps the one table
// that maps them to statuses; clients map them back.
const (
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidName          = "invalid_name"
	CodeInvalidWait          = "invalid_wait"
	CodeUnauthenticated      = "unauthenticated"
	CodeForbidden            = "forbidden"
	CodeProtectedService     = "protected_service"
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeServiceNotFound      = "service_not_found"
	CodeInvalidTransition    = "invalid_transition"
	CodeStartFailed          = "start_failed"
	CodeConflict             = "conflict"
	CodeDependentsRunning    = "dependents_running"
	CodeBodyTooLarge         = "body_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeUnsupportedAction    = "unsupported_action"
	CodeRateLimited          = "rate_limited"
	CodeInternal             = "internal"
	CodeBackendError         = "backend_error"
	CodeAuditUnavailable     = "audit_unavailable"
	CodeNotReady             = "not_ready"
	CodeTimeout              = "timeout"
)

// Error is svcgate's error: a stable code, a message safe to show the
// caller, and optionally the service's current state and the cause, which is
// logged but never sent.
type Error struct {
	Code    string
	Message string
	// Service is the service's state when the error was decided, if known.
	Service *Service
	// Dependents names running services that block a stop.
	Dependents []string
	// OSError is the OS error number or D-Bus error name of a backend_error.
	OSError string
	// Err is the underlying cause, for logs only.
	Err error
}

// Error returns the message, with the cause when there is one.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, "" for a
// nil err and internal for any other error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the caller-safe message of the first *Error in err's
// chain, and a generic one for any other error, whose text may hold
// internal details.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// IsCode reports whether err carries code.
func IsCode(err error, code string) bool { return err != nil && ErrorCode(err) == code }
