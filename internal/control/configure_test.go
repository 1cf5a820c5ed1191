package control_test

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/control"
)

func TestCreateRejectsInvalidSpecsBeforeAnyBackendCall(t *testing.T) {
	valid := svcgate.ServiceSpec{Name: "demo", BinaryPath: absBinary(), StartType: svcgate.StartManual}
	type tc struct {
		name   string
		change func(*svcgate.ServiceSpec)
		code   string
	}
	cases := []tc{
		{"missing binary path", func(s *svcgate.ServiceSpec) { s.BinaryPath = "" }, svcgate.CodeInvalidRequest},
		{"bare command name", func(s *svcgate.ServiceSpec) { s.BinaryPath = "demo" }, svcgate.CodeInvalidRequest},
		{"relative path", func(s *svcgate.ServiceSpec) { s.BinaryPath = "bin/demo" }, svcgate.CodeInvalidRequest},
		{"dot relative path", func(s *svcgate.ServiceSpec) { s.BinaryPath = "./demo" }, svcgate.CodeInvalidRequest},
		{"relative working directory", func(s *svcgate.ServiceSpec) { s.Dir = "srv/demo" }, svcgate.CodeInvalidRequest},
		{"drive-relative path", func(s *svcgate.ServiceSpec) { s.BinaryPath = `C:demo.exe` }, svcgate.CodeInvalidRequest},
		{"empty name", func(s *svcgate.ServiceSpec) { s.Name = "" }, svcgate.CodeInvalidName},
		{"name like a path", func(s *svcgate.ServiceSpec) { s.Name = "../demo" }, svcgate.CodeInvalidName},
		{"name like a flag", func(s *svcgate.ServiceSpec) { s.Name = "-demo" }, svcgate.CodeInvalidName},
		{"unknown start type", func(s *svcgate.ServiceSpec) { s.StartType = "sometimes" }, svcgate.CodeInvalidRequest},
		{"bad dependency name", func(s *svcgate.ServiceSpec) { s.Dependencies = []string{"db", "a b"} }, svcgate.CodeInvalidRequest},
		{"unknown recovery action", func(s *svcgate.ServiceSpec) {
			s.Recovery = &svcgate.Recovery{Actions: []svcgate.RecoveryAction{{Type: "restart"}, {Type: "reboot"}}}
		}, svcgate.CodeInvalidRequest},
	}
	if runtime.GOOS != "windows" {
		// A drive-letter path means nothing to a Unix service manager: it
		// would be looked up relative to its working directory.
		cases = append(cases, tc{"windows path on unix", func(s *svcgate.ServiceSpec) { s.BinaryPath = `C:\demo\demo.exe` }, svcgate.CodeInvalidRequest})
	} else {
		cases = append(cases, tc{"rooted path without a drive", func(s *svcgate.ServiceSpec) { s.BinaryPath = `\demo\demo.exe` }, svcgate.CodeInvalidRequest})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newFake()
			c := control.New(b, fast)
			spec := valid
			tc.change(&spec)
			for _, dry := range []bool{false, true} {
				_, err := c.Create(t.Context(), spec, dry)
				wantCode(t, err, tc.code)
			}
			if calls := b.allCalls(); len(calls) != 0 {
				t.Errorf("backend called: %v", calls)
			}
		})
	}
}

