// Package providers declares the one interface every kind of Manager
// (standalone, docker, ec2, azure) implements to get and release servers.
package providers

import (
	"context"
	"errors"
)

// Provider creates and deletes servers. Every kind implements the same
// contract, which the conformance suite checks.
type Provider interface {
	// Create launches the server described by spec, or returns the one
	// already launched for key: calling it twice with one key creates one
	// server. It returns an error wrapping ErrNoCapacity when the kind has no
	// room for it.
	Create(ctx context.Context, key string, spec Spec) (Server, error)
	// Get returns the server, or an error wrapping ErrNotFound.
	Get(ctx context.Context, id string) (Server, error)
	// List returns the servers this provider holds for owner (the Manager).
	List(ctx context.Context, owner string) ([]Server, error)
	// Delete releases the server; one already gone counts as deleted.
	Delete(ctx context.Context, id string) error
}

// Spec describes a server to create.
type Spec struct {
	Owner string // the Manager's name, tagged on the server
	Name  string // the server name the Manager will use
	// JoinToken is the key of the server's node (trust.Key.Encode of
	// trust.ServerKey), "" when reports are not authenticated. A kind
	// hands it to the node where nothing the server runs can read it.
	JoinToken string
	// CodecKeys are the payload keys (trust.EncodeKeys, the current
	// first), "" when payloads are not encrypted: the node and its agents
	// need them to read what they are asked. A kind hands them to the node
	// as it does the join token.
	CodecKeys string
}

// Server is a server as its provider sees it.
type Server struct {
	ID      string
	Address string
	Owner   string
}

// Contract errors.
var (
	ErrNotFound   = errors.New("server not found")
	ErrNoCapacity = errors.New("no capacity for a new server")
)

// IsNotFound reports whether err means the server does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsNoCapacity reports whether err means the provider has no room.
func IsNoCapacity(err error) bool { return errors.Is(err, ErrNoCapacity) }

// ErrPermanent marks an error no retry can fix (a bad setting, a missing
// permission): the operation fails at once and says what to change.
var ErrPermanent = errors.New("permanent")

type permanent struct{ err error }

func (p permanent) Error() string   { return p.err.Error() }
func (p permanent) Unwrap() []error { return []error{p.err, ErrPermanent} }

// Permanent marks err as one no retry can fix.
func Permanent(err error) error { return permanent{err} }

// IsPermanent reports whether err was marked permanent.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }
