package node

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/msm-project/msm/workflows/agentapi"
)

// MetadataAddresses are the addresses of the clouds' instance metadata
// services: EC2's and Azure's (IPv4) and EC2's on IPv6. What a server
// booted with (its user data: the node's join token) is there for any
// process of the server that asks.
var MetadataAddresses = []string{"169.254.169.254", "fd00:ec2::254"}

// serviceUsers is the range of the users MicroServices run as
// (agentapi.ServiceUID), as iptables' owner match writes it.
var serviceUsers = strconv.Itoa(agentapi.ServiceUIDBase) + "-" + strconv.Itoa(2*agentapi.ServiceUIDBase-1)

// Runner runs one command (argv) and returns its combined output. The
// node's is exec; a test's runs it in a network namespace of its own.
type Runner func(argv ...string) ([]byte, error)

// Exec is the Runner that runs argv on this host.
func Exec(argv ...string) ([]byte, error) { return exec.Command(argv[0], argv[1:]...).CombinedOutput() }

// BlockMetadata makes the kernel refuse every connection a MicroService
// (a process of a user of agentapi.ServiceUID's range) opens to the
// instance metadata service, so that none can read the node's join token
// from the server's user data: an OUTPUT rule of iptables per address, and
// of ip6tables when the host has it, each added once (checked with -C
// first, so a node that starts again adds nothing). It fails when iptables
// cannot add them: a cloud node that cannot hide its token starts nothing.
func BlockMetadata(run Runner) error {
	for _, addr := range MetadataAddresses {
		tool := "iptables"
		if strings.Contains(addr, ":") {
			tool = "ip6tables"
		}
		if _, err := exec.LookPath(tool); err != nil {
			if tool == "ip6tables" {
				continue // no IPv6 filtering here: no IPv6 to reach it by either
			}
			return fmt.Errorf("hiding the instance metadata service (%s) from MicroServices: %s is not installed; install it in the server's image (the node starts nothing without it)", addr, tool)
		}
		rule := []string{"OUTPUT", "-d", addr, "-m", "owner", "--uid-owner", serviceUsers, "-j", "REJECT"}
		if _, err := run(append([]string{tool, "-w", "-C"}, rule...)...); err == nil {
			continue
		}
		if out, err := run(append([]string{tool, "-w", "-I"}, rule...)...); err != nil {
			return fmt.Errorf("hiding the instance metadata service (%s) from MicroServices: %s: %v: %s", addr, tool, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}
