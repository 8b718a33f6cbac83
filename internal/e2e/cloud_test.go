package e2e

import (
	"fmt"
	"strconv"
	"sync"

	"gopkg.in/yaml.v3"
)

// imageMSM is where the image holds msm (the default of manager.node.msm).
const imageMSM = "/usr/local/bin/msm"

// dockerInstances boots the instances of a simulated cloud as hosts: each
// is a container of the msm image on the cluster's network, running the
// command its cloud-init user data gives (runcmd, an argument list), with
// msm at imageMSM.
type dockerInstances struct {
	c    *cluster
	mu   sync.Mutex
	next int
	ips  map[string]string // instance ID -> server name
}

func newDockerInstances(c *cluster) *dockerInstances {
	return &dockerInstances{c: c, ips: map[string]string{}}
}

// runcmd is the first command of a cloud-init document.
func runcmd(userData []byte) ([]string, error) {
	var doc struct {
		Runcmd [][]string `yaml:"runcmd"`
	}
	if err := yaml.Unmarshal(userData, &doc); err != nil {
		return nil, fmt.Errorf("user data is not cloud-init YAML: %w", err)
	}
	if len(doc.Runcmd) == 0 || len(doc.Runcmd[0]) == 0 {
		return nil, fmt.Errorf("user data has no runcmd: %q", userData)
	}
	return doc.Runcmd[0], nil
}

func (d *dockerInstances) Boot(id string, userData []byte) (string, error) {
	argv, err := runcmd(userData)
	if err != nil {
		return "", err
	}
	if argv[0] != imageMSM {
		return "", fmt.Errorf("user data runs %q; the image has %s", argv[0], imageMSM)
	}
	server := id
	for i, a := range argv[:len(argv)-1] {
		if a == "--server" {
			server = argv[i+1]
		}
	}
	d.mu.Lock()
	d.next++
	ip := d.c.net.prefix + strconv.Itoa(100+d.next)
	d.ips[id] = server
	d.mu.Unlock()
	// Named for its server: a second instance of one server would clash.
	args := []string{"run", "-d", "--name", d.c.hostName(server), "--hostname", server,
		"--label", d.c.net.label, "--network", d.c.net.name, "--ip", ip, "-e", "MSM_REPORT_EVERY=0", image}
	out, err := docker(append(args, argv[1:]...)...)
	if err != nil {
		return "", fmt.Errorf("docker run: %v: %s", err, out)
	}
	return ip, nil
}

func (d *dockerInstances) Stop(id string) error {
	d.mu.Lock()
	server := d.ips[id]
	d.mu.Unlock()
	if server == "" {
		return nil
	}
	out, err := docker("rm", "-f", d.c.hostName(server))
	if err != nil {
		return fmt.Errorf("docker rm: %v: %s", err, out)
	}
	return nil
}

// running reports whether a server's host container runs.
func (d *dockerInstances) running(server string) bool {
	out, err := docker("inspect", "-f", "{{.State.Running}}", d.c.hostName(server))
	return err == nil && out == "true"
}
