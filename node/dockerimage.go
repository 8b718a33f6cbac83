package node

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"go.temporal.io/sdk/temporal"

	"github.com/msm-project/msm/providers/docker"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

// A service's own image (catalog.Service.Image) holds its program, not
// msm: the node copies the container agent of the Manager's image into
// each container of it before it starts, at InjectedDir, and runs it as
// the container's entrypoint, as root (the image's USER is not the
// agent's: it starts the service as the container's own user). The agent
// gets the image's entrypoint, cmd and env (agentapi.ImageEnv), which it
// runs when the catalog names no command.

// InjectedDir is where the agent is copied into a container of a
// service's own image.
const InjectedDir = "/.msm"

// images are what the node knows of the services' images: the pulls in
// flight (one per image, which the starts of its containers share) and
// the agent copied out of the Manager's image, once.
type images struct {
	mu    sync.Mutex
	pulls map[string]*sync.Mutex
	// agent is a tar of InjectedDir holding the agent binary, made once
	// under agentMu.
	agentMu sync.Mutex
	agent   []byte
}

// imageContainer makes spec a container of in.Image: the image pulled
// when missing, the agent copied in and run as root, the image's own
// command handed to it.
func (n *Docker) imageContainer(ctx context.Context, in workflows.StartContainerInput, spec *docker.Container) error {
	cfg, err := n.ensureImage(ctx, in)
	if err != nil {
		return err
	}
	archive, err := n.agentArchive(ctx)
	if err != nil {
		return err
	}
	ic := agentapi.ImageCommand{Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, Env: cfg.Env}
	b, err := json.Marshal(ic)
	if err != nil {
		return err
	}
	spec.Config.Image = in.Image
	spec.Config.Entrypoint = []string{path.Join(InjectedDir, path.Base(n.cfg.AgentCommand[0]))}
	spec.Config.User = "0:0"
	spec.Config.Env = append(spec.Config.Env, agentapi.ImageEnv+"="+string(b))
	spec.Prepare = func(ctx context.Context, id string) error {
		_, err := n.cfg.Engine.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/", Content: bytes.NewReader(archive)})
		if err != nil {
			return fmt.Errorf("copying the agent into it, %w", err)
		}
		return nil
	}
	return nil
}

// imageConfig is what the node reads of an image.
type imageConfig struct {
	Entrypoint, Cmd, Env []string
}

// ensureImage returns the config of in.Image, pulling it first when the
// engine does not hold it (one pull per image at a time; the starts
// waiting for it then find it). An image that cannot be pulled fails with
// the non-retryable ImageNotFound, for the service that names it only:
// the Manager's crash-loop back-off tries again later, so a registry that
// was briefly away costs a delay, not a hot loop.
func (n *Docker) ensureImage(ctx context.Context, in workflows.StartContainerInput) (imageConfig, error) {
	if cfg, err := n.inspectImage(ctx, in.Image); !cerrdefs.IsNotFound(err) {
		return cfg, err
	}
	n.images.mu.Lock()
	if n.images.pulls == nil {
		n.images.pulls = map[string]*sync.Mutex{}
	}
	pull := n.images.pulls[in.Image]
	if pull == nil {
		pull = &sync.Mutex{}
		n.images.pulls[in.Image] = pull
	}
	n.images.mu.Unlock()
	pull.Lock()
	defer pull.Unlock()
	if cfg, err := n.inspectImage(ctx, in.Image); !cerrdefs.IsNotFound(err) {
		return cfg, err // pulled meanwhile
	}
	begin := time.Now()
	n.cfg.Log.Info("pulling image", "image", in.Image, "service", in.Service)
	resp, err := n.cfg.Engine.ImagePull(ctx, in.Image, client.ImagePullOptions{})
	if err == nil {
		// Wait reads the progress to its end without printing it: the
		// log gets the pull's start and its outcome only.
		err = resp.Wait(ctx)
	}
	if err == nil {
		n.cfg.Log.Info("image pulled", "image", in.Image, "took", time.Since(begin).Round(time.Millisecond))
		return n.inspectImage(ctx, in.Image)
	}
	if ctx.Err() != nil {
		return imageConfig{}, fmt.Errorf("pulling image %s, %w", in.Image, err)
	}
	n.cfg.Log.Warn("pulling image failed", "image", in.Image, "service", in.Service, "error", err)
	fix := "the image of service " + in.Service
	if in.Service == "" {
		fix = "manager.warm_pool.images" // a waiting container of that image's pool
	}
	return imageConfig{}, temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("image %q not found on server %s and not pulled (%v): build it on that engine or push it to a registry it can pull from, or fix %s in the catalog",
			in.Image, n.cfg.Server, err, fix), workflows.ErrImageNotFound, err)
}

