package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/svcgate/svcgate"
	"github.com/svcgate/svcgate/internal/control"
)

// MaxBatchItems is the most items one POST /v1/actions may carry.
const MaxBatchItems = 1000

// batchParallelism bounds the items of one batch running at once; the
// controller still serializes the items that name the same service.
const batchParallelism = 64

// resultBody is the body of every successful mutation: an action, a
// create, an update or a delete, real or dry run.
type resultBody struct {
	Service    *svcgate.Service `json:"service,omitempty"`
	Changed    bool             `json:"changed"`
	DurationMS int64            `json:"duration_ms"`
	Stopped    []string         `json:"stopped,omitempty"`
	DryRun     bool             `json:"dry_run,omitempty"`
	Plan       []control.Step   `json:"plan,omitzero"` // present, maybe empty, on every dry run
	Deleted    string           `json:"deleted,omitempty"`
}

func newResultBody(res control.Result) resultBody {
	b := resultBody{
		Changed:    res.Changed,
		DurationMS: res.Duration.Milliseconds(),
		Stopped:    res.Stopped,
		DryRun:     res.DryRun,
		Plan:       res.Plan,
	}
	// A dry-run create has no service yet, and a deleted one none any
	// more: the document makes service optional for those.
	if res.Service.Name != "" {
		s := normalize(res.Service)
		b.Service = &s
	}
	if res.DryRun && b.Plan == nil {
		b.Plan = []control.Step{}
	}
	return b
}

// statusOfResult is 202 when the caller did not wait and the target state
// is not reached yet, and 200 otherwise.
func statusOfResult(res control.Result) int {
	if res.Pending && !res.DryRun {
		return http.StatusAccepted
	}
	return http.StatusOK
}

// controlOptions reads the query parameters of the action routes: wait
// (a Go duration, default 30s, 0 to not wait, at most 5m), dry_run and
// dependents=stop.
func controlOptions(q url.Values) (control.Options, error) {
	o := control.Options{Wait: svcgate.WaitDefault}
	if v, ok := q["wait"]; ok {
		d, err := time.ParseDuration(v[0])
		switch {
		case err != nil:
			return o, svcgate.Errorf(svcgate.CodeInvalidWait, "wait %q is not a duration such as 30s or 2m", v[0])
		case d < 0:
			return o, svcgate.Errorf(svcgate.CodeInvalidWait, "wait %q is negative", v[0])
		case d > svcgate.WaitMax:
			return o, svcgate.Errorf(svcgate.CodeInvalidWait, "wait %q is longer than the maximum of %s", v[0], svcgate.WaitMax)
		}
		o.Wait = d
	}
	var err error
	if o.DryRun, err = boolParam(q, "dry_run"); err != nil {
		return o, err
	}
	if v, ok := q["dependents"]; ok {
		if v[0] != "stop" {
			return o, svcgate.Errorf(svcgate.CodeInvalidRequest, "dependents must be \"stop\", not %q", v[0])
		}
		o.StopDependents = true
	}
	return o, nil
}

// boolParam reads an optional true/false query parameter. Nothing but the
// two words is accepted: ?dry_run=yes must not quietly mean a real run.
func boolParam(q url.Values, name string) (bool, error) {
	v, ok := q[name]
	if !ok {
		return false, nil
	}
	switch v[0] {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, svcgate.Errorf(svcgate.CodeInvalidRequest, "%s must be true or false, not %q", name, v[0])
}

// handleAction runs one action on one service. guard has validated the
// name and the action and authorized the action on that service.
func handleAction(c Control, limit int64) http.Handler {
	type body struct {
		Args []string `json:"args"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, a := r.PathValue("name"), svcgate.Action(r.PathValue("action"))
		o, err := controlOptions(r.URL.Query())
		if err != nil {
			writeError(w, r, err)
			return
		}
		b, err := decodeOptional[body](w, r, limit)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if len(b.Args) > 0 && a != svcgate.ActionStart {
			writeError(w, r, svcgate.Errorf(svcgate.CodeInvalidRequest, "args are passed on start only, not on %s", a))
			return
		}
		o.Args = b.Args
		res, err := c.Control(r.Context(), name, a, o)
		if err != nil {
			writeError(w, r, err)
			return
		}
		encode(w, statusOfResult(res), newResultBody(res))
	})
}

// BatchItem is one action of a batch (POST /v1/actions).
type BatchItem struct {
	ServiceID string         `json:"service_id"`
	Action    svcgate.Action `json:"action"`
}

// BatchItemResult is the outcome of one batch item. Status is the HTTP
// status the item would have had on its own; Problem is set when it
// failed.
type BatchItemResult struct {
	ServiceID  string           `json:"service_id"`
	Action     svcgate.Action   `json:"action"`
	Status     int              `json:"status"`
	Changed    bool             `json:"changed"`
	Service    *svcgate.Service `json:"service,omitempty"`
	DurationMS int64            `json:"duration_ms"`
	Stopped    []string         `json:"stopped,omitempty"`
	DryRun     bool             `json:"dry_run,omitempty"`
	Plan       []control.Step   `json:"plan,omitzero"`
	Problem    *Problem         `json:"error,omitempty"`
}

// Err returns the item's error as an *svcgate.Error, or nil when it
// succeeded.
func (r BatchItemResult) Err() error {
	if r.Problem == nil {
		return nil
	}
	return r.Problem.Err()
}

// BatchResult is the body of POST /v1/actions: one result per item, in
// request order, and the counts of items that succeeded (2xx) and failed.
type BatchResult struct {
	Results   []BatchItemResult `json:"results"`
	Succeeded int               `json:"succeeded"`
	Failed    int               `json:"failed"`
}

// handleBatch runs the items of a batch concurrently. The route needs
// only authentication: each item is validated and authorized here, and a
// bad item fails alone, in its result, without failing the batch.
func handleBatch(c Control, authz Authorizer, limit int64) http.Handler {
	type request struct {
		ServiceID string         `json:"service_id"`
		Action    svcgate.Action `json:"action"`
		Items     []BatchItem    `json:"items"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, err := controlOptions(r.URL.Query())
		if err != nil {
			writeError(w, r, err)
			return
		}
		req, err := decode[request](w, r, limit)
		if err != nil {
			writeError(w, r, err)
			return
		}
		items := req.Items
		single := req.ServiceID != "" || req.Action != ""
		switch {
		case single && items != nil:
			err = svcgate.Errorf(svcgate.CodeInvalidRequest, "give either service_id and action, or items; not both")
		case single:
			items = []BatchItem{{ServiceID: req.ServiceID, Action: req.Action}}
		case len(items) == 0:
			err = svcgate.Errorf(svcgate.CodeInvalidRequest, "the batch is empty; give service_id and action, or items")
		case len(items) > MaxBatchItems:
			err = svcgate.Errorf(svcgate.CodeInvalidRequest, "the batch has %d items; at most %d are allowed", len(items), MaxBatchItems)
		}
		if err != nil {
			writeError(w, r, err)
			return
		}

		ri := infoFrom(r.Context())
		out := BatchResult{Results: make([]BatchItemResult, len(items))}
		sem := make(chan struct{}, batchParallelism)
		var wg sync.WaitGroup
		for i, it := range items {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				out.Results[i] = runItem(r.Context(), c, authz, it, o, ri)
			})
		}
		wg.Wait()
		for _, res := range out.Results {
			if res.Problem == nil {
				out.Succeeded++
			} else {
				out.Failed++
			}
		}
		encode(w, http.StatusOK, out)
	})
}

// runItem validates, authorizes and runs one batch item, in the order
// guard uses for a single action.
func runItem(ctx context.Context, c Control, authz Authorizer, it BatchItem, o control.Options, ri *requestInfo) (res BatchItemResult) {
	res = BatchItemResult{ServiceID: it.ServiceID, Action: it.Action}
	fail := func(err error) BatchItemResult {
		p := problemFor(err, ri.traceID)
		if p.Status >= 500 {
			ri.logger.LogAttrs(ctx, slog.LevelError, "batch item failed", slog.String("trace_id", ri.traceID),
				slog.String("service", it.ServiceID), slog.String("action", string(it.Action)), slog.Any("error", err))
		}
		res.Status, res.Problem, res.Service = p.Status, &p, p.Service
		return res
	}
	// A panic in one item must not take the agent down with it.
	defer func() {
		if v := recover(); v != nil {
			res = fail(fmt.Errorf("batch item panicked: %v", v))
		}
	}()
	if err := svcgate.ValidateName(it.ServiceID); err != nil {
		return fail(err)
	}
	if !it.Action.Valid() {
		return fail(unknownAction(it.Action))
	}
	if err := authorize(ctx, authz, svcgate.ActionPermission(it.Action), it.ServiceID); err != nil {
		return fail(err)
	}
	cr, err := c.Control(ctx, it.ServiceID, it.Action, o)
	if err != nil {
		return fail(err)
	}
	b := newResultBody(cr)
	res.Status = statusOfResult(cr)
	res.Changed, res.Service, res.DurationMS = b.Changed, b.Service, b.DurationMS
	res.Stopped, res.DryRun, res.Plan = b.Stopped, b.DryRun, b.Plan
	return res
}
