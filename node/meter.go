package node

import (
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/mem"
)

// HostMeter measures this host with gopsutil.
type HostMeter struct{}

// Measure returns the host's CPU use since the last call (percent of all
// cores) and its memory in use (percent).
func (HostMeter) Measure() (float64, float64, error) {
	c, err := cpu.Percent(0, false)
	if err != nil || len(c) == 0 {
		return 0, 0, err
	}
	m, err := mem.VirtualMemory()
	if err != nil {
		return 0, 0, err
	}
	return c[0], m.UsedPercent, nil
}