// inspectImage reads an image's config; a not-found error says the engine
// does not hold it.
func (n *Docker) inspectImage(ctx context.Context, ref string) (imageConfig, error) {
	got, err := n.cfg.Engine.ImageInspect(ctx, ref)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return imageConfig{}, err
		}
		return imageConfig{}, fmt.Errorf("inspecting image %s, %w", ref, err)
	}
	var cfg imageConfig
	if c := got.Config; c != nil {
		cfg = imageConfig{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env}
	}
	return cfg, nil
}

// agentArchive returns a tar of InjectedDir holding the agent binary of
// the Manager's image (AgentCommand[0]), copied out of a container of that
// image created for it (never started), once per node.
func (n *Docker) agentArchive(ctx context.Context) ([]byte, error) {
	n.images.agentMu.Lock()
	defer n.images.agentMu.Unlock()
	if n.images.agent != nil {
		return n.images.agent, nil
	}
	name := "msm-" + n.cfg.Manager + "-agent-" + n.cfg.Server
	create := client.ContainerCreateOptions{Name: name, Config: &container.Config{
		Image: n.cfg.Image, Entrypoint: n.cfg.AgentCommand[:1],
		Labels: map[string]string{docker.LabelOwner: n.cfg.Manager, docker.LabelServer: n.cfg.Server, docker.LabelRole: docker.RoleAgentCopy},
	}}
	created, err := n.cfg.Engine.ContainerCreate(ctx, create)
	if cerrdefs.IsConflict(err) {
		// Left by a node that stopped while it copied: made anew.
		if err := docker.Remove(ctx, n.cfg.Engine, name); err != nil {
			return nil, err
		}
		created, err = n.cfg.Engine.ContainerCreate(ctx, create)
	}
	if err != nil {
		return nil, fmt.Errorf("creating a container of %s to copy the agent from, %w", n.cfg.Image, err)
	}
	defer func() { _ = docker.Remove(context.WithoutCancel(ctx), n.cfg.Engine, created.ID) }()
	res, err := n.cfg.Engine.CopyFromContainer(ctx, created.ID, client.CopyFromContainerOptions{SourcePath: n.cfg.AgentCommand[0]})
	if err != nil {
		return nil, fmt.Errorf("copying the agent %s out of %s, %w", n.cfg.AgentCommand[0], n.cfg.Image, err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	hdr, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("reading the agent %s out of %s, %w", n.cfg.AgentCommand[0], n.cfg.Image, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("the agent %s in %s is not a regular file; set the agent command to the binary itself", n.cfg.AgentCommand[0], n.cfg.Image)
	}
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	dir := InjectedDir[1:] // relative to the destination, "/"
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: hdr.ModTime}); err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: dir + "/" + path.Base(n.cfg.AgentCommand[0]), Mode: 0o755, Size: hdr.Size, ModTime: hdr.ModTime}); err != nil {
		return nil, err
	}
	if _, err := io.Copy(tw, tr); err != nil {
		return nil, fmt.Errorf("reading the agent %s out of %s, %w", n.cfg.AgentCommand[0], n.cfg.Image, err)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	n.images.agent = out.Bytes()
	return n.images.agent, nil
}
