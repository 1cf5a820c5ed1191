package httpapi

import (
	"net/http"
	"net/url"

	"github.com/svcgate/svcgate"
)

const mergePatchContentType = "application/merge-patch+json"

func cannotConfigure(what string) error {
	return svcgate.Errorf(svcgate.CodeUnsupportedAction, "this agent's backend cannot %s services", what)
}

// handleCreate creates a service: 201 with Location, or 200 with the plan
// on a dry run. The name is in the body, so the create permission is
// checked here, for that name, once the body is read (scopeBody).
func handleCreate(cfg Configure, authz Authorizer, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dryRun, err := boolParam(r.URL.Query(), "dry_run")
		if err != nil {
			writeError(w, r, err)
			return
		}
		spec, err := decode[svcgate.ServiceSpec](w, r, limit)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if err := checkSpec(spec); err != nil {
			writeError(w, r, err)
			return
		}
		if err := authorize(r.Context(), authz, svcgate.PermCreate, spec.Name); err != nil {
			writeError(w, r, err)
			return
		}
		if cfg == nil {
			writeError(w, r, cannotConfigure("create"))
			return
		}
		res, err := cfg.Create(r.Context(), spec, dryRun)
		if err != nil {
			writeError(w, r, err)
			return
		}
		status := http.StatusOK
		if !res.DryRun {
			status = http.StatusCreated
			w.Header().Set("Location", "/v1/services/"+url.PathEscape(spec.Name))
		}
		encode(w, status, newResultBody(res))
	})
}

// checkSpec validates the parts of a create body that are names or
// enumerations; paths, accounts and recovery are the backend's to judge.
func checkSpec(spec svcgate.ServiceSpec) error {
	if err := svcgate.ValidateName(spec.Name); err != nil {
		return err
	}
	if spec.BinaryPath == "" {
		return svcgate.Errorf(svcgate.CodeInvalidRequest, "binary_path is required")
	}
	return checkConfig(spec.StartType, spec.Dependencies)
}

// checkConfig validates a start type and dependency names, which reach the
// OS as they are.
func checkConfig(st svcgate.StartType, deps []string) error {
	if st != "" && !st.Valid() {
		return svcgate.Errorf(svcgate.CodeInvalidRequest, "unknown start_type %q; the start types are auto, delayed_auto, manual, disabled", st)
	}
	for _, d := range deps {
		if err := svcgate.ValidateName(d); err != nil {
			return err
		}
	}
	return nil
}

// handleUpdate changes the fields set in the body (JSON or JSON merge
// patch; null counts as absent, since every field can only be replaced).
func handleUpdate(cfg Configure, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dryRun, err := boolParam(r.URL.Query(), "dry_run")
		if err != nil {
			writeError(w, r, err)
			return
		}
		if cfg == nil {
			writeError(w, r, cannotConfigure("reconfigure"))
			return
		}
		u, err := decode[svcgate.ServiceUpdate](w, r, limit, jsonContentType, mergePatchContentType)
		if err != nil {
			writeError(w, r, err)
			return
		}
		var (
			st   svcgate.StartType
			deps []string
		)
		if u.StartType != nil {
			st = *u.StartType
			if st == "" {
				writeError(w, r, svcgate.Errorf(svcgate.CodeInvalidRequest, "start_type is empty"))
				return
			}
		}
		if u.Dependencies != nil {
			deps = *u.Dependencies
		}
		if err := checkConfig(st, deps); err != nil {
			writeError(w, r, err)
			return
		}
		res, err := cfg.Update(r.Context(), r.PathValue("name"), u, dryRun)
		if err != nil {
			writeError(w, r, err)
			return
		}
		encode(w, http.StatusOK, newResultBody(res))
	})
}

// handleDelete deletes a service, stopping it first with ?stop=true, and
// answers 200 with "deleted" naming it (a body rather than 204, so that
// the stopped dependents and the dry-run plan have a place).
func handleDelete(cfg Configure) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		stop, err := boolParam(q, "stop")
		if err != nil {
			writeError(w, r, err)
			return
		}
		dryRun, err := boolParam(q, "dry_run")
		if err != nil {
			writeError(w, r, err)
			return
		}
		if cfg == nil {
			writeError(w, r, cannotConfigure("delete"))
			return
		}
		name := r.PathValue("name")
		res, err := cfg.Delete(r.Context(), name, stop, dryRun)
		if err != nil {
			writeError(w, r, err)
			return
		}
		b := newResultBody(res)
		if !res.DryRun {
			b.Deleted = name
		}
		encode(w, http.StatusOK, b)
	})
}
