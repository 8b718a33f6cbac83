package proc

import (
	"errors"
	"strings"
)

// StatFields splits the contents of /proc/<pid>/stat into its fields from
// field 3 (state) on, so field k of proc(5) is f[k-3]. The command name
// (field 2) is in parentheses and may hold spaces and parentheses itself:
// the fields start after the last ')'. At least 20 fields (to the start
// time, field 22) must follow.
func StatFields(b []byte) ([]string, error) {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, errors.New("no command name")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return nil, errors.New("fewer than 22 fields")
	}
	return f, nil
}
