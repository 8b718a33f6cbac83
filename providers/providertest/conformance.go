// Package providertest is the conformance suite every provider passes: the
// contract of providers.Provider, checked the same way for every kind.
package providertest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/providers"
)

// Harness is what a kind gives the suite.
type Harness struct {
	// New returns a provider of owner, fresh for each subtest (a kind whose
	// state outlives the value, like a cloud, keeps it).
	New func(t *testing.T, owner string) providers.Provider
	// Names are two server names the kind may create.
	Names [2]string
	// Full makes the kind run out of room for new servers (nil: the kind
	// cannot be made full, and that case is skipped).
	Full func(t *testing.T)
	// Timeout bounds each call (default 2 minutes).
	Timeout time.Duration
}

// Run checks the contract of providers.Provider.
func Run(t *testing.T, h Harness) {
	if h.Timeout == 0 {
		h.Timeout = 2 * time.Minute
	}
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), h.Timeout)
		t.Cleanup(cancel)
		return c
	}
	a, b := h.Names[0], h.Names[1]

	t.Run("create, get, list, delete", func(t *testing.T) {
		c := ctx(t)
		p := h.New(t, "owner-1")
		s, err := p.Create(c, "owner-1/"+a, providers.Spec{Owner: "owner-1", Name: a})
		require.NoError(t, err)
		assert.Equal(t, a, s.ID, "the server is known by the name the Manager gave it")
		assert.Equal(t, "owner-1", s.Owner)
		assert.NotEmpty(t, s.Address)

		got, err := p.Get(c, a)
		require.NoError(t, err)
		assert.Equal(t, s, got)
		list, err := p.List(c, "owner-1")
		require.NoError(t, err)
		assert.Equal(t, []providers.Server{s}, list)

		require.NoError(t, p.Delete(c, a))
		_, err = p.Get(c, a)
		assert.True(t, providers.IsNotFound(err), "after delete: %v", err)
		list, err = p.List(c, "owner-1")
		require.NoError(t, err)
		assert.Empty(t, list)
		require.NoError(t, p.Delete(c, a), "deleting what is gone is success")
	})

	t.Run("create is idempotent by key", func(t *testing.T) {
		c := ctx(t)
		p := h.New(t, "owner-2")
		first, err := p.Create(c, "owner-2/"+a, providers.Spec{Owner: "owner-2", Name: a})
		require.NoError(t, err)
		again, err := p.Create(c, "owner-2/"+a, providers.Spec{Owner: "owner-2", Name: a})
		require.NoError(t, err)
		assert.Equal(t, first, again)
		// A provider value made afresh (a restarted worker) finds it too.
		again, err = h.New(t, "owner-2").Create(c, "owner-2/"+a, providers.Spec{Owner: "owner-2", Name: a})
		require.NoError(t, err)
		assert.Equal(t, first, again)
		list, err := p.List(c, "owner-2")
		require.NoError(t, err)
		assert.Len(t, list, 1, "one server for one key")
		require.NoError(t, p.Delete(c, a))
	})

	t.Run("owners are apart", func(t *testing.T) {
		c := ctx(t)
		p3, p4 := h.New(t, "owner-3"), h.New(t, "owner-4")
		_, err := p3.Create(c, "owner-3/"+a, providers.Spec{Owner: "owner-3", Name: a})
		require.NoError(t, err)
		list, err := p4.List(c, "owner-4")
		require.NoError(t, err)
		assert.Empty(t, list, "another owner's server is not listed")
		s, err := p4.Create(c, "owner-4/"+b, providers.Spec{Owner: "owner-4", Name: b})
		require.NoError(t, err)
		list, err = p4.List(c, "owner-4")
		require.NoError(t, err)
		assert.Equal(t, []providers.Server{s}, list)
		require.NoError(t, p3.Delete(c, a))
		require.NoError(t, p4.Delete(c, b))
	})

	t.Run("unknown server", func(t *testing.T) {
		c := ctx(t)
		p := h.New(t, "owner-5")
		_, err := p.Get(c, "never-made")
		assert.True(t, providers.IsNotFound(err), "%v", err)
		assert.NoError(t, p.Delete(c, "never-made"))
	})

	t.Run("no capacity", func(t *testing.T) {
		if h.Full == nil {
			t.Skip("this kind cannot be made full")
		}
		c := ctx(t)
		p := h.New(t, "owner-6")
		h.Full(t)
		_, err := p.Create(c, "owner-6/"+a, providers.Spec{Owner: "owner-6", Name: a})
		require.Error(t, err)
		assert.True(t, providers.IsNoCapacity(err), "%v", err)
		list, err := p.List(c, "owner-6")
		require.NoError(t, err)
		assert.Empty(t, list, "nothing launched")
	})
}
