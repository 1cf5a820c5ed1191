package httpapi

import (
	"context"
	_ "embed"
	"net/http"
	"time"
)

// openAPIDocument is the OpenAPI 3.0 description of the route table,
// written by hand and checked against the table and every response the
// tests see.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the OpenAPI document served at /v1/openapi.json.
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }

func handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		writeBody(w, jsonContentType, http.StatusOK, openAPIDocument)
	})
}

// health is the whole body of /healthz and /readyz: load balancers and
// orchestrators read the status, and anonymous callers learn nothing else.
type health struct {
	Service   string    `json:"service"`
	Status    string    `json:"status"`
	Timestamp time.Time `json:"timestamp"`
}

// handleHealth answers liveness when ready is nil and readiness
// otherwise: 503 DOWN while ready reports false.
func handleHealth(now func() time.Time, ready func() bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := health{Service: "svcgate", Status: "UP", Timestamp: now().UTC().Truncate(time.Second)}
		status := http.StatusOK
		if ready != nil && !ready() {
			h.Status, status = "DOWN", http.StatusServiceUnavailable
		}
		encode(w, status, h)
	})
}

func handleAgent(agent func() AgentInfo, now func() time.Time) http.Handler {
	type body struct {
		AgentInfo
		UptimeSeconds int64 `json:"uptime_seconds"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := agent()
		if info.Capabilities == nil {
			info.Capabilities = []string{}
		}
		b := body{AgentInfo: info}
		if !info.StartedAt.IsZero() {
			b.UptimeSeconds = max(0, int64(now().Sub(info.StartedAt)/time.Second))
		}
		encode(w, http.StatusOK, b)
	})
}

func handleReload(reload func(context.Context) error, agent func() AgentInfo) http.Handler {
	type body struct {
		ConfigGeneration uint64 `json:"config_generation"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := reload(r.Context()); err != nil {
			writeError(w, r, err)
			return
		}
		encode(w, http.StatusOK, body{ConfigGeneration: agent().ConfigGeneration})
	})
}