func TestCreate(t *testing.T) {
	spec := svcgate.ServiceSpec{
		Name: "demo", DisplayName: "Demo", BinaryPath: absBinary(), Args: []string{"--port", "9000"},
		StartType: svcgate.StartAuto, Dependencies: []string{"db"},
		Recovery: &svcgate.Recovery{Actions: []svcgate.RecoveryAction{{Type: "restart", Delay: svcgate.Duration(5 * time.Second)}}},
	}

	t.Run("dry run plans the creation and creates nothing", func(t *testing.T) {
		b := newFake()
		res, err := control.New(b, fast).Create(t.Context(), spec, true)
		if err != nil {
			t.Fatal(err)
		}
		want := []control.Step{{Service: "demo", Action: "create", To: svcgate.StateStopped}}
		if !res.DryRun || !res.Changed || !slices.EqualFunc(res.Plan, want, sameStep) {
			t.Errorf("result = dry run %v changed %v plan %+v; want dry run, changed, plan %+v", res.DryRun, res.Changed, res.Plan, want)
		}
		if res.Service.Name != "demo" || res.Service.StartType != svcgate.StartAuto {
			t.Errorf("planned service = %+v", res.Service)
		}
		if calls := b.callsMatching("Create"); len(calls) != 0 {
			t.Errorf("dry run created: %v", calls)
		}
	})

	t.Run("dry run with a name that exists is a conflict", func(t *testing.T) {
		b := newFake(svc("demo", svcgate.StateRunning))
		_, err := control.New(b, fast).Create(t.Context(), spec, true)
		wantCode(t, err, svcgate.CodeConflict)
		if calls := b.callsMatching("Create"); len(calls) != 0 {
			t.Errorf("dry run created: %v", calls)
		}
	})

	t.Run("creates the service", func(t *testing.T) {
		b := newFake()
		res, err := control.New(b, fast).Create(t.Context(), spec, false)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Changed || res.DryRun || res.Service.Name != "demo" {
			t.Errorf("result = %+v", res)
		}
		if s, ok := b.state("demo"); !ok || s.StartType != svcgate.StartAuto {
			t.Errorf("backend has %+v, %v; want demo with start type auto", s, ok)
		}
	})

	t.Run("conflict from the backend passes through", func(t *testing.T) {
		b := newFake(svc("demo", svcgate.StateStopped))
		_, err := control.New(b, fast).Create(t.Context(), spec, false)
		wantCode(t, err, svcgate.CodeConflict)
	})
}

