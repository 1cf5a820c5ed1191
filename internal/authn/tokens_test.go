package authn_test

import (
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/authn"
)

func request(auth string) *http.Request {
	r, _ := http.NewRequest("GET", "/v1/services", nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	return r
}

func TestBootstrapCreatesOneAdminTokenOnFirstStartOnly(t *testing.T) {
	dir := t.TempDir()
	tokens, err := authn.OpenTokens(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	path, created, err := tokens.Bootstrap(dir)
	if err != nil || !created {
		t.Fatalf("Bootstrap = %q, %v, %v; want a created token", path, created, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimSpace(string(b))
	if !strings.HasPrefix(secret, authn.TokenPrefix) || len(secret) != len(authn.TokenPrefix)+43 {
		t.Fatalf("token %q: want svcg_ and 256 bits in base64url", secret)
	}
	if runtime.GOOS != "windows" {
		for _, f := range []string{path, filepath.Join(dir, authn.TokensFile)} {
			if fi, _ := os.Stat(f); fi.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
			}
		}
	}
	stored, _ := os.ReadFile(filepath.Join(dir, authn.TokensFile))
	if strings.Contains(string(stored), secret) {
		t.Fatal("the token store holds the secret in clear")
	}

	// A restart loads the stored hash: the same secret works and no second
	// admin token appears.
	again, err := authn.OpenTokens(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, created, _ := again.Bootstrap(dir); created || again.Len() != 1 {
		t.Fatalf("second Bootstrap created=%v len=%d; want no new token", created, again.Len())
	}
	p, err := again.Authenticate(request("Bearer " + secret))
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != "token" || len(p.Roles) != 1 || p.Roles[0] != "admin" {
		t.Fatalf("principal %+v; want an admin token", p)
	}
}

func TestAuthenticateRejects(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tokens, err := authn.OpenTokens(t.TempDir(), clock)
	if err != nil {
		t.Fatal(err)
	}
	good, _, err := tokens.Create("ci", []string{"operator"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Authenticate(request("Bearer " + good)); err != nil {
		t.Fatalf("valid token rejected: %v", err)
	}
	for name, auth := range map[string]string{
		"no header":            "",
		"another scheme":       "Basic " + good,
		"no scheme":            good,
		"a wrong token":        "Bearer " + good[:len(good)-1] + "x",
		"an empty token":       "Bearer ",
		"a huge header":        "Bearer " + strings.Repeat(".", 1<<20),
		"the token's hash-ish": "Bearer svcg_",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tokens.Authenticate(request(auth))
			if !svcgate.IsCode(err, svcgate.CodeUnauthenticated) {
				t.Fatalf("Authenticate = %v; want unauthenticated", err)
			}
		})
	}
	t.Run("an expired token", func(t *testing.T) {
		now = now.Add(time.Hour)
		_, err := tokens.Authenticate(request("Bearer " + good))
		if !svcgate.IsCode(err, svcgate.CodeUnauthenticated) {
			t.Fatalf("Authenticate = %v; want unauthenticated", err)
		}
	})
}
