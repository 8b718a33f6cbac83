package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Update is how a service rolls to a new revision (Service.Revision): one
// instance of the new revision more (MaxSurge) at a time, each healthy for
// HealthGrace before an old one goes, never more than MaxUnavailable
// healthy instances below desired. A revision whose instances fail stops
// the roll, the old instances serving on; with AutoRollback the old
// revision is rolled back in.
type Update struct {
	// MaxSurge is how many instances above desired a roll may start at
	// once (default 1).
	MaxSurge *int `yaml:"max_surge,omitempty" json:"max_surge,omitempty"`
	// MaxUnavailable is how many healthy instances below desired a roll
	// may go (default 0: it extends before it destroys).
	MaxUnavailable *int `yaml:"max_unavailable,omitempty" json:"max_unavailable,omitempty"`
	// HealthGrace is how long an instance of the new revision must stay
	// healthy before an old one goes (default 10 s): one that fails within
	// it fails the roll.
	HealthGrace time.Duration `yaml:"health_grace,omitempty" json:"health_grace,omitempty"`
	// AutoRollback rolls the old revision back in when the new one fails
	// (default true).
	AutoRollback *bool `yaml:"auto_rollback,omitempty" json:"auto_rollback,omitempty"`
}

// Defaults of a service's update.
const (
	DefaultMaxSurge       = 1
	DefaultMaxUnavailable = 0
	DefaultHealthGrace    = 10 * time.Second
	// MaxHealthGrace bounds update.health_grace.
	MaxHealthGrace = time.Hour
)

// Policy is a service's update with the defaults filled in.
type Policy struct {
	MaxSurge, MaxUnavailable int
	HealthGrace              time.Duration
	AutoRollback             bool
}

// UpdatePolicy returns the service's update, defaults filled in. The
// catalog keeps what was written (nil when nothing was): a catalog
// without update encodes as before.
func (s Service) UpdatePolicy() Policy {
	p := Policy{MaxSurge: DefaultMaxSurge, MaxUnavailable: DefaultMaxUnavailable, HealthGrace: DefaultHealthGrace, AutoRollback: true}
	u := s.Update
	if u == nil {
		return p
	}
	if u.MaxSurge != nil {
		p.MaxSurge = *u.MaxSurge
	}
	if u.MaxUnavailable != nil {
		p.MaxUnavailable = *u.MaxUnavailable
	}
	if u.HealthGrace > 0 {
		p.HealthGrace = u.HealthGrace
	}
	if u.AutoRollback != nil {
		p.AutoRollback = *u.AutoRollback
	}
	return p
}

// Revision names what a service's instances run: a hash of its command,
// args, image, env, health check, limits and user. A catalog change that
// changes it rolls the service (Update); one that changes only its
// replicas, scaling or update does not. The Manager computes it in
// workflow code: encoding/json writes a struct's fields in order and a
// map's keys sorted, so the same service gives the same hash on every
// replay (workflowcheck cannot tell, for its type cache).
//
//workflowcheck:ignore
func (s Service) Revision() string {
	b, err := json.Marshal(struct {
		Command string            `json:"command"`
		Args    []string          `json:"args"`
		Image   string            `json:"image"`
		Env     map[string]string `json:"env"` // encoded in key order
		Health  HealthCheck       `json:"health"`
		Limits  *Limits           `json:"limits"`
		RunAs   string            `json:"run_as"`
	}{s.Command, s.Args, s.Image, s.Env, s.Health, s.Limits, s.RunAs})
	if err != nil {
		panic("encoding a service's revision: " + err.Error()) // plain data: cannot fail
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:6])
}

// update checks a service's update.
func (v *validator) update(item string, s Service) {
	u := s.Update
	if u == nil {
		return
	}
	item += ".update"
	surge, unavailable := DefaultMaxSurge, DefaultMaxUnavailable
	if u.MaxSurge != nil {
		surge = *u.MaxSurge
		if surge < 0 {
			v.ps.add(item+".max_surge", "%d is negative; set how many instances a roll may start above desired, e.g. 1", surge)
		}
	}
	if u.MaxUnavailable != nil {
		unavailable = *u.MaxUnavailable
		if unavailable < 0 {
			v.ps.add(item+".max_unavailable", "%d is negative; set how many healthy instances a roll may go below desired, e.g. 0", unavailable)
		}
	}
	if surge == 0 && unavailable <= 0 {
		v.ps.add(item, "max_surge 0 and max_unavailable 0 let a roll neither add nor remove an instance; set max_surge to 1 (extend, then destroy) or max_unavailable to 1")
	}
	if u.HealthGrace < 0 || u.HealthGrace > MaxHealthGrace {
		v.ps.add(item+".health_grace", "%s is not between 0 and %s; set how long a new instance must stay healthy before an old one goes, e.g. 10s", u.HealthGrace, MaxHealthGrace)
	}
}
