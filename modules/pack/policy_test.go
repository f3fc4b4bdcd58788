package pack

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func intPtr(n int) *int { return &n }

// A policy read back from the store is the policy that was written, so that the API answers
// in the shape it was given.
func TestPolicyStoreRoundTrip(t *testing.T) {
	t.Parallel()
	for _, p := range []Policy{
		{Ref: "ops.per_host", Name: "per_host", ActionRef: "demo.run", Enabled: true,
			Concurrency:    &Concurrency{Limit: 2, Method: MethodCancel, Parameters: []string{"host", "region"}},
			MaxQueueLength: intPtr(0), QueueTimeoutSeconds: intPtr(30)},
		{Ref: "demo.rate", Name: "rate", PackRef: "demo",
			RateLimit: &RateLimit{MaxExecutions: 10, WindowSeconds: 60, Method: MethodEnqueue}},
		{Ref: "demo.both", Name: "both", ActionRef: "demo.run", Enabled: true,
			Concurrency: &Concurrency{Limit: 1, Method: MethodEnqueue},
			RateLimit:   &RateLimit{MaxExecutions: 1, WindowSeconds: 5, Method: MethodCancel}},
	} {
		sp := StorePolicy(p)
		// The store answers an empty parameter list and the default methods where none were set.
		if sp.ConcurrencyParameters == nil {
			sp.ConcurrencyParameters = []string{}
		}
		if sp.ConcurrencyMethod == "" {
			sp.ConcurrencyMethod = MethodEnqueue
		}
		if sp.RateMethod == "" {
			sp.RateMethod = MethodEnqueue
		}
		require.Equal(t, p, PolicyFromStore(sp), p.Ref)
	}

	sp := StorePolicy(Policy{Ref: "ops.x", ActionRef: "demo.run", Concurrency: &Concurrency{Limit: 3}})
	require.Equal(t, "demo.run", *sp.ActionRef)
	require.Nil(t, sp.PackRef)
	require.Equal(t, 3, *sp.ConcurrencyLimit)
	require.Nil(t, sp.RateMaxExecutions)
	require.Nil(t, sp.RateWindowSeconds)
	require.Nil(t, sp.FromPack, "a policy of the API belongs to no pack")
}

// Outside a pack the ref names its own pack, so it must be whole and well formed; the other
// rules and defaults are the loader's.
func TestValidatePolicy(t *testing.T) {
	t.Parallel()
	ok := func() Policy {
		return Policy{Ref: "ops.limit", ActionRef: "demo.run", Concurrency: &Concurrency{Limit: 1}}
	}
	p := ok()
	require.NoError(t, ValidatePolicy(&p))
	require.Equal(t, "limit", p.Name)
	require.Equal(t, MethodEnqueue, p.Concurrency.Method)

	tests := []struct {
		name    string
		edit    func(p *Policy)
		wantErr string
	}{
		{"no ref", func(p *Policy) { p.Ref = ""; p.Name = "limit" }, "ref: required"},
		{"ref without pack", func(p *Policy) { p.Ref = "limit" }, `ref: "limit": want <pack>.<name>`},
		{"bad pack in ref", func(p *Policy) { p.Ref = "Ops.limit" }, `ref: pack ref "Ops" is not valid`},
		{"bad name in ref", func(p *Policy) { p.Ref = "ops.Limit!" }, `ref: name "Limit!" is not valid`},
		{"name differs", func(p *Policy) { p.Name = "other" }, `name: "other" does not match ref "ops.limit"`},
		{"limit 0", func(p *Policy) { p.Concurrency.Limit = 0 }, "concurrency.limit: want more than 0, got 0"},
		{"unknown method", func(p *Policy) { p.Concurrency.Method = "sometimes" }, `concurrency.method: unknown method "sometimes"`},
		{"no scope", func(p *Policy) { p.ActionRef = "" }, "action_ref: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := ok()
			tt.edit(&p)
			err := ValidatePolicy(&p)
			require.ErrorContains(t, err, tt.wantErr)
			var perr *Error
			require.ErrorAs(t, err, &perr)
		})
	}
}
