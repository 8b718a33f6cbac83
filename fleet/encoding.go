package fleet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// ContainerList is the inventory's containers. It travels in the Manager's
// continue-as-new input, which Temporal caps at 2 MB, so it is encoded
// compactly: one row per container, with its server and service named by
// their place in a list of each, instead of an object with every field
// name — ~45 bytes a container instead of ~140. It decodes both that form
// and the plain array of objects earlier Managers carried.
type ContainerList []Container

// containerRows is the compact form: Rows are [id, server, port, state,
// service, flags, pid] with an error text as an eighth element when there
// is one, and then, when it has a revision or became healthy during a
// roll, its revision (an index of Revisions, 0 none) and when it became
// healthy (Unix milliseconds, 0 never); server and service index Servers
// and Services (service 0 is none); flags are 1 healthy, 2 registered, 4
// crashed, 8 unloading.
type containerRows struct {
	Servers   []string `json:"servers"`
	Services  []string `json:"services"`
	Revisions []string `json:"revisions,omitempty"`
	Rows      [][]any  `json:"rows"`
}

const (
	flagHealthy = 1 << iota
	flagRegistered
	flagCrashed
	flagUnloading
)

// MarshalJSON encodes the list compactly, in its order.
func (l ContainerList) MarshalJSON() ([]byte, error) {
	if l == nil {
		return []byte("null"), nil
	}
	out := containerRows{Servers: []string{}, Services: []string{""}, Rows: make([][]any, 0, len(l))}
	servers, services, revisions := map[string]int{}, map[string]int{"": 0}, map[string]int{"": 0}
	revs := []string{""}
	place := func(names *[]string, at map[string]int, name string) int {
		i, ok := at[name]
		if !ok {
			i = len(*names)
			*names = append(*names, name)
			at[name] = i
		}
		return i
	}
	for _, c := range l {
		flags := 0
		if c.Healthy {
			flags |= flagHealthy
		}
		if c.Registered {
			flags |= flagRegistered
		}
		if c.Crashed {
			flags |= flagCrashed
		}
		if c.Unloading {
			flags |= flagUnloading
		}
		row := []any{c.ID, place(&out.Servers, servers, c.Server), c.Port, string(c.State), place(&out.Services, services, c.Service), flags, c.PID}
		rev, ready := place(&revs, revisions, c.Revision), int64(0)
		if !c.ReadyAt.IsZero() {
			ready = c.ReadyAt.UnixMilli()
		}
		if c.Error != "" || rev != 0 || ready != 0 {
			row = append(row, c.Error)
		}
		if rev != 0 || ready != 0 {
			row = append(row, rev, ready)
		}
		out.Rows = append(out.Rows, row)
	}
	if len(revs) > 1 {
		out.Revisions = revs
	}
	return json.Marshal(out)
}

// UnmarshalJSON decodes the compact form, or an array of container objects.
func (l *ContainerList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*l = nil
		return nil
	}
	if len(b) > 0 && b[0] == '[' {
		var plain []Container
		if err := json.Unmarshal(b, &plain); err != nil {
			return err
		}
		*l = plain
		return nil
	}
	var in struct {
		Servers   []string            `json:"servers"`
		Services  []string            `json:"services"`
		Revisions []string            `json:"revisions"`
		Rows      [][]json.RawMessage `json:"rows"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("decoding containers, %w", err)
	}
	out := make(ContainerList, 0, len(in.Rows))
	for n, row := range in.Rows {
		if len(row) < 7 {
			return fmt.Errorf("decoding containers: row %d has %d fields, want at least 7", n, len(row))
		}
		var (
			c                      Container
			server, service, flags int
			rev                    int
			ready                  int64
			state                  string
		)
		fields := []any{&c.ID, &server, &c.Port, &state, &service, &flags, &c.PID}
		if len(row) > 7 {
			fields = append(fields, &c.Error)
		}
		if len(row) > 9 {
			fields = append(fields, &rev, &ready)
		}
		for i, f := range fields {
			if err := json.Unmarshal(row[i], f); err != nil {
				return fmt.Errorf("decoding containers: row %d, field %d: %w", n, i, err)
			}
		}
		if server < 0 || server >= len(in.Servers) || service < 0 || service >= len(in.Services) {
			return fmt.Errorf("decoding containers: row %d names server %d or service %d, beyond the lists", n, server, service)
		}
		if rev < 0 || (rev > 0 && rev >= len(in.Revisions)) {
			return fmt.Errorf("decoding containers: row %d names revision %d, beyond the list", n, rev)
		}
		if rev > 0 {
			c.Revision = in.Revisions[rev]
		}
		if ready != 0 {
			c.ReadyAt = time.UnixMilli(ready).UTC()
		}
		c.Server, c.Service, c.State = in.Servers[server], in.Services[service], ContainerState(state)
		c.Healthy, c.Registered, c.Crashed = flags&flagHealthy != 0, flags&flagRegistered != 0, flags&flagCrashed != 0
		c.Unloading = flags&flagUnloading != 0
		out = append(out, c)
	}
	*l = out
	return nil
}
