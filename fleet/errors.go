package fleet

import "errors"

// ErrNoPort means a server has no port left to lease.
var ErrNoPort = errors.New("no free port")
