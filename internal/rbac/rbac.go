// Package rbac decides whether a principal may do something to a service:
// roles are lists of rules over permissions and service-name globs, and
// everything not allowed by a rule is denied.
package rbac

import (
	"path"
	"slices"
	"strings"

	"github.com/svcgate/svcgate"
)

// Rule allows the listed permissions on the services whose names match one
// of the globs (path.Match syntax; "*" matches every service). A rule with
// no services allows nothing about services, only service-less permissions
// such as read on the agent itself.
type Rule struct {
	Permissions []svcgate.Permission `json:"permissions" yaml:"permissions"`
	Services    []string             `json:"services" yaml:"services"`
}

// Policy maps role names to rules. It is immutable once built and safe for
// concurrent use.
type Policy struct {
	roles map[string][]Rule
}

// The built-in roles.
const (
	RoleViewer   = "viewer"
	RoleOperator = "operator"
	RoleAdmin    = "admin"
)

var (
	viewerPerms   = []svcgate.Permission{svcgate.PermRead, svcgate.PermMetrics}
	operatorPerms = append(slices.Clone(viewerPerms), svcgate.PermLogs,
		svcgate.Permission(svcgate.ActionStart), svcgate.Permission(svcgate.ActionStop),
		svcgate.Permission(svcgate.ActionRestart), svcgate.Permission(svcgate.ActionPause),
		svcgate.Permission(svcgate.ActionContinue), svcgate.Permission(svcgate.ActionReload))
	adminPerms = append(slices.Clone(operatorPerms), svcgate.PermCreate, svcgate.PermConfigure,
		svcgate.PermDelete, svcgate.PermAudit, svcgate.PermAdmin)
)

// Builtin returns the policy of the built-in roles: viewer reads and
// scrapes metrics, operator also controls and reads logs, admin also
// creates, reconfigures and deletes services and manages the agent. None of
// them holds break_glass.
func Builtin() *Policy {
	all := []string{"*"}
	return &Policy{roles: map[string][]Rule{
		RoleViewer:   {{Permissions: viewerPerms, Services: all}},
		RoleOperator: {{Permissions: operatorPerms, Services: all}},
		RoleAdmin:    {{Permissions: adminPerms, Services: all}},
	}}
}

// Roles returns the names of the policy's roles, sorted.
func (p *Policy) Roles() []string {
	out := make([]string, 0, len(p.roles))
	for r := range p.roles {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// Authorize returns nil when one of pr's roles allows perm on service
// (service "" for requests not about one service), and a forbidden
// *svcgate.Error otherwise.
func (p *Policy) Authorize(pr svcgate.Principal, perm svcgate.Permission, service string) error {
	if p.Allowed(pr.Roles, perm, service) {
		return nil
	}
	if service == "" {
		return svcgate.Errorf(svcgate.CodeForbidden, "%s may not %s", describe(pr), perm)
	}
	return svcgate.Errorf(svcgate.CodeForbidden, "%s may not %s %s", describe(pr), perm, service)
}

// Allowed reports whether any of roles allows perm on service.
func (p *Policy) Allowed(roles []string, perm svcgate.Permission, service string) bool {
	for _, role := range roles {
		for _, r := range p.roles[role] {
			if !slices.Contains(r.Permissions, perm) {
				continue
			}
			if service == "" || matchAny(r.Services, service) {
				return true
			}
		}
	}
	return false
}

// Grants reports whether roles hold every permission that other holds, on
// every service: a caller may only hand out rights it has.
func (p *Policy) Grants(roles, other []string) bool {
	for _, role := range other {
		for _, r := range p.roles[role] {
			for _, perm := range r.Permissions {
				for _, glob := range r.Services {
					if !p.Allowed(roles, perm, glob) {
						return false
					}
				}
			}
		}
	}
	return true
}

func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

func describe(pr svcgate.Principal) string {
	if pr.Name != "" {
		return strings.TrimSpace(pr.Kind + " " + pr.Name)
	}
	return "caller"
}
