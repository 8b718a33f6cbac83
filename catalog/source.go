package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"time"
)

// Source is where a catalog lives while the Manager runs: a YAML file or a
// PostgreSQL table. Watch calls apply with the catalog in force at once,
// then again with every valid change; a change that does not validate goes
// to reject (an *Error with every problem, or the read error) and the last
// valid catalog stays in force. Watch returns when ctx ends, or with an
// error if the first read fails (nothing is applied then).
type Source interface {
	Watch(ctx context.Context, apply func(*Catalog), reject func(error)) error
	// String names the source for logs and status (a path, or a DSN
	// without its password).
	String() string
}

// File is a YAML catalog file, polled for changes.
type File struct {
	Path string
	// Every is the poll interval (default 1 s).
	Every time.Duration
}

func (f File) String() string { return f.Path }

// Watch implements Source. A change is noticed by content, not by time
// stamp, so an editor's save that rewrites the same bytes changes nothing.
func (f File) Watch(ctx context.Context, apply func(*Catalog), reject func(error)) error {
	every := f.Every
	if every <= 0 {
		every = time.Second
	}
	data, err := os.ReadFile(f.Path)
	if err != nil {
		return err
	}
	c, err := Parse(data, f.Path)
	if err != nil {
		return err
	}
	apply(c)
	last := sha256.Sum256(data)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		data, err := os.ReadFile(f.Path)
		if err != nil {
			// Reported once, not on every poll; the catalog in force stays.
			if sum := sha256.Sum256(nil); !bytes.Equal(sum[:], last[:]) {
				last = sum
				reject(err)
			}
			continue
		}
		sum := sha256.Sum256(data)
		if sum == last {
			continue
		}
		last = sum
		if c, err := Parse(data, f.Path); err != nil {
			reject(err)
		} else {
			apply(c)
		}
	}
}
