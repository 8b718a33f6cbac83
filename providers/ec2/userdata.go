package ec2

import (
	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/providers/cloudinit"
)

// UserData is the user data of a new instance: the cloud-init document
// that starts `msm node` for server, with its secrets (see
// cloudinit.Node).
func UserData(boot catalog.NodeBoot, server, manager string, secrets cloudinit.Secrets) (string, error) {
	return cloudinit.Node(boot, server, manager, secrets)
}
