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
