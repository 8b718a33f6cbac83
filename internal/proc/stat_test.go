package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// FuzzStatFields: whatever the bytes, StatFields returns fields or an
// error, never panics; and for a stat line of any command name (spaces and
// parentheses included), the fields after it come back as written.
func FuzzStatFields(f *testing.F) {
	own, err := os.ReadFile("/proc/self/stat")
	if err == nil {
		f.Add(string(own), uint64(7), uint64(11), uint64(123456))
	}
	f.Add("1 (a) b) S", uint64(0), uint64(0), uint64(0))
	f.Add("", uint64(1), uint64(2), uint64(3))
	f.Add("cmd with ) paren and spaces ((", uint64(1<<40), uint64(5), uint64(99))
	f.Fuzz(func(t *testing.T, comm string, utime, stime, start uint64) {
		if fs, err := StatFields([]byte(comm)); err == nil && len(fs) < 20 {
			t.Fatalf("%d fields accepted", len(fs))
		}
		// A real line: the kernel's comm holds no newline or NUL.
		comm = strings.NewReplacer("\n", "", "\x00", "").Replace(comm)
		line := fmt.Sprintf("4242 (%s) S 1 4242 4242 0 -1 4194560 100 0 0 0 %d %d 0 0 20 0 1 0 %d 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
			comm, utime, stime, start)
		fs, err := StatFields([]byte(line))
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if fs[0] != "S" || fs[11] != strconv.FormatUint(utime, 10) || fs[12] != strconv.FormatUint(stime, 10) || fs[19] != strconv.FormatUint(start, 10) {
			t.Fatalf("%q: state %s utime %s stime %s start %s", line, fs[0], fs[11], fs[12], fs[19])
		}
	})
}
