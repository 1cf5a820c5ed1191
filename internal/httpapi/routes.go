package httpapi

import "github.com/svcgate/svcgate"

// routes is the whole API surface. Each route names the permission it
// needs and which service that permission is checked against; guard
// enforces both, and no handler checks permissions itself except the
// scopeBody ones, which authorize the services their body names. Tests
// fail when a route other than health and the OpenAPI document has no
// permission, and when this table and openapi.json disagree.
func routes(o Options) []route {
	var (
		read      = svcgate.PermRead
		none      = svcgate.PermNone
		limit     = o.MaxBodyBytes
		wait      = []string{"wait", "dry_run", "dependents"}
		dryRun    = []string{"dry_run"}
		listQuery = []string{"state", "name", "start_type"}
	)
	return []route{
		{"GET /healthz", none, scopeAgent, nil, handleHealth(o.Now, nil)},
		{"GET /readyz", none, scopeAgent, nil, handleHealth(o.Now, o.Ready)},
		{"GET /v1/openapi.json", none, scopeAgent, nil, handleOpenAPI()},

		{"GET /v1/agent", read, scopeAgent, nil, handleAgent(o.Agent, o.Now)},
		{"POST /v1/agent/reload", svcgate.PermAdmin, scopeAgent, nil, handleReload(o.Reload, o.Agent)},

		{"GET /v1/services", read, scopeAgent, listQuery, handleListServices(o.Services)},
		{"POST /v1/services", svcgate.PermCreate, scopeBody, dryRun, handleCreate(o.Configure, o.Authorizer, limit)},
		{"GET /v1/services/{name}", read, scopeName, nil, handleGetService(o.Backend)},
		{"PATCH /v1/services/{name}", svcgate.PermConfigure, scopeName, dryRun, handleUpdate(o.Configure, limit)},
		{"DELETE /v1/services/{name}", svcgate.PermDelete, scopeName, []string{"stop", "dry_run"}, handleDelete(o.Configure)},
		{"POST /v1/services/{name}/{action}", permAction, scopeName, wait, handleAction(o.Control, limit)},
		{"POST /v1/actions", permPerItem, scopeBody, wait, handleBatch(o.Control, o.Authorizer, limit)},

		{"GET /v1/events", read, scopeAgent, []string{"after", "name"}, handleEvents(o.Events, o.EventKeepAlive)},
	}
}
