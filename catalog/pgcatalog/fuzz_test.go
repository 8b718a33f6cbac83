package pgcatalog

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/msm-project/msm/catalog"
)

// FuzzRedact: whatever the password, in whichever form of DSN libpq
// accepts (URL user info, URL query, key=value quoted or not, sslpassword
// too), the redacted DSN does not hold it.
func FuzzRedact(f *testing.F) {
	for _, pw := range []string{"s3cret", "p@ss:w/ord", "with space", `quo'te`, "x", "%41%42", "password=", "@@@@"} {
		f.Add(pw, "msm")
	}
	f.Fuzz(func(t *testing.T, pw, user string) {
		if len(pw) < 4 || strings.ContainsAny(pw, "\x00\n") || strings.ContainsAny(user, "\x00\n :@/?#'\\=") {
			return
		}
		quote := func(p string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(p) + "'" }
		forms := []func(p string) string{
			func(p string) string {
				return "postgres://" + url.UserPassword(user, p).String() + "@db.internal:5432/msm?sslmode=disable"
			},
			func(p string) string {
				return "postgresql://" + url.UserPassword(user, p).String() + "@db.internal/msm"
			},
			func(p string) string {
				return "postgres://db.internal/msm?" + url.Values{"user": {user}, "password": {p}}.Encode()
			},
			func(p string) string {
				return "postgres://db.internal/msm?" + url.Values{"sslpassword": {p}, "sslkey": {"k"}}.Encode()
			},
			func(p string) string {
				return "host=db.internal user=" + user + " password=" + quote(p) + " dbname=msm"
			},
			func(p string) string { return "password = " + quote(p) + " host=db.internal" },
			func(p string) string { return "host=db.internal sslkey=k sslpassword=" + quote(p) },
		}
		if !strings.ContainsAny(pw, " '\\\t\r\v\f") {
			forms = append(forms, func(p string) string { return "host=db.internal user=" + user + " password=" + p + " dbname=msm" })
		}
		encodings := []string{pw, url.QueryEscape(pw), url.PathEscape(pw)}
		for _, form := range forms {
			dsn, rest := form(pw), form("")
			out := redact(dsn)
			for _, e := range encodings {
				if strings.Contains(rest, e) {
					continue // the DSN holds it elsewhere: the password is a part of the user or host
				}
				if strings.Contains(out, e) {
					t.Fatalf("redact(%q) = %q still holds the password as %q", dsn, out, e)
				}
			}
		}
	})
}

// FuzzRowsRoundTrip: a catalog that parses, written as rows (as Import
// does) and read back (as Watch does), is the same catalog.
func FuzzRowsRoundTrip(f *testing.F) {
	seeds, _ := filepath.Glob("../../examples/*.yaml")
	more, _ := filepath.Glob("../../examples/*/*.yaml")
	for _, p := range append(seeds, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := catalog.Parse(b, "fuzz.yaml")
		if err != nil {
			return
		}
		r, err := toRows(c)
		if err != nil {
			t.Fatalf("toRows: %v", err)
		}
		back, err := r.parse()
		if err != nil {
			t.Fatalf("rows of a valid catalog do not parse: %v\nrows %+v", err, r)
		}
		want, _ := json.Marshal(c)
		got, _ := json.Marshal(back)
		if string(want) != string(got) {
			t.Fatalf("round trip changed the catalog:\n%s\n%s", want, got)
		}
	})
}
