package fleet

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/catalog"
)

func TestPortIndexClaim(t *testing.T) {
	r := catalog.PortRange{First: 20000, Last: 20009}
	tests := []struct {
		name    string
		held    map[int]string // leases before the claim
		blocked []int
		port    int
		holder  string
		wantErr []string // substrings of the error; nil means success
	}{
		{name: "free port", port: 20003, holder: "m-c1"},
		{name: "first port of the range", port: 20000, holder: "m-c1"},
		{name: "last port of the range", port: 20009, holder: "m-c1"},
		{name: "own port again", held: map[int]string{20003: "m-c1"}, port: 20003, holder: "m-c1"},
		{
			name: "port of another holder", held: map[int]string{20003: "m-c1"}, port: 20003, holder: "m-c2",
			wantErr: []string{"20003", "m-c1", "m-c2"},
		},
		{name: "below the range", port: 19999, holder: "m-c1", wantErr: []string{"19999", "20000-20009"}},
		{name: "above the range", port: 20010, holder: "m-c1", wantErr: []string{"20010", "20000-20009"}},
		{name: "zero port", port: 0, holder: "m-c1", wantErr: []string{"outside"}},
		{name: "blocked port", blocked: []int{20004}, port: 20004, holder: "m-c1", wantErr: []string{"20004", "not own"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPortIndex(r)
			for port, h := range tc.held {
				require.NoError(t, p.Claim(port, h))
			}
			for _, b := range tc.blocked {
				p.Block(b)
			}
			before := p.Holder(tc.port)
			err := p.Claim(tc.port, tc.holder)
			if tc.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, tc.holder, p.Holder(tc.port))
				return
			}
			require.Error(t, err)
			for _, s := range tc.wantErr {
				assert.Contains(t, err.Error(), s)
			}
			assert.Equal(t, before, p.Holder(tc.port), "a failed claim must not change the holder")
		})
	}
}

func TestPortIndexLease(t *testing.T) {
	tests := []struct {
		name    string
		r       catalog.PortRange
		held    []int
		blocked []int
		want    int // the leased port; 0 means exhaustion
	}{
		{name: "empty book: lowest port", r: catalog.PortRange{First: 20000, Last: 20002}, want: 20000},
		{name: "skips held", r: catalog.PortRange{First: 20000, Last: 20002}, held: []int{20000}, want: 20001},
		{name: "fills a gap before higher ports", r: catalog.PortRange{First: 20000, Last: 20003}, held: []int{20000, 20002}, want: 20001},
		{name: "skips blocked", r: catalog.PortRange{First: 20000, Last: 20002}, blocked: []int{20000, 20001}, want: 20002},
		{name: "skips held and blocked", r: catalog.PortRange{First: 20000, Last: 20003}, held: []int{20000}, blocked: []int{20001}, want: 20002},
		{name: "one-port range", r: catalog.PortRange{First: 30000, Last: 30000}, want: 30000},
		{name: "all held", r: catalog.PortRange{First: 20000, Last: 20001}, held: []int{20000, 20001}},
		{name: "all blocked", r: catalog.PortRange{First: 20000, Last: 20001}, blocked: []int{20000, 20001}},
		{name: "held and blocked fill the range", r: catalog.PortRange{First: 20000, Last: 20002}, held: []int{20001}, blocked: []int{20000, 20002}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPortIndex(tc.r)
			for i, port := range tc.held {
				require.NoError(t, p.Claim(port, "old-"+string(rune('a'+i))))
			}
			for _, b := range tc.blocked {
				p.Block(b)
			}
			leasedBefore := p.Leased()
			port, err := p.Lease("new")
			if tc.want == 0 {
				require.Error(t, err)
				require.ErrorIs(t, err, ErrNoPort)
				assert.Contains(t, err.Error(), tc.r.String())
				assert.Zero(t, port)
				assert.Equal(t, leasedBefore, p.Leased(), "a failed lease must not change the book")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, port)
			assert.Equal(t, "new", p.Holder(port))
			// The leased port is now taken: claiming it for someone else fails.
			assert.Error(t, p.Claim(port, "other"))
		})
	}
}

func TestPortIndexLeaseSequence(t *testing.T) {
	p := NewPortIndex(catalog.PortRange{First: 21000, Last: 21004})
	p.Block(21001)
	var got []int
	for _, h := range []string{"a", "b", "c", "d"} {
		port, err := p.Lease(h)
		require.NoError(t, err)
		got = append(got, port)
	}
	assert.Equal(t, []int{21000, 21002, 21003, 21004}, got)
	_, err := p.Lease("e")
	require.ErrorIs(t, err, ErrNoPort)
	assert.Contains(t, err.Error(), "21000-21004")
}

