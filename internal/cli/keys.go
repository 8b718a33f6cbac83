package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/msm-project/msm/internal/trust"
)

// keys runs `msm keys new FILE` and `msm keys join-token`.
func (e *env) keys(args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, "msm keys: want `new FILE` or `join-token --key-file FILE --server NAME --out FILE`")
		return errUsage
	}
	switch args[0] {
	case "new":
		return e.keysNew(args[1:])
	case "join-token":
		return e.joinToken(args[1:])
	}
	fmt.Fprintf(e.stderr, "msm keys: unknown subcommand %q; want new or join-token\n", args[0])
	return errUsage
}

// keysNew writes a new key ring of one key, readable by its owner only.
func (e *env) keysNew(args []string) error {
	fs := e.flags("keys new", nil)
	id := fs.String("id", "", "the new key's `ID` (default k<YYYYMMDD>)")
	keep := fs.Bool("keep", false, "keep FILE when it already holds a key ring (checked), and succeed: a deployment's first start makes it, the next ones keep it")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(e.stderr, "msm keys new: want the key ring FILE to write")
		return errUsage
	}
	if *id == "" {
		*id = "k" + time.Now().UTC().Format("20060102")
	}
	path := fs.Arg(0)
	if *keep {
		if _, err := os.Stat(path); err == nil {
			ring, err := trust.LoadRing(path)
			if err != nil {
				return fmt.Errorf("keeping %s, %w", path, err)
			}
			fmt.Fprintf(e.stdout, "Kept key ring %s (current key %s).\n", path, ring.Current().ID)
			return nil
		}
	}
	if err := trust.WriteKeys(path, trust.Generate(*id)); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Wrote key ring %s (key %s, mode 0600). Start the worker with --key-file %s, and each standalone node with a join token from `msm keys join-token`.\n", path, *id, path)
	return nil
}

// joinToken writes the key of one server's node, derived from the current
// key of the Manager's ring.
func (e *env) joinToken(args []string) error {
	var c common
	fs := e.flags("keys join-token", &c)
	keyFile := fs.String("key-file", e.getenv("MSM_KEY_FILE"), "the Manager's key ring `file` (MSM_KEY_FILE)")
	server := fs.String("server", "", "the server's `name` in the catalog")
	out := fs.String("out", "", "the join token `file` to write (mode 0600), for `msm node --join-token-file`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *keyFile == "" || *server == "" || *out == "" {
		fmt.Fprintln(e.stderr, "msm keys join-token: --key-file, --server and --out are required")
		return errUsage
	}
	ring, err := trust.LoadRing(*keyFile)
	if err != nil {
		return err
	}
	if err := trust.WriteKeys(*out, trust.ServerKey(ring.Current(), c.Manager, *server)); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Wrote the join token of server %s (Manager %s) to %s. Copy it to that server, readable by the node's user only, and start `msm node --server %s --join-token-file FILE`.\n", *server, c.Manager, *out, *server)
	return nil
}

// readJoinToken reads a node's join token: a file of one key.
func readJoinToken(path string) (trust.Key, error) {
	if path == "" {
		return trust.Key{}, nil
	}
	keys, err := trust.ReadKeys(path)
	if err != nil {
		return trust.Key{}, fmt.Errorf("--join-token-file: %w", err)
	}
	if len(keys) != 1 {
		return trust.Key{}, errors.New("--join-token-file: a join token file holds one key; write it with `msm keys join-token`")
	}
	return keys[0], nil
}
