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
	cat, err := e.loadCatalog(path, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: ok (%d services, %d servers)\n", path, len(cat.Services), len(cat.Manager.Servers))
	return nil
}

// loadCatalog loads and validates a catalog, printing every problem and a
// count of them. starts says the command would have started something,
// which the count line then says it did not.
func (e *env) loadCatalog(path string, starts bool) (*catalog.Catalog, error) {
	cat, err := catalog.Load(path)
	if err == nil {
		return cat, nil
	}
	var cerr *catalog.Error
	if errors.As(err, &cerr) {
		fmt.Fprintln(e.stderr, cerr.Error())
		summary := fmt.Sprintf("%s: %d problem", path, len(cerr.Problems))
		if len(cerr.Problems) != 1 {
			summary += "s"
		}
		if starts {
			summary += "; nothing was started"
		}
		fmt.Fprintln(e.stderr, summary)
		return nil, &exitError{code: 1}
	}
	return nil, err
}