func TestUpdate(t *testing.T) {
	web := svc("web", svcgate.StateRunning)
	web.DisplayName = "Web"
	web.Description = "serves"
	web.Dependencies = []string{"db"}

	t.Run("dry run lists the fields that would change", func(t *testing.T) {
		b := newFake(web)
		u := svcgate.ServiceUpdate{
			DisplayName:  ptr("Web"), // unchanged
			Description:  ptr("serves pages"),
			StartType:    ptr(svcgate.StartAuto),
			Dependencies: ptr([]string{"db"}), // unchanged
			BinaryPath:   ptr(absBinary()),    // not shown in a snapshot: listed when set
			Env:          ptr(map[string]string{"PORT": "80"}),
		}
		res, err := control.New(b, fast).Update(t.Context(), "web", u, true)
		if err != nil {
			t.Fatal(err)
		}
		want := []control.Step{{Service: "web", Action: "update", From: svcgate.StateRunning, To: svcgate.StateRunning,
			Changes: []string{"description", "start_type", "binary_path", "env"}}}
		if !res.DryRun || !res.Changed || !slices.EqualFunc(res.Plan, want, sameStep) {
			t.Errorf("result = dry run %v changed %v plan %+v; want dry run, changed, plan %+v", res.DryRun, res.Changed, res.Plan, want)
		}
		if calls := b.callsMatching("Update"); len(calls) != 0 {
			t.Errorf("dry run updated: %v", calls)
		}
	})

	t.Run("dry run that changes nothing", func(t *testing.T) {
		b := newFake(web)
		res, err := control.New(b, fast).Update(t.Context(), "web", svcgate.ServiceUpdate{Description: ptr("serves")}, true)
		if err != nil || res.Changed || res.Plan != nil {
			t.Errorf("= changed %v plan %+v, %v; want unchanged, no plan", res.Changed, res.Plan, err)
		}
	})

	t.Run("applies the update", func(t *testing.T) {
		b := newFake(web)
		res, err := control.New(b, fast).Update(t.Context(), "web", svcgate.ServiceUpdate{StartType: ptr(svcgate.StartDisabled)}, false)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Changed || res.Service.StartType != svcgate.StartDisabled {
			t.Errorf("result = changed %v start type %s; want changed, disabled", res.Changed, res.Service.StartType)
		}
		if s, _ := b.state("web"); s.StartType != svcgate.StartDisabled {
			t.Errorf("backend start type = %s, want disabled", s.StartType)
		}
	})

	t.Run("an update that changes nothing reports no change", func(t *testing.T) {
		b := newFake(web)
		res, err := control.New(b, fast).Update(t.Context(), "web", svcgate.ServiceUpdate{DisplayName: ptr("Web")}, false)
		if err != nil {
			t.Fatal(err)
		}
		if res.Changed || res.Service.Name != "web" {
			t.Errorf("result = changed %v service %q; want unchanged web", res.Changed, res.Service.Name)
		}
		if calls := b.callsMatching("Update"); len(calls) != 0 {
			t.Errorf("backend updated for nothing: %v", calls)
		}
	})

	for _, tc := range []struct {
		name    string
		service string
		u       svcgate.ServiceUpdate
		code    string
	}{
		{"relative binary path", "web", svcgate.ServiceUpdate{BinaryPath: ptr("bin/web")}, svcgate.CodeInvalidRequest},
		{"empty binary path", "web", svcgate.ServiceUpdate{BinaryPath: ptr("")}, svcgate.CodeInvalidRequest},
		{"relative working directory", "web", svcgate.ServiceUpdate{Dir: ptr("srv")}, svcgate.CodeInvalidRequest},
		{"empty start type", "web", svcgate.ServiceUpdate{StartType: ptr(svcgate.StartType(""))}, svcgate.CodeInvalidRequest},
		{"unknown start type", "web", svcgate.ServiceUpdate{StartType: ptr(svcgate.StartType("later"))}, svcgate.CodeInvalidRequest},
		{"bad dependency", "web", svcgate.ServiceUpdate{Dependencies: ptr([]string{"../x"})}, svcgate.CodeInvalidRequest},
		{"bad name", "we/b", svcgate.ServiceUpdate{Description: ptr("x")}, svcgate.CodeInvalidName},
	} {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			b := newFake(web)
			_, err := control.New(b, fast).Update(t.Context(), tc.service, tc.u, false)
			wantCode(t, err, tc.code)
			if calls := b.allCalls(); len(calls) != 0 {
				t.Errorf("backend called: %v", calls)
			}
		})
	}

	t.Run("unknown service", func(t *testing.T) {
		_, err := control.New(newFake(), fast).Update(t.Context(), "ghost", svcgate.ServiceUpdate{Description: ptr("x")}, false)
		wantCode(t, err, svcgate.CodeServiceNotFound)
	})
}

