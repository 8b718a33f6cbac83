package trust

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSignAndVerify(t *testing.T) {
	root := Generate("k1")
	other := Generate("k1")
	srv := ServerKey(root, "m1", "s1")
	c1 := ContainerKey(srv, "m1-c1")
	tag := Sign(c1, "overload", "m1-c1", "web", "")
	assert.Equal(t, "k1", TagKeyID(tag))
	assert.True(t, Verify(c1, tag, "overload", "m1-c1", "web", ""))

	for name, ok := range map[string]bool{
		"a field changed":           Verify(c1, tag, "overload", "m1-c1", "api", ""),
		"fields joined differently": Verify(c1, tag, "overload", "m1-c1web", "", ""),
		"a field added":             Verify(c1, tag, "overload", "m1-c1", "web", "", ""),
		"another container's key":   Verify(ContainerKey(srv, "m1-c2"), tag, "overload", "m1-c1", "web", ""),
		"the server's key":          Verify(srv, tag, "overload", "m1-c1", "web", ""),
		"the same path, other root": Verify(ContainerKey(ServerKey(other, "m1", "s1"), "m1-c1"), tag, "overload", "m1-c1", "web", ""),
		"another manager's server":  Verify(ContainerKey(ServerKey(root, "m2", "s1"), "m1-c1"), tag, "overload", "m1-c1", "web", ""),
		"no tag":                    Verify(c1, "", "overload", "m1-c1", "web", ""),
		"a tag of another key ID":   Verify(c1, "k2"+strings.TrimPrefix(tag, "k1"), "overload", "m1-c1", "web", ""),
		"a tag cut short":           Verify(c1, tag[:len(tag)-2], "overload", "m1-c1", "web", ""),
	} {
		assert.False(t, ok, name)
	}
	assert.NotEqual(t, OperationKey(root, "x").Secret, WorkerKey(root, "x").Secret, "each use has its own label")
	assert.Empty(t, TagKeyID("no separator"))
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys", "ring")
	k1, k2 := Generate("k2"), Generate("k1")
	require.NoError(t, WriteKeys(path, k1, k2))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())
	assert.Error(t, WriteKeys(path, k1), "an existing key file is never overwritten")

	r, err := LoadRing(path)
	require.NoError(t, err)
	assert.Equal(t, []string{"k2", "k1"}, r.IDs())
	assert.Equal(t, k1, r.Current())
	got, ok := r.Key("k1")
	assert.True(t, ok)
	assert.Equal(t, k2, got)

	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), mode))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	for _, tc := range []struct {
		name, body string
		mode       os.FileMode
		want       string
	}{
		{"open", k1.Encode() + "\n", 0o644, "readable by others (mode 0644); make it readable by its owner only: chmod 600"},
		{"empty", "# nothing\n\n", 0o600, "holds no key"},
		{"short", "k1 " + "c2hvcnQ=" + "\n", 0o600, "short:1: key k1 has 5 bytes; every key has 32"},
		{"badid", "k/1 " + strings.Fields(k1.Encode())[1] + "\n", 0o600, `badid:1: key ID "k/1" is not 1-32 letters`},
		{"nob64", "# a comment\nk1 !!!\n", 0o600, "nob64:2: key k1 is not base64"},
		{"twice", k1.Encode() + "\n" + k1.Encode() + "\n", 0o600, "key ID k2 is used twice"},
		{"oneword", "k1\n", 0o600, `a key is "<id> <base64 of 32 bytes>"`},
	} {
		_, err := LoadRing(write(tc.name, tc.body, tc.mode))
		if assert.Error(t, err, tc.name) {
			assert.Contains(t, err.Error(), tc.want, tc.name)
		}
	}
}
