package cloudsim

import (
	"fmt"
	"slices"
	"sync"
)

// Hosts is a Launcher that boots nothing: it hands out addresses
// (Prefix + 1, 2, …) and records the boot data of each instance and which
// were stopped, for tests that check what a provider asked for.
type Hosts struct {
	Prefix string // e.g. "10.0.0."

	mu      sync.Mutex
	n       int
	data    map[string]string
	stopped []string
}

// Boot records data for id and returns the next address.
func (h *Hosts) Boot(id string, data []byte) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	if h.data == nil {
		h.data = map[string]string{}
	}
	h.data[id] = string(data)
	return fmt.Sprintf("%s%d", h.Prefix, h.n), nil
}

// Stop records that id was stopped.
func (h *Hosts) Stop(id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = append(h.stopped, id)
	return nil
}

// Data returns the boot data instance id was booted with.
func (h *Hosts) Data(id string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.data[id]
}

// Stopped returns the instances stopped, in order.
func (h *Hosts) Stopped() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.stopped)
}

// Booted returns how many instances were booted.
func (h *Hosts) Booted() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}
