package workflows_test

import (
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/workflows"
)

// tfDockerCatalog is tfCatalog on the docker kind, with web of an image of
// its own.
func tfDockerCatalog() catalog.Catalog {
	c := tfCatalog()
	c.Manager.Kind = catalog.KindDocker
	c.Manager.Node = catalog.NodeBoot{Temporal: "host.docker.internal:7233", MSM: catalog.DefaultMSM}
	c.Manager.Docker = catalog.Docker{Image: catalog.DefaultDockerImage}
	c.Services = slices.Clone(c.Services)
	c.Services[0].Command, c.Services[0].Args, c.Services[0].Image = "", nil, "registry.example/web:1"
	c.Default()
	return c
}

// TestServiceImageCatalogStartsContainersOfIt: a Manager takes a catalog
// whose service names its own image, and the Provision's starts carry that
// image and service to the node; api's and the pool's carry none.
func (s *ManagerSuite) TestServiceImageCatalogStartsContainersOfIt() {
	var st workflows.Status
	var err error
	s.signal(time.Second, workflows.SignalCatalog, workflows.CatalogSignal{Catalog: tfDockerCatalog(), Source: "catalog.yaml"})
	s.snapshot(20*time.Second, &st, &err)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.Require().NoError(err)
	s.Empty(st.CatalogError)
	images := map[string]string{} // container → its image, for the node
	services := map[string]string{}
	for _, c := range s.fake.began(workflows.ActivityStartContainers) {
		for _, one := range c.Input.(workflows.StartContainersInput).Containers {
			images[one.Container], services[one.Container] = one.Image, one.Service
		}
	}
	s.Require().NotEmpty(images)
	web := 0
	for _, ct := range st.Containers {
		switch ct.Service {
		case "web":
			web++
			s.Equal("registry.example/web:1", images[ct.ID], ct.ID)
			s.Equal("web", services[ct.ID], ct.ID)
			s.Equal("registry.example/web:1", ct.Image, "status shows %s's image", ct.ID)
		default:
			s.Empty(images[ct.ID], "%s (%q) runs the Manager's image", ct.ID, ct.Service)
			s.Empty(services[ct.ID])
		}
	}
	s.Equal(2, web)
}

// TestServiceImageCatalogRefusedByRunsBeforeTheChange: a run begun before
// service-images refuses such a catalog, as it did, and keeps the one in
// force.
func (s *ManagerSuite) TestServiceImageCatalogRefusedByRunsBeforeTheChange() {
	s.env.OnGetVersion("service-images", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	var st workflows.Status
	var err error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.signal(6*time.Second, workflows.SignalCatalog, workflows.CatalogSignal{Catalog: tfDockerCatalog(), Source: "catalog.yaml"})
	s.snapshot(20*time.Second, &st, &err)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.Require().NoError(err)
	s.Contains(st.CatalogError, "catalog.yaml: services[0].image: a service does not name an image")
	s.Equal(catalog.KindStandalone, st.Kind, "the catalog in force stays")
	for _, c := range s.fake.began(workflows.ActivityStartContainers) {
		for _, one := range c.Input.(workflows.StartContainersInput).Containers {
			s.Empty(one.Image)
		}
	}
}