func TestPortIndexLeased(t *testing.T) {
	tests := []struct {
		name   string
		claims []int
		block  []int
		want   []int
	}{
		{name: "empty", want: nil},
		{name: "claimed out of order come back sorted", claims: []int{20007, 20001, 20004}, want: []int{20001, 20004, 20007}},
		{name: "blocked ports are not leased", claims: []int{20002}, block: []int{20000, 20009}, want: []int{20002}},
		{name: "ends of the range", claims: []int{20009, 20000}, want: []int{20000, 20009}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPortIndex(catalog.PortRange{First: 20000, Last: 20009})
			for _, b := range tc.block {
				p.Block(b)
			}
			for i, port := range tc.claims {
				require.NoError(t, p.Claim(port, "h"+string(rune('0'+i))))
			}
			assert.Equal(t, tc.want, p.Leased())
		})
	}
}

func TestInventoryPorts(t *testing.T) {
	r := catalog.PortRange{First: 20000, Last: 20009}
	servers := []Server{
		{ID: "s1", Slots: 4, Ports: r, State: ServerReady, Blocked: []int{20001}},
		{ID: "s2", Slots: 4, Ports: r, State: ServerReady},
	}
	tests := []struct {
		name       string
		server     string
		containers []Container
		wantErr    []string
		wantLeased []int
		wantHolder map[int]string
		wantNext   int // the port Lease gives next
	}{
		{
			name:   "rebuilds leases and blocked ports",
			server: "s1",
			containers: []Container{
				{ID: "m-c1", Server: "s1", Port: 20000, State: Loaded},
				{ID: "m-c2", Server: "s1", Port: 20003, State: Draining},
				{ID: "m-c3", Server: "s2", Port: 20002, State: Loaded},
			},
			wantLeased: []int{20000, 20003},
			wantHolder: map[int]string{20000: "m-c1", 20003: "m-c2", 20002: ""},
			wantNext:   20002, // 20001 is blocked; 20002 is held on s2 only
		},
		{
			name:   "a container without a port holds none",
			server: "s2",
			containers: []Container{
				{ID: "m-c1", Server: "s2", Port: 0, State: Starting},
			},
			wantLeased: nil,
			wantNext:   20000,
		},
		{
			name:   "the same port on two servers is fine",
			server: "s2",
			containers: []Container{
				{ID: "m-c1", Server: "s1", Port: 20000, State: Loaded},
				{ID: "m-c2", Server: "s2", Port: 20000, State: Loaded},
			},
			wantLeased: []int{20000},
			wantHolder: map[int]string{20000: "m-c2"},
			wantNext:   20001,
		},
		{
			name:   "two containers on one server with one port",
			server: "s2",
			containers: []Container{
				{ID: "m-c1", Server: "s2", Port: 20005, State: Loaded},
				{ID: "m-c2", Server: "s2", Port: 20005, State: Starting},
			},
			wantErr: []string{"20005", "m-c1", "m-c2"},
		},
		{
			name:   "a container on a blocked port",
			server: "s1",
			containers: []Container{
				{ID: "m-c1", Server: "s1", Port: 20001, State: Loaded},
			},
			wantErr: []string{"20001"},
		},
		{
			name:   "a container outside its server's range",
			server: "s2",
			containers: []Container{
				{ID: "m-c1", Server: "s2", Port: 30000, State: Loaded},
			},
			wantErr: []string{"30000", "outside"},
		},
		{name: "unknown server", server: "s9", wantErr: []string{"s9"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv := &Inventory{Servers: servers, Containers: tc.containers}
			p, err := inv.Ports(tc.server)
			if tc.wantErr != nil {
				require.Error(t, err)
				for _, s := range tc.wantErr {
					assert.Contains(t, err.Error(), s)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantLeased, p.Leased())
			for port, h := range tc.wantHolder {
				assert.Equal(t, h, p.Holder(port), "holder of %d", port)
			}
			port, err := p.Lease("next")
			require.NoError(t, err)
			assert.Equal(t, tc.wantNext, port)
			// The book is rebuilt, not shared: leasing from it changes nothing
			// in the inventory, which stays the single source of truth.
			again, err := inv.Ports(tc.server)
			require.NoError(t, err)
			assert.Equal(t, tc.wantLeased, again.Leased())
		})
	}
}
