// Package trust authenticates the reports a Manager acts on. A Manager's
// key ring holds its root keys; each server's node gets a key derived from
// a root key and the server's name, and derives from it a key for each of
// its containers, which it hands to that container's agent only. A report
// carries a tag, an HMAC-SHA256 of its fields under the sender's key,
// prefixed by the ID of the root key it descends from. The Manager, which
// can derive every key, checks the tag against the key of whoever may send
// that report: a report about a container from that container's agent or
// its server's node, a node's report from that server, an operation's
// results from that operation, a catalog from the Manager's worker.
//
// The package needs nothing but the standard library, so that the agent,
// which links no Temporal SDK, uses it too.
package trust

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// KeySize is the size of every key, root or derived.
const KeySize = 32

// Key is a secret of KeySize bytes with the ID of the root key it is or
// descends from.
type Key struct {
	ID     string
	Secret []byte
}

// Valid reports whether k holds a key.
func (k Key) Valid() bool { return k.ID != "" && len(k.Secret) == KeySize }

// keyID is what a key ID may be: short, and free of the separators of a
// tag and a key file.
var keyID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Ring is a Manager's root keys; the first is current (new servers get
// keys derived from it), the others are kept so that servers launched
// under them still authenticate until they are replaced.
type Ring struct {
	keys []Key
}

// Current returns the key new servers are given keys from.
func (r *Ring) Current() Key { return r.keys[0] }

// Key returns the root key of that ID.
func (r *Ring) Key(id string) (Key, bool) {
	for _, k := range r.keys {
		if k.ID == id {
			return k, true
		}
	}
	return Key{}, false
}

// IDs lists the key IDs, current first.
func (r *Ring) IDs() []string {
	ids := make([]string, len(r.keys))
	for i, k := range r.keys {
		ids[i] = k.ID
	}
	return ids
}

// NewRing returns a ring of the keys, the first current.
func NewRing(keys ...Key) (*Ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("a key ring needs at least one key")
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if !keyID.MatchString(k.ID) {
			return nil, fmt.Errorf("key ID %q is not 1-32 letters, digits, '-' or '_'", k.ID)
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("key %s has %d bytes; every key has %d", k.ID, len(k.Secret), KeySize)
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("key ID %s is used twice; give each key its own ID", k.ID)
		}
		seen[k.ID] = true
	}
	return &Ring{keys: keys}, nil
}

// Generate returns a new random key of that ID.
func Generate(id string) Key {
	k := Key{ID: id, Secret: make([]byte, KeySize)}
	if _, err := rand.Read(k.Secret); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return k
}

// Encode writes a key as one line of a key file: "<id> <base64 secret>".
func (k Key) Encode() string {
	return k.ID + " " + base64.StdEncoding.EncodeToString(k.Secret)
}

// ParseKey reads one key written by Encode.
func ParseKey(line string) (Key, error) {
	id, b64, ok := strings.Cut(strings.TrimSpace(line), " ")
	if !ok {
		return Key{}, errors.New(`a key is "<id> <base64 of 32 bytes>"`)
	}
	secret, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return Key{}, fmt.Errorf("key %s is not base64, %w", id, err)
	}
	k := Key{ID: id, Secret: secret}
	if !keyID.MatchString(id) {
		return Key{}, fmt.Errorf("key ID %q is not 1-32 letters, digits, '-' or '_'", id)
	}
	if len(secret) != KeySize {
		return Key{}, fmt.Errorf("key %s has %d bytes; every key has %d", id, len(secret), KeySize)
	}
	return k, nil
}

// ReadKeys reads a key file: one key per line as Encode writes it, the
// current first; blank lines and lines starting with # are skipped. The
// file must not be readable by group or others.
func ReadKeys(path string) ([]Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading key file, %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading key file, %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is readable by others (mode %#o); make it readable by its owner only: chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading key file, %w", err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("key file %s is larger than %d bytes: it is not a key file", path, maxKeyFile)
	}
	keys, err := ParseKeys(string(b), path)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("key file %s holds no key; write one with `msm keys new %s`", path, path)
	}
	return keys, nil
}

// maxKeyFile bounds a key file: a thousand keys.
const maxKeyFile = 100 << 10

// ParseKeys reads keys as a key file holds them (EncodeKeys): one a line,
// the current first; blank lines and lines starting with # are skipped.
// source names where they came from in errors (path:line).
func ParseKeys(text, source string) ([]Key, error) {
	var keys []Key
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := ParseKey(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", source, n+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// EncodeKeys writes keys as a key file holds them: Encode, one a line.
func EncodeKeys(keys ...Key) string {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k.Encode())
		b.WriteByte('\n')
	}
	return b.String()
}

// LoadRing reads a ring from a key file (see ReadKeys).
func LoadRing(path string) (*Ring, error) {
	keys, err := ReadKeys(path)
	if err != nil {
		return nil, err
	}
	r, err := NewRing(keys...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// WriteKeys writes keys to a new file readable by its owner only (in a
// directory made 0700 if missing); an existing file is left as it is and
// reported.
func WriteKeys(path string, keys ...Key) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("writing key file, %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("writing key file, %w", err)
	}
	if _, err := f.WriteString(EncodeKeys(keys...)); err != nil {
		f.Close()
		return fmt.Errorf("writing key file, %w", err)
	}
	return f.Close()
}

// derive returns HMAC-SHA256(parent, label and parts, each length-prefixed),
// a key of the parent's ID.
func derive(parent Key, label string, parts ...string) Key {
	return Key{ID: parent.ID, Secret: mac(parent.Secret, append([]string{label}, parts...))}
}

func mac(secret []byte, fields []string) []byte {
	h := hmac.New(sha256.New, secret)
	var n [binary.MaxVarintLen64]byte
	for _, f := range fields {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(f)))])
		h.Write([]byte(f))
	}
	return h.Sum(nil)
}

// ServerKey is the key of one server's node: what it is given at launch.
func ServerKey(root Key, manager, server string) Key {
	return derive(root, "msm server", manager, server)
}

// ContainerKey is the key of one container's agent, derived by its node.
func ContainerKey(server Key, container string) Key {
	return derive(server, "msm container", container)
}

// OperationKey is the key an operation signs its results with.
func OperationKey(root Key, op string) Key {
	return derive(root, "msm operation", op)
}

// WorkerKey is the key a Manager's worker signs catalogs with.
func WorkerKey(root Key, manager string) Key {
	return derive(root, "msm worker", manager)
}

// Sign returns the tag of fields under k: "<key ID>:<base64url HMAC>".
func Sign(k Key, fields ...string) string {
	return k.ID + ":" + base64.RawURLEncoding.EncodeToString(mac(k.Secret, fields))
}

// TagKeyID returns the key ID a tag names, "" if it is no tag.
func TagKeyID(tag string) string {
	id, _, ok := strings.Cut(tag, ":")
	if !ok || !keyID.MatchString(id) {
		return ""
	}
	return id
}

// Verify reports whether tag is the tag of fields under k.
func Verify(k Key, tag string, fields ...string) bool {
	id, b64, ok := strings.Cut(tag, ":")
	if !ok || id != k.ID {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return false
	}
	return hmac.Equal(got, mac(k.Secret, fields))
}
