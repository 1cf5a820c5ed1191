package httpapi

import "github.com/svcgate/svcgate"

// RouteInfo is a route table entry without its handler, for the tests of
// package httpapi_test.
type RouteInfo struct {
	Pattern    string
	Permission svcgate.Permission
	// Scope is "agent", "name" or "body".
	Scope string
	Query []string
}

// Routes returns the route table.
func Routes() []RouteInfo {
	var out []RouteInfo
	for _, rt := range routes(Options{}.withDefaults()) {
		out = append(out, RouteInfo{
			Pattern:    rt.pattern,
			Permission: rt.perm,
			Scope:      [...]string{scopeAgent: "agent", scopeName: "name", scopeBody: "body"}[rt.scope],
			Query:      rt.query,
		})
	}
	return out
}

// The permission markers of the route table.
const (
	PermAction  = permAction
	PermPerItem = permPerItem
)
