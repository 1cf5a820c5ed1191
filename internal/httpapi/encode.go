package httpapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/svcgate/svcgate"
)

const jsonContentType = "application/json"

// encode writes v as a JSON response with status.
func encode[T any](w http.ResponseWriter, status int, v T) {
	writeJSON(w, jsonContentType, status, v)
}

// writeJSON marshals v before writing anything, so that a value that
// cannot be encoded still gets a clean 500 instead of half a body.
func writeJSON(w http.ResponseWriter, contentType string, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		contentType, status = problemContentType, http.StatusInternalServerError
		b = []byte(`{"type":"` + problemType + `internal","title":"Internal error","status":500,` +
			`"detail":"the response could not be encoded","code":"internal","trace_id":` + strconv.Quote(traceIDOf(w)) + `}`)
	}
	writeBody(w, contentType, status, append(b, '\n'))
}

// writeBody writes an already encoded body.
func writeBody(w http.ResponseWriter, contentType string, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// decode reads the request body as one JSON value of type T. The body
// must be declared as one of mediaTypes (application/json when none are
// given; 415 unsupported_media_type otherwise), at most limit bytes (413
// body_too_large), name no field T lacks and be followed by nothing but
// white space (400 invalid_request naming the problem).
func decode[T any](w http.ResponseWriter, r *http.Request, limit int64, mediaTypes ...string) (T, error) {
	var v T
	if err := checkMediaType(r, mediaTypes); err != nil {
		return v, err
	}
	if r.ContentLength > limit {
		return v, tooLarge(limit)
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, decodeError(err, limit)
	}
	// Decode stops after the first value; anything but white space after
	// it means the client sent something other than what it meant.
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
		return v, nil
	case err == nil:
		return v, svcgate.Errorf(svcgate.CodeInvalidRequest, "unexpected data after the JSON value")
	default:
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return v, tooLarge(limit)
		}
		return v, svcgate.Errorf(svcgate.CodeInvalidRequest, "unexpected data after the JSON value")
	}
}

// decodeOptional is decode for routes whose body may be left out: an empty
// body yields the zero T and no error, whatever its Content-Type.
func decodeOptional[T any](w http.ResponseWriter, r *http.Request, limit int64) (T, error) {
	var zero T
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return zero, nil
	}
	// A chunked body has no length up front: peek to tell an empty one
	// from a real one before insisting on a media type.
	br := bufio.NewReader(r.Body)
	if _, err := br.Peek(1); err == io.EOF {
		return zero, nil
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{br, r.Body}
	return decode[T](w, r, limit)
}

func checkMediaType(r *http.Request, allowed []string) error {
	if len(allowed) == 0 {
		allowed = []string{jsonContentType}
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return svcgate.Errorf(svcgate.CodeUnsupportedMediaType, "the body needs a Content-Type of %s", strings.Join(allowed, " or "))
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !slices.Contains(allowed, mt) {
		return svcgate.Errorf(svcgate.CodeUnsupportedMediaType, "Content-Type %q is not accepted; send %s", ct, strings.Join(allowed, " or "))
	}
	return nil
}

func tooLarge(limit int64) error {
	return svcgate.Errorf(svcgate.CodeBodyTooLarge, "the body is larger than %d bytes", limit)
}

// decodeError turns an encoding/json error into a message about the
// client's input. json's own texts are about that input only, so they are
// safe to return, minus the "json: " prefix.
func decodeError(err error, limit int64) error {
	var (
		mb  *http.MaxBytesError
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mb):
		return tooLarge(limit)
	case err == io.EOF:
		return svcgate.Errorf(svcgate.CodeInvalidRequest, "the body is empty; a JSON object is expected")
	case err == io.ErrUnexpectedEOF:
		return svcgate.Errorf(svcgate.CodeInvalidRequest, "the JSON body ends early")
	case errors.As(err, &se):
		return svcgate.Errorf(svcgate.CodeInvalidRequest, "malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case errors.As(err, &ute):
		if ute.Field != "" {
			return svcgate.Errorf(svcgate.CodeInvalidRequest, "field %q must be %s, not %s", ute.Field, jsonKind(ute.Type), ute.Value)
		}
		return svcgate.Errorf(svcgate.CodeInvalidRequest, "the body must be %s, not %s", jsonKind(ute.Type), ute.Value)
	}
	return svcgate.Errorf(svcgate.CodeInvalidRequest, "%s", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names a Go type the way a JSON client thinks of it.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a number"
}
