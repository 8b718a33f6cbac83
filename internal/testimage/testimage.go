// Package testimage builds the images the tests that run containers use:
// `make image` (static msm and demo, FROM scratch, nothing pulled), `make
// demo-image` and `make temporal-image`, once per test binary, under tags
// of their own.
package testimage

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// Tag is the tag the msm image of the tests is built as: $MSM_TEST_IMAGE,
// else msm-test:latest. Engineers who share a machine and its Docker
// Engine each set their own, or one's build replaces the image another's
// tests run.
var Tag = cmp.Or(os.Getenv("MSM_TEST_IMAGE"), "msm-test:latest")

// Tags the tests' other images are built as.
const (
	TemporalTag = "msm-temporal-test:latest"
	// DemoTag is the example MicroService in an image of its own (`make
	// demo-image`), as a service of the docker kind names one.
	DemoTag = "msm-demo-test:1"
)

type result struct {
	sync.Once
	err error
}

var msm, temporal, demo result

// Build builds the msm image from the repository holding the working
// directory, the first time it is called in this process, and returns its
// tag. It needs a running Docker Engine.
func Build() (string, error) {
	return Tag, msm.make("image", "IMAGE="+Tag)
}

// BuildDemo builds the example MicroService's own image (`make
// demo-image`: demo alone, its ENTRYPOINT, no msm) once, and returns its tag.
func BuildDemo() (string, error) {
	return DemoTag, demo.make("demo-image", "DEMO_IMAGE="+DemoTag)
}

// BuildTemporal builds the Temporal dev server image (`make
// temporal-image`, from the static bin/temporal) once, and returns its tag.
func BuildTemporal() (string, error) {
	return TemporalTag, temporal.make("temporal-image", "TEMPORAL_IMAGE="+TemporalTag)
}

func (r *result) make(args ...string) error {
	r.Do(func() {
		root, err := repoRoot()
		if err != nil {
			r.err = err
			return
		}
		cmd := exec.Command("make", append([]string{"-s"}, args...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			r.err = fmt.Errorf("make %s (it needs a running Docker Engine): %v: %s", args[0], err, out)
		}
	})
	return r.err
}

// repoRoot is the nearest directory up from here with a go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = up
	}
}
