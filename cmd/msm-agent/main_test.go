package main

import (
	"os/exec"
	"strings"
	"testing"
)

// heavy are the module paths a container agent must not link: a node runs
// one agent per container, and with these `msm agent` held ~39 MiB; with
// the Temporal SDK alone, 24 MiB and ~70 ms of CPU to start (internal/wire
// speaks to Temporal instead).
var heavy = []string{
	"go.temporal.io/",        // the SDK and the API's generated types
	"google.golang.org/grpc", // grpc-go
	"github.com/aws/",        // aws-sdk-go-v2 (providers/ec2)
	"github.com/Azure/",      // azure-sdk-for-go (providers/azure)
	"github.com/jackc/",      // pgx (catalog/pgcatalog)
	// the Docker client and what it brings (providers/docker, node)
	"github.com/moby/", "github.com/docker/", "github.com/containerd/",
}

// TestLinksNoTemporalSDKNorCloudSDKNorDockerNorPostgreSQL lists the packages msm-agent
// links (`go list -deps`, with and without cgo: the image builds it
// without) and fails on any of heavy.
func TestLinksNoTemporalSDKNorCloudSDKNorDockerNorPostgreSQL(t *testing.T) {
	for _, cgo := range []string{"CGO_ENABLED=1", "CGO_ENABLED=0"} {
		cmd := exec.Command("go", "list", "-deps", ".")
		cmd.Env = append(cmd.Environ(), cgo)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps (%s): %v", cgo, err)
		}
		for _, pkg := range strings.Fields(string(out)) {
			for _, h := range heavy {
				if strings.HasPrefix(pkg, h) {
					t.Errorf("msm-agent links %s (%s): a container agent carries no Temporal SDK, cloud SDK, Docker client or PostgreSQL driver; keep them out of internal/agentcmd's imports", pkg, cgo)
				}
			}
		}
	}
}
