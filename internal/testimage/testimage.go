// Package testimage builds the msm image the tests that run containers use:
// `make image` (static msm and demo, FROM scratch, nothing pulled), once per
// test binary, under a tag of its own.
package testimage

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// Tag is the tag the tests' image is built as.
const Tag = "msm-test:latest"

var once struct {
	sync.Once
	err error
}

// Build builds the image from the repository holding the working directory,
// the first time it is called in this process, and returns its tag. It
// needs a running Docker Engine.
func Build() (string, error) {
	once.Do(func() {
		root, err := repoRoot()
		if err != nil {
			once.err = err
			return
		}
		cmd := exec.Command("make", "-s", "image", "IMAGE="+Tag)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			once.err = fmt.Errorf("make image (it needs a running Docker Engine): %v: %s", err, out)
		}
	})
	return Tag, once.err
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
