package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/svcgate/svcgate"
)

// Filter selects services from a list. The zero Filter selects all.
type Filter struct {
	// States keeps services in one of these states; empty keeps all.
	States []svcgate.State
	// Name keeps services whose name matches this glob (path.Match
	// syntax); "" keeps all.
	Name string
	// StartTypes keeps services with one of these start types; empty
	// keeps all.
	StartTypes []svcgate.StartType
}

// IsZero reports whether f selects every service.
func (f Filter) IsZero() bool {
	return len(f.States) == 0 && f.Name == "" && len(f.StartTypes) == 0
}

// Match reports whether f selects s. A malformed Name matches nothing;
// Validate reports it.
func (f Filter) Match(s svcgate.Service) bool {
	if len(f.States) > 0 && !contains(f.States, s.State) {
		return false
	}
	if len(f.StartTypes) > 0 && !contains(f.StartTypes, s.StartType) {
		return false
	}
	if f.Name != "" {
		if ok, _ := path.Match(f.Name, s.Name); !ok {
			return false
		}
	}
	return true
}

// Validate checks every part of f; it returns an invalid_request
// *svcgate.Error naming the first bad one.
func (f Filter) Validate() error {
	for _, s := range f.States {
		if !s.Valid() {
			return svcgate.Errorf(svcgate.CodeInvalidRequest, "unknown state %q; the states are %s", s, joinStates())
		}
	}
	for _, t := range f.StartTypes {
		if !t.Valid() {
			return svcgate.Errorf(svcgate.CodeInvalidRequest, "unknown start type %q; the start types are auto, delayed_auto, manual, disabled", t)
		}
	}
	if f.Name != "" {
		// path.Match checks the whole pattern even when the name does
		// not match, so this catches every malformed pattern.
		if _, err := path.Match(f.Name, ""); err != nil {
			return svcgate.Errorf(svcgate.CodeInvalidRequest, "malformed name pattern %q", f.Name)
		}
	}
	return nil
}

// query returns f as the query string of GET /v1/services.
func (f Filter) query() url.Values {
	q := url.Values{}
	if len(f.States) > 0 {
		q.Set("state", joinList(f.States))
	}
	if f.Name != "" {
		q.Set("name", f.Name)
	}
	if len(f.StartTypes) > 0 {
		q.Set("start_type", joinList(f.StartTypes))
	}
	return q
}

func parseFilter(q url.Values) (Filter, error) {
	var f Filter
	if v := q["state"]; len(v) > 0 {
		items, err := splitList("state", v[0])
		if err != nil {
			return f, err
		}
		for _, s := range items {
			f.States = append(f.States, svcgate.State(s))
		}
	}
	if v := q["start_type"]; len(v) > 0 {
		items, err := splitList("start_type", v[0])
		if err != nil {
			return f, err
		}
		for _, s := range items {
			f.StartTypes = append(f.StartTypes, svcgate.StartType(s))
		}
	}
	if v := q["name"]; len(v) > 0 {
		if v[0] == "" {
			return f, svcgate.Errorf(svcgate.CodeInvalidRequest, "name is empty; leave it out to list every service")
		}
		f.Name = v[0]
	}
	return f, f.Validate()
}

func splitList(param, v string) ([]string, error) {
	items := strings.Split(v, ",")
	for _, s := range items {
		if s == "" {
			return nil, svcgate.Errorf(svcgate.CodeInvalidRequest, "%s has an empty item", param)
		}
	}
	return items, nil
}

func joinList[T ~string](v []T) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = string(x)
	}
	return strings.Join(s, ",")
}

func joinStates() string { return strings.ReplaceAll(joinList(svcgate.States), ",", ", ") }

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// ServiceList is the body of GET /v1/services: the services, sorted by
// name, and the generation of the cache they come from.
type ServiceList struct {
	Services   []svcgate.Service `json:"services"`
	Generation uint64            `json:"generation"`
}

// listBody is the encoded unfiltered list of one generation.
type listBody struct {
	generation uint64
	body       []byte
}

// handleListServices serves the list from the cache. The unfiltered list
// is encoded once per generation and its bytes reused until the
// generation changes, so the common request costs a lookup and a write,
// close to a bare net/http server (the benchmark issue).
func handleListServices(services Services) http.Handler {
	var (
		cached atomic.Pointer[listBody]
		mu     sync.Mutex // one encoding per generation, not one per waiting request
	)
	unfiltered := func() ([]byte, error) {
		gen, list := services.Services()
		if c := cached.Load(); c != nil && c.generation == gen {
			return c.body, nil
		}
		mu.Lock()
		defer mu.Unlock()
		if c := cached.Load(); c != nil && c.generation == gen {
			return c.body, nil
		}
		b, err := json.Marshal(ServiceList{Services: normalizeAll(list), Generation: gen})
		if err != nil {
			return nil, fmt.Errorf("encode the service list: %w", err)
		}
		b = append(b, '\n')
		cached.Store(&listBody{generation: gen, body: b})
		return b, nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery == "" {
			b, err := unfiltered()
			if err != nil {
				writeError(w, r, err)
				return
			}
			writeBody(w, jsonContentType, http.StatusOK, b)
			return
		}
		f, err := parseFilter(r.URL.Query())
		if err != nil {
			writeError(w, r, err)
			return
		}
		gen, list := services.Services()
		out := make([]svcgate.Service, 0, len(list))
		for _, s := range list {
			if f.Match(s) {
				out = append(out, normalize(s))
			}
		}
		encode(w, http.StatusOK, ServiceList{Services: out, Generation: gen})
	})
}

func handleGetService(b svcgate.Backend) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := b.Get(r.Context(), r.PathValue("name"))
		if err != nil {
			writeError(w, r, err)
			return
		}
		encode(w, http.StatusOK, normalize(s))
	})
}

// normalize gives the list fields of s an empty array instead of null,
// as the document promises, whatever the backend filled in.
func normalize(s svcgate.Service) svcgate.Service {
	if s.Accepts == nil {
		s.Accepts = []svcgate.Accept{}
	}
	if s.Dependencies == nil {
		s.Dependencies = []string{}
	}
	return s
}

// normalizeAll copies list, normalized; the cache's slice is shared.
func normalizeAll(list []svcgate.Service) []svcgate.Service {
	out := make([]svcgate.Service, len(list))
	for i, s := range list {
		out[i] = normalize(s)
	}
	return out
}
