package cli

import (
	"errors"
	"fmt"

	"github.com/msm-project/msm/catalog"
)

func (e *env) catalog(args []string) error {
	if len(args) == 0 || args[0] != "validate" {
		fmt.Fprintln(e.stderr, "usage: msm catalog validate FILE")
		return errUsage
	}
	fs := e.flags("catalog validate", nil)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(e.stderr, "usage: msm catalog validate FILE")
		return errUsage
	}
	path := fs.Arg(0)
	cat, err := e.loadCatalog(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: ok (%d services, %d servers)\n", path, len(cat.Services), len(cat.Manager.Servers))
	return nil
}

// loadCatalog loads and validates a catalog, printing every problem.
func (e *env) loadCatalog(path string) (*catalog.Catalog, error) {
	cat, err := catalog.Load(path)
	if err == nil {
		return cat, nil
	}
	var cerr *catalog.Error
	if errors.As(err, &cerr) {
		fmt.Fprintln(e.stderr, cerr.Error())
		fmt.Fprintf(e.stderr, "%s: %d problem(s); nothing was started\n", path, len(cerr.Problems))
		return nil, &exitError{code: 1}
	}
	return nil, err
}
