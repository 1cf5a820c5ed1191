package svcgate_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/svcgate/svcgate"
)

func TestValidateName(t *testing.T) {
	valid := []string{"web", "nginx.service", "getty@tty1.service", "MSSQL$SQLEXPRESS", "a_b-c", "x:y", "{guid}", strings.Repeat("a", 256)}
	for _, name := range valid {
		if err := svcgate.ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", name, err)
		}
	}
	invalid := []string{"", "a/b", `a\b`, "../x", "a..b", "a b", "a\x00b", "-x", "--help", ".hidden",
		"a;id", "a$(id)", "a|b", "a\nb", strings.Repeat("a", 257), "é"}
	for _, name := range invalid {
		err := svcgate.ValidateName(name)
		if !svcgate.IsCode(err, svcgate.CodeInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want invalid_name", name, err)
		}
	}
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"web", "../x", "a b", "-x", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if svcgate.ValidateName(name) != nil {
			return
		}
		// Whatever passes can be neither a flag, a path nor a shell word.
		if strings.ContainsAny(name, "/\\ \t\n\x00;|&()<>`'\"*?") ||
			strings.HasPrefix(name, "-") || strings.Contains(name, "..") || len(name) > svcgate.MaxNameLen {
			t.Fatalf("ValidateName accepted %q", name)
		}
	})
}

func TestActionTargets(t *testing.T) {
	want := map[svcgate.Action]svcgate.State{
		svcgate.ActionStart: svcgate.StateRunning, svcgate.ActionStop: svcgate.StateStopped,
		svcgate.ActionRestart: svcgate.StateRunning, svcgate.ActionPause: svcgate.StatePaused,
		svcgate.ActionContinue: svcgate.StateRunning, svcgate.ActionReload: svcgate.StateRunning,
	}
	for _, a := range svcgate.Actions {
		if !a.Valid() || a.Target() != want[a] {
			t.Errorf("%s: valid %v, target %s; want %s", a, a.Valid(), a.Target(), want[a])
		}
	}
	if svcgate.Action("launch").Valid() {
		t.Error("an unknown action is valid")
	}
}

func TestDurationText(t *testing.T) {
	var d svcgate.Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || time.Duration(d) != 90*time.Second {
		t.Fatalf("UnmarshalText(1m30s) = %v, %v", time.Duration(d), err)
	}
	if b, _ := d.MarshalText(); string(b) != "1m30s" {
		t.Errorf("MarshalText = %s", b)
	}
	for _, bad := range []string{"-5s", "5", "soon", ""} {
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted", bad)
		}
	}
}

func TestErrorHelpers(t *testing.T) {
	cause := errors.New("open /secret/path: permission denied")
	e := &svcgate.Error{Code: svcgate.CodeBackendError, Message: "could not start web", Err: cause}
	wrapped := fmt.Errorf("start %q: %w", "web", e)
	if svcgate.ErrorCode(wrapped) != svcgate.CodeBackendError || svcgate.ErrorMessage(wrapped) != "could not start web" {
		t.Errorf("code %q message %q", svcgate.ErrorCode(wrapped), svcgate.ErrorMessage(wrapped))
	}
	if !errors.Is(wrapped, cause) {
		t.Error("the cause is not reachable with errors.Is")
	}
	plain := errors.New("dial unix /run/x: secret detail")
	if svcgate.ErrorCode(plain) != svcgate.CodeInternal || strings.Contains(svcgate.ErrorMessage(plain), "secret") {
		t.Errorf("a plain error: code %q, message %q", svcgate.ErrorCode(plain), svcgate.ErrorMessage(plain))
	}
	if svcgate.ErrorCode(nil) != "" || svcgate.IsCode(nil, svcgate.CodeInternal) {
		t.Error("nil has a code")
	}
}
