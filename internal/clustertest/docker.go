package clustertest

import (
	"errors"
	"net"
	"os/exec"
	"strings"
	"time"

	dockerkind "github.com/msm-project/msm/providers/docker"
)

// Docker runs the docker CLI and returns its combined output, trimmed.
func Docker(args ...string) (string, error) {
	out, err := exec.Command("docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// DockerClean removes every Docker container and network with manager's
// owner label, what `make docker-clean` removes: its node containers
// first, which may still start a container the worker asked for after the
// list was read, and pass after pass until one finds nothing.
func DockerClean(manager string) {
	owner := "label=" + dockerkind.LabelOwner + "=" + manager
	node := "label=" + dockerkind.LabelRole + "=" + dockerkind.RoleNode
	for range 20 {
		ids, _ := Docker("ps", "-aq", "--filter", owner)
		if ids == "" {
			break
		}
		if nodes, _ := Docker("ps", "-aq", "--filter", owner, "--filter", node); nodes != "" {
			_, _ = Docker(append([]string{"rm", "-f"}, strings.Fields(nodes)...)...)
		}
		_, _ = Docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		time.Sleep(500 * time.Millisecond)
	}
	if ids, _ := Docker("network", "ls", "-q", "--filter", owner); ids != "" {
		_, _ = Docker(append([]string{"network", "rm"}, strings.Fields(ids)...)...)
	}
}

// BridgeIP is this machine's IPv4 address on Docker's default bridge
// (docker0), which containers reach as host.docker.internal.
func BridgeIP() (string, error) {
	ifc, err := net.InterfaceByName("docker0")
	if err != nil {
		return "", err
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() != nil {
			return ip.IP.String(), nil
		}
	}
	return "", errors.New("docker0 has no IPv4 address")
}
