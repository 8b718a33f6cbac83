package fleet

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/catalog"
)

// dockerCat is cat on the docker kind, where a service may name its own
// image.
func dockerCat(warm int, servers []catalog.Server, services ...catalog.Service) *catalog.Catalog {
	c := cat(warm, servers, services...)
	c.Manager.Kind = catalog.KindDocker
	return c
}

// imaged is svc with an image of its own and no command (the image's
// entrypoint runs).
func imaged(name, image string, initial int) catalog.Service {
	s := svc(name, initial, 1)
	s.Command, s.Image = "", image
	return s
}

// ofImg is c running image.
func ofImg(c Container, image string) Container {
	c.Image = image
	return c
}

// TestServiceImages: a service with an image of its own gets new
// containers of that image, never a waiting container of the Manager's
// image (nor does a service without one get a container of another
// image); its surplus or removed instances are destroyed, not returned to
// the warm pool, and they never count in it.
func TestServiceImages(t *testing.T) {
	app := imaged("app", "registry.example/app:1.2", 1)
	runDecide(t, []decideCase{
		{
			name: "provision: the plain service takes the waiting container, the imaged one a new container of its image",
			state: State{Manager: mgr, Catalog: dockerCat(1, []catalog.Server{big1}, svc("web", 1, 1), app),
				Inventory: &Inventory{Seq: 1, Servers: []Server{ready(big1)}, Containers: []Container{waiting("m-c1", "s1", 20000)}}},
			ops: []string{"provision: start m-c2@s1:20001=app of registry.example/app:1.2 start m-c3@s1:20002 load m-c1=web"},
		},
		{
			name: "extend: a waiting container is there, but not of the service's image",
			state: State{Manager: mgr, Catalog: dockerCat(1, []catalog.Server{big1, big2}, svc("web", 1, 1), app),
				Inventory: twoServers(loaded("m-c1", "s1", 20000, "web"), ofImg(loaded("m-c2", "s1", 20001, "app"), app.Image), waiting("m-c3", "s2", 21000)),
				Desired:   func(s catalog.Service) int { return s.Replicas.Initial + map[string]int{"app": 1}[s.Name] }, Extending: []string{"app"}},
			ops: []string{"extend app: start m-c10@s2:21001=app of registry.example/app:1.2"},
		},
		{
			name: "the Manager's image is never given a waiting container of another image",
			state: State{Manager: mgr, Catalog: dockerCat(0, []catalog.Server{big1, big2}, svc("web", 1, 1)),
				Inventory: twoServers(ofImg(waiting("m-c1", "s1", 20000), app.Image))},
			ops: []string{"provision: start m-c10@s2:21000=web"},
		},
		{
			name: "recover: the replacement is a container of the service's image",
			state: State{Manager: mgr, Catalog: dockerCat(1, []catalog.Server{big1, big2}, svc("web", 1, 1), app),
				Inventory:  twoServers(loaded("m-c1", "s1", 20000, "web"), ofImg(crashed("m-c2", "s1", 20001, "app"), app.Image), waiting("m-c3", "s2", 21000)),
				Recovering: []string{"app"}},
			ops: []string{"recover app: start m-c10@s2:21001=app of registry.example/app:1.2"},
		},
		{
			name: "shrink: a surplus instance of its own image is destroyed though the pool is short",
			state: State{Manager: mgr, Catalog: dockerCat(1, []catalog.Server{big1, big2}, app),
				Inventory: twoServers(ofImg(loaded("m-c1", "s1", 20000, "app"), app.Image), ofImg(loaded("m-c2", "s2", 21000, "app"), app.Image))},
			ops: []string{"shrink app: destroy m-c2 release s2", "refill: start m-c10@s1:20001"},
		},
		{
			name: "a service with its own image gone from the catalog: its containers are destroyed, not unloaded",
			state: State{Manager: mgr, Catalog: dockerCat(1, []catalog.Server{big1, big2}, svc("web", 1, 1)),
				Inventory: twoServers(loaded("m-c1", "s1", 20000, "web"), ofImg(loaded("m-c2", "s1", 20001, "app"), app.Image), waiting("m-c3", "s2", 21000))},
			ops: []string{"shrink app: destroy m-c2"},
		},
		{
			name: "on a process kind the image is not the container's",
			state: State{Manager: mgr, Catalog: cat(0, []catalog.Server{big1}, app),
				Inventory: &Inventory{Seq: 1, Servers: []Server{ready(big1)}}},
			ops: []string{"provision: start m-c2@s1:20000=app"},
		},
	})
}

// TestWarmPoolCountsTheManagersImageOnly: a container of a service's own
// image is never part of the pool, whatever its state.
func TestWarmPoolCountsTheManagersImageOnly(t *testing.T) {
	inv := twoServers(waiting("m-c1", "s1", 20000), ofImg(waiting("m-c2", "s1", 20001), "app:1"),
		ofImg(starting("m-c3", "s1", 20002, ""), "app:1"), Container{ID: "m-c4", Server: "s2", Port: 21000, State: Draining, Unloading: true, Image: "app:1"})
	assert.Equal(t, 1, inv.WarmPool())
}

