// Package authn turns the credentials of an HTTP request into a
// svcgate.Principal: API tokens now, client certificates and OIDC later.
package authn

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/svcgate/svcgate"
)

// TokenPrefix starts every API token, so that a leaked one is recognisable
// by secret scanners.
const TokenPrefix = "svcg_"

// tokenBytes is the entropy of a token: 256 bits.
const tokenBytes = 32

// maxAuthorization caps the Authorization header that is looked at; a
// token is far shorter, and nothing longer is hashed.
const maxAuthorization = 256

// Token is the stored form of an API token: never the secret, only its
// SHA-256.
type Token struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Hash     string     `json:"sha256"`
	Roles    []string   `json:"roles"`
	Created  time.Time  `json:"created"`
	Expires  *time.Time `json:"expires,omitempty"`
	LastUsed *time.Time `json:"-"`
}

// Tokens is the token store kept in one JSON file (mode 0600) under the
// state directory. It is safe for concurrent use.
type Tokens struct {
	path string
	now  func() time.Time

	mu     sync.RWMutex
	tokens []Token
	hashes [][sha256.Size]byte // parallel to tokens
}

// The files the store keeps under the state directory.
const (
	TokensFile     = "tokens.json"
	AdminTokenFile = "admin.token"
)

// OpenTokens loads the token store of stateDir, creating the directory
// (0700) when needed. now may be nil.
func OpenTokens(stateDir string, now func() time.Time) (*Tokens, error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	t := &Tokens{path: filepath.Join(stateDir, TokensFile), now: now}
	b, err := os.ReadFile(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	var stored []Token
	if err := json.Unmarshal(b, &stored); err != nil {
		return nil, fmt.Errorf("read tokens %s: %w", t.path, err)
	}
	for _, tok := range stored {
		h, err := hex.DecodeString(tok.Hash)
		if err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("read tokens %s: token %s has a malformed hash", t.path, tok.ID)
		}
		t.tokens = append(t.tokens, tok)
		t.hashes = append(t.hashes, [sha256.Size]byte(h))
	}
	return t, nil
}

// Len returns the number of stored tokens.
func (t *Tokens) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.tokens)
}

// Bootstrap makes sure an operator can get in on first start: when the
// store holds no token it creates an admin token and writes the secret to
// stateDir/admin.token with mode 0600. It returns that file's path and
// whether it created the token now.
func (t *Tokens) Bootstrap(stateDir string) (path string, created bool, err error) {
	path = filepath.Join(stateDir, AdminTokenFile)
	if t.Len() > 0 {
		return path, false, nil
	}
	secret, _, err := t.Create("admin", []string{"admin"}, 0)
	if err != nil {
		return "", false, err
	}
	if err := writeFileAtomic(path, []byte(secret+"\n")); err != nil {
		return "", false, fmt.Errorf("write admin token: %w", err)
	}
	return path, true, nil
}

// Create makes a token with the given roles and lifetime (0 for none),
// stores its hash and returns the secret, the only time it is seen.
func (t *Tokens) Create(name string, roles []string, ttl time.Duration) (secret string, tok Token, err error) {
	raw := make([]byte, tokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", Token{}, err
	}
	secret = TokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(secret))
	id := make([]byte, 6)
	if _, err := rand.Read(id); err != nil {
		return "", Token{}, err
	}
	tok = Token{ID: hex.EncodeToString(id), Name: name, Hash: hex.EncodeToString(sum[:]), Roles: roles, Created: t.now().UTC()}
	if ttl > 0 {
		exp := tok.Created.Add(ttl)
		tok.Expires = &exp
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tokens = append(t.tokens, tok)
	t.hashes = append(t.hashes, sum)
	if err := t.saveLocked(); err != nil {
		t.tokens, t.hashes = t.tokens[:len(t.tokens)-1], t.hashes[:len(t.hashes)-1]
		return "", Token{}, err
	}
	return secret, tok, nil
}

func (t *Tokens) saveLocked() error {
	b, err := json.MarshalIndent(t.tokens, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(t.path, append(b, '\n'))
}

// Authenticate implements the API's authenticator for bearer tokens. It
// compares the SHA-256 of the presented token with every stored hash in
// constant time, so neither the result nor the timing says how close a guess
// was. It fails with unauthenticated.
func (t *Tokens) Authenticate(r *http.Request) (svcgate.Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return svcgate.Principal{}, svcgate.Errorf(svcgate.CodeUnauthenticated, "missing bearer token")
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || len(h) > maxAuthorization {
		return svcgate.Principal{}, svcgate.Errorf(svcgate.CodeUnauthenticated, "malformed Authorization header; want Bearer <token>")
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	t.mu.RLock()
	defer t.mu.RUnlock()
	match := -1
	for i := range t.hashes {
		if subtle.ConstantTimeCompare(sum[:], t.hashes[i][:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return svcgate.Principal{}, svcgate.Errorf(svcgate.CodeUnauthenticated, "invalid token")
	}
	tok := t.tokens[match]
	if tok.Expires != nil && !t.now().Before(*tok.Expires) {
		return svcgate.Principal{}, svcgate.Errorf(svcgate.CodeUnauthenticated, "token expired")
	}
	return svcgate.Principal{ID: tok.ID, Name: tok.Name, Kind: "token", Roles: tok.Roles}, nil
}

// writeFileAtomic replaces path with data (mode 0600) so that a crash never
// leaves a half-written file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
