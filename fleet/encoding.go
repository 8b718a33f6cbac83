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
// is one, and the index of its image in Images as a ninth when it runs a
// service's own image (the error then "" when there is none); server and
// service index Servers and Services (service 0 is none); flags are 1
// healthy, 2 registered, 4 crashed, 8 unloading. A list without images
// encodes as it did before they existed.
//
// A container that carries a revision (the one it was loaded with) or
// became healthy during a roll has two more: the index of its revision in
// Revisions (0 none) and when it became healthy (Unix milliseconds, 0
// never); its image index is then -1 when it runs the Manager's. One
// whose agent's version is known has a twelfth: its index in Agents (0
// none), the others then as above.
type containerRows struct {
	Servers   []string `json:"servers"`
	Services  []string `json:"services"`
	Images    []string `json:"images,omitempty"`
	Revisions []string `json:"revisions,omitempty"`
	Agents    []string `json:"agents,omitempty"`
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
	servers, services, images, revisions := map[string]int{}, map[string]int{"": 0}, map[string]int{}, map[string]int{"": 0}
	revs := []string{""}
	agents, agentAt := []string{""}, map[string]int{"": 0}
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
		agent := place(&agents, agentAt, c.Agent)
		more := rev != 0 || ready != 0 || agent != 0
		if c.Error != "" || c.Image != "" || more {
			row = append(row, c.Error)
		}
		if c.Image != "" {
			row = append(row, place(&out.Images, images, c.Image))
		} else if more {
			row = append(row, -1)
		}
		if more {
			row = append(row, rev, ready)
		}
		if agent != 0 {
			row = append(row, agent)
		}
		out.Rows = append(out.Rows, row)
	}
	if len(revs) > 1 {
		out.Revisions = revs
	}
	if len(agents) > 1 {
		out.Agents = agents
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
		Images    []string            `json:"images"`
		Revisions []string            `json:"revisions"`
		Agents    []string            `json:"agents"`
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
			rev, agent             int
			ready                  int64
			state                  string
		)
		fields := []any{&c.ID, &server, &c.Port, &state, &service, &flags, &c.PID}
		image := -1
		if len(row) > 7 {
			fields = append(fields, &c.Error)
		}
		if len(row) > 8 {
			fields = append(fields, &image)
		}
		if len(row) > 10 {
			fields = append(fields, &rev, &ready)
		}
		if len(row) > 11 {
			fields = append(fields, &agent)
		}
		for i, f := range fields {
			if err := json.Unmarshal(row[i], f); err != nil {
				return fmt.Errorf("decoding containers: row %d, field %d: %w", n, i, err)
			}
		}
		if server < 0 || server >= len(in.Servers) || service < 0 || service >= len(in.Services) {
			return fmt.Errorf("decoding containers: row %d names server %d or service %d, beyond the lists", n, server, service)
		}
		if len(row) > 8 && image != -1 {
			if image < 0 || image >= len(in.Images) {
				return fmt.Errorf("decoding containers: row %d names image %d, beyond the list", n, image)
			}
			c.Image = in.Images[image]
		}
		if rev < 0 || (rev > 0 && rev >= len(in.Revisions)) {
			return fmt.Errorf("decoding containers: row %d names revision %d, beyond the list", n, rev)
		}
		if rev > 0 {
			c.Revision = in.Revisions[rev]
		}
		if agent < 0 || (agent > 0 && agent >= len(in.Agents)) {
			return fmt.Errorf("decoding containers: row %d names agent version %d, beyond the list", n, agent)
		}
		if agent > 0 {
			c.Agent = in.Agents[agent]
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