// TestContainerListCarriesImages: the compact rows carry a container's
// image, and a list without images encodes as before images existed.
func TestContainerListCarriesImages(t *testing.T) {
	tests := []struct {
		name string
		list ContainerList
		want string // the encoding, when it is fixed
	}{
		{
			name: "no images: the form of before",
			list: ContainerList{loaded("m-c1", "s1", 20000, "web"), {ID: "m-c2", Server: "s2", Port: 21000, State: Failed, Error: "boom"}},
			want: `{"servers":["s1","s2"],"services":["","web"],"rows":[["m-c1",0,20000,"loaded",1,3,0],["m-c2",1,21000,"failed",0,0,0,"boom"]]}`,
		},
		{
			name: "images, with and without an error",
			list: ContainerList{ofImg(loaded("m-c1", "s1", 20000, "app"), "app:1"), waiting("m-c2", "s1", 20001),
				{ID: "m-c3", Server: "s1", Port: 20002, State: Failed, Service: "api", Error: "image \"api:2\" not found", Image: "api:2"},
				ofImg(loaded("m-c4", "s1", 20003, "app"), "app:1")},
			want: `{"servers":["s1"],"services":["","app","api"],"images":["app:1","api:2"],"rows":[["m-c1",0,20000,"loaded",1,3,0,"",0],["m-c2",0,20001,"waiting",0,2,101],["m-c3",0,20002,"failed",2,0,0,"image \"api:2\" not found",1],["m-c4",0,20003,"loaded",1,3,0,"",0]]}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.list)
			require.NoError(t, err)
			assert.JSONEq(t, tc.want, string(b))
			var back ContainerList
			require.NoError(t, json.Unmarshal(b, &back))
			assert.Equal(t, tc.list, back)
		})
	}
	var bad ContainerList
	assert.ErrorContains(t, json.Unmarshal([]byte(`{"servers":["s1"],"services":[""],"rows":[["m-c1",0,1,"waiting",0,0,0,"",3]]}`), &bad), "names image 3, beyond the list")
}

// TestWarmPoolPerImage: with a pool per service image, waiting containers
// of that image are started and kept for its services: the service loads
// one, the refill replaces it, a surplus instance returns to it; the
// Manager's image's pool and services stay apart from it.
func TestWarmPoolPerImage(t *testing.T) {
	app := imaged("app", "registry.example/app:1.2", 1)
	pools := func(def, img int, services ...catalog.Service) *catalog.Catalog {
		c := dockerCat(def, []catalog.Server{big1, big2}, services...)
		c.Manager.WarmPoolImages = []catalog.Pool{{Image: app.Image, Size: img}}
		return c
	}
	appWaiting := func(id, server string, port int) Container { return ofImg(waiting(id, server, port), app.Image) }
	runDecide(t, []decideCase{
		{
			name: "provision: each pool gets its waiting containers, the service a new container of its image",
			state: State{Manager: mgr, Catalog: pools(1, 2, svc("web", 1, 1), app),
				Inventory: &Inventory{Seq: 0, Servers: []Server{ready(big1), ready(big2)}}},
			ops: []string{"provision: start m-c1@s1:20000=web start m-c2@s2:21000=app of registry.example/app:1.2 start m-c3@s1:20001 " +
				"start m-c4@s2:21001 of registry.example/app:1.2 start m-c5@s1:20002 of registry.example/app:1.2"},
		},
		{
			name: "extend: the service loads a waiting container of its image; the refill waits",
			state: State{Manager: mgr, Catalog: pools(1, 1, svc("web", 1, 1), app),
				Inventory: twoServers(loaded("m-c1", "s1", 20000, "web"), ofImg(loaded("m-c2", "s1", 20001, "app"), app.Image),
					waiting("m-c3", "s2", 21000), appWaiting("m-c4", "s2", 21001)),
				Desired: func(s catalog.Service) int { return s.Replicas.Initial + map[string]int{"app": 1}[s.Name] }, Extending: []string{"app"}},
			ops: []string{"extend app: load m-c4=app of registry.example/app:1.2"},
		},
		{
			name: "the plain service never takes the image's waiting container",
			state: State{Manager: mgr, Catalog: pools(0, 1, svc("web", 1, 1), app),
				Inventory: twoServers(ofImg(loaded("m-c1", "s1", 20000, "app"), app.Image), appWaiting("m-c2", "s2", 21000))},
			ops: []string{"provision: start m-c10@s1:20001=web"},
		},
		{
			name: "refill: the image's pool is short",
			state: State{Manager: mgr, Catalog: pools(1, 1, app),
				Inventory: twoServers(ofImg(loaded("m-c1", "s1", 20000, "app"), app.Image), waiting("m-c2", "s2", 21000))},
			ops:     []string{"refill: start m-c10@s1:20001 of registry.example/app:1.2"},
			reasons: []string{"warm pool 1 below its size 2"},
		},
		{
			name: "shrink: a surplus instance returns to its image's short pool",
			state: State{Manager: mgr, Catalog: pools(0, 1, app),
				Inventory: twoServers(ofImg(loaded("m-c1", "s1", 20000, "app"), app.Image), ofImg(loaded("m-c2", "s2", 21000, "app"), app.Image))},
			ops: []string{"shrink app: unload m-c2"},
		},
		{
			name: "shrink: its image's pool full, a surplus instance is destroyed",
			state: State{Manager: mgr, Catalog: pools(0, 1, app),
				Inventory: twoServers(ofImg(loaded("m-c1", "s1", 20000, "app"), app.Image), ofImg(loaded("m-c2", "s2", 21000, "app"), app.Image),
					appWaiting("m-c3", "s1", 20001))},
			ops: []string{"shrink app: destroy m-c2 release s2"},
		},
	})
}
