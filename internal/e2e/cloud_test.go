package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// cloudFile is a file of a cloud-init document (write_files).
type cloudFile struct {
	Path, Owner, Permissions, Content string
}

// runcmd is the first command of a cloud-init document, and the files it
// writes first.
func runcmd(userData []byte) ([]string, []cloudFile, error) {
	var doc struct {
		Runcmd     [][]string  `yaml:"runcmd"`
		WriteFiles []cloudFile `yaml:"write_files"`
	}
	if err := yaml.Unmarshal(userData, &doc); err != nil {
		return nil, nil, fmt.Errorf("user data is not cloud-init YAML: %w", err)
	}
	if len(doc.Runcmd) == 0 || len(doc.Runcmd[0]) == 0 {
		return nil, nil, fmt.Errorf("user data has no runcmd: %q", userData)
	}
	return doc.Runcmd[0], doc.WriteFiles, nil
}

func (d *dockerInstances) Boot(id string, userData []byte) (string, error) {
	argv, files, err := runcmd(userData)
	if err != nil {
		return "", err
	}
	// The image has no iptables, and the hosts no metadata service to hide:
	// node.TestBlockMetadata tests what --block-metadata does.
	argv = slices.DeleteFunc(argv, func(a string) bool { return a == "--block-metadata" })
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
		"--label", d.c.net.label, "--network", d.c.net.name, "--ip", ip, "-e", "MSM_REPORT_EVERY=0"}
	// What cloud-init would write before it runs the command: each file,
	// root's with its mode, mounted where the document puts it.
	for i, f := range files {
		mode, err := strconv.ParseUint(f.Permissions, 8, 32)
		if err != nil || f.Owner != "root:root" {
			return "", fmt.Errorf("write_files[%d]: owner %q, permissions %q", i, f.Owner, f.Permissions)
		}
		host := filepath.Join(d.c.dir, fmt.Sprintf("%s-file-%d", server, i))
		if err := os.WriteFile(host, []byte(f.Content), os.FileMode(mode)); err != nil {
			return "", err
		}
		if err := os.Chmod(host, os.FileMode(mode)); err != nil {
			return "", err
		}
		args = append(args, "-v", host+":"+f.Path+":ro")
	}
	out, err := docker(append(append(args, image), argv[1:]...)...)
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
