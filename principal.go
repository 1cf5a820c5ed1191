package svcgate

import "context"

// Principal is an authenticated caller.
type Principal struct {
	// ID identifies the credential: a token id, a certificate subject.
	ID string `json:"id"`
	// Name is a human label for logs and the audit trail.
	Name string `json:"name"`
	// Kind is how the caller authenticated: "token", "certificate", "oidc".
	Kind string `json:"kind"`
	// Roles are the roles bound to the caller.
	Roles []string `json:"roles"`
}

type principalKey struct{}

// NewContext returns a context carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal in ctx, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Permission is what a route or a batch item needs: one per action, plus
// the non-action rights below. The route table names one for every route.
type Permission string

// The permissions. Actions are permissions too: Permission(ActionStop).
const (
	PermNone       Permission = ""            // anonymous routes: health, the OpenAPI document
	PermRead       Permission = "read"        // list, get, events, agent info
	PermMetrics    Permission = "metrics"     // Prometheus exposition
	PermCreate     Permission = "create"      // create a service
	PermConfigure  Permission = "configure"   // change a service's configuration
	PermDelete     Permission = "delete"      // delete a service
	PermLogs       Permission = "logs"        // read a service's output
	PermAudit      Permission = "audit"       // read the audit log
	PermAdmin      Permission = "admin"       // tokens, reload
	PermBreakGlass Permission = "break_glass" // act on protected services
)

// ActionPermission returns the permission action a needs.
func ActionPermission(a Action) Permission { return Permission(a) }
