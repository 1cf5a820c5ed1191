package rbac_test

import (
	"testing"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/rbac"
)

func TestBuiltinRoles(t *testing.T) {
	p := rbac.Builtin()
	tests := []struct {
		role    string
		perm    svcgate.Permission
		service string
		allowed bool
	}{
		{"viewer", svcgate.PermRead, "web", true},
		{"viewer", svcgate.PermRead, "", true},
		{"viewer", svcgate.Permission(svcgate.ActionStart), "web", false},
		{"operator", svcgate.Permission(svcgate.ActionStop), "web", true},
		{"operator", svcgate.PermCreate, "web", false},
		{"operator", svcgate.PermAdmin, "", false},
		{"admin", svcgate.PermDelete, "web", true},
		{"admin", svcgate.PermAdmin, "", true},
		{"admin", svcgate.PermBreakGlass, "sshd", false},
		{"unknown", svcgate.PermRead, "web", false},
		{"", svcgate.PermRead, "web", false},
	}
	for _, tt := range tests {
		name := tt.role + " " + string(tt.perm) + " " + tt.service
		t.Run(name, func(t *testing.T) {
			err := p.Authorize(svcgate.Principal{Name: "t", Kind: "token", Roles: []string{tt.role}}, tt.perm, tt.service)
			if tt.allowed && err != nil {
				t.Fatalf("denied: %v", err)
			}
			if !tt.allowed && !svcgate.IsCode(err, svcgate.CodeForbidden) {
				t.Fatalf("Authorize = %v; want forbidden", err)
			}
		})
	}
}

func TestGrantsNeverMoreThanHeld(t *testing.T) {
	p := rbac.Builtin()
	if p.Grants([]string{"viewer"}, []string{"admin"}) {
		t.Error("a viewer may hand out admin")
	}
	if p.Grants([]string{"operator"}, []string{"admin"}) {
		t.Error("an operator may hand out admin")
	}
	if !p.Grants([]string{"admin"}, []string{"operator", "viewer"}) {
		t.Error("an admin may not hand out operator")
	}
}