func TestDelete(t *testing.T) {
	t.Run("refuses a running service without stop", func(t *testing.T) {
		for _, dry := range []bool{false, true} {
			b := newFake(svc("web", svcgate.StateRunning))
			_, err := control.New(b, fast).Delete(t.Context(), "web", false, dry)
			e := wantCode(t, err, svcgate.CodeConflict)
			if e.Service == nil || e.Service.State != svcgate.StateRunning {
				t.Errorf("conflict carries %+v, want the running service", e.Service)
			}
			if calls := append(b.callsMatching("Control"), b.callsMatching("Delete")...); len(calls) != 0 {
				t.Errorf("backend acted: %v", calls)
			}
			if _, ok := b.state("web"); !ok {
				t.Error("the service is gone")
			}
		}
	})

	t.Run("with stop, stops then deletes", func(t *testing.T) {
		b := newFake(svc("web", svcgate.StateRunning))
		res, err := control.New(b, fast).Delete(t.Context(), "web", true, false)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Changed || res.Service.Name != "web" || !res.Service.State.Down() {
			t.Errorf("result = changed %v service %s %s; want changed, web down", res.Changed, res.Service.Name, res.Service.State)
		}
		var acts []string
		for _, c := range b.allCalls() {
			if c[:3] != "Get" {
				acts = append(acts, c)
			}
		}
		if want := []string{"Control web stop", "Delete web"}; !slices.Equal(acts, want) {
			t.Errorf("backend calls = %v, want %v", acts, want)
		}
		if _, ok := b.state("web"); ok {
			t.Error("the service still exists")
		}
	})

	t.Run("dry run with stop plans both steps", func(t *testing.T) {
		b := newFake(svc("web", svcgate.StateRunning))
		res, err := control.New(b, fast).Delete(t.Context(), "web", true, true)
		if err != nil {
			t.Fatal(err)
		}
		want := []control.Step{
			{Service: "web", Action: "stop", From: svcgate.StateRunning, To: svcgate.StateStopped},
			{Service: "web", Action: "delete", From: svcgate.StateStopped},
		}
		if !res.DryRun || !slices.EqualFunc(res.Plan, want, sameStep) {
			t.Errorf("plan = %+v, want %+v", res.Plan, want)
		}
		if calls := append(b.callsMatching("Control"), b.callsMatching("Delete")...); len(calls) != 0 {
			t.Errorf("dry run acted: %v", calls)
		}
	})

	t.Run("deletes a stopped service without stopping it", func(t *testing.T) {
		b := newFake(svc("web", svcgate.StateFailed))
		if _, err := control.New(b, fast).Delete(t.Context(), "web", true, false); err != nil {
			t.Fatal(err)
		}
		if calls := b.callsMatching("Control"); len(calls) != 0 {
			t.Errorf("stopped a service that was down: %v", calls)
		}
		if _, ok := b.state("web"); ok {
			t.Error("the service still exists")
		}
	})

	t.Run("a stop that does not finish in time deletes nothing", func(t *testing.T) {
		b := newFake(svc("stuck", svcgate.StateRunning))
		b.script("stuck", svcgate.ActionStop, step{0, svcgate.StateStopPending, 0})
		ctx, cancel := context.WithTimeout(t.Context(), 80*time.Millisecond)
		defer cancel()
		_, err := control.New(b, fast).Delete(ctx, "stuck", true, false)
		e := wantCode(t, err, svcgate.CodeTimeout)
		if e.Service == nil || e.Service.Name != "stuck" || e.Service.State != svcgate.StateStopPending {
			t.Errorf("timeout carries %+v, want stuck stop_pending", e.Service)
		}
		if calls := b.callsMatching("Delete"); len(calls) != 0 {
			t.Errorf("deleted anyway: %v", calls)
		}
	})

	t.Run("unknown service", func(t *testing.T) {
		_, err := control.New(newFake(), fast).Delete(t.Context(), "ghost", true, false)
		wantCode(t, err, svcgate.CodeServiceNotFound)
	})

	t.Run("bad name", func(t *testing.T) {
		b := newFake()
		_, err := control.New(b, fast).Delete(t.Context(), "..", true, false)
		wantCode(t, err, svcgate.CodeInvalidName)
		if calls := b.allCalls(); len(calls) != 0 {
			t.Errorf("backend called: %v", calls)
		}
	})
}

func TestBackendWithoutConfigurerCannotCreateUpdateOrDelete(t *testing.T) {
	b := newFake(svc("web", svcgate.StateStopped))
	c := control.New(backendOnly{b}, fast)
	for _, dry := range []bool{false, true} {
		_, err := c.Create(t.Context(), svcgate.ServiceSpec{Name: "demo", BinaryPath: absBinary()}, dry)
		wantCode(t, err, svcgate.CodeUnsupportedAction)
		_, err = c.Update(t.Context(), "web", svcgate.ServiceUpdate{Description: ptr("x")}, dry)
		wantCode(t, err, svcgate.CodeUnsupportedAction)
		_, err = c.Delete(t.Context(), "web", false, dry)
		wantCode(t, err, svcgate.CodeUnsupportedAction)
	}
	if _, ok := b.state("web"); !ok {
		t.Error("the service is gone")
	}
	// Control does not need the capability.
	if _, err := c.Control(t.Context(), "web", svcgate.ActionStart, control.Options{Wait: time.Second}); err != nil {
		t.Errorf("Control through a backend without Configurer: %v", err)
	}
}
