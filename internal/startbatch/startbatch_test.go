package startbatch_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/internal/startbatch"
	"github.com/msm-project/msm/workflows"
)

func TestEachGivesEachContainerItsOutcome(t *testing.T) {
	errs := map[string]error{
		"c2": temporal.NewNonRetryableApplicationError("port 20001 is held by pid 77", workflows.ErrPortInUse, nil),
		// A held port stays held even if the node forgot to say so.
		"c3": temporal.NewApplicationError("port 20002 is held by pid 78", workflows.ErrPortInUse),
		"c4": temporal.NewNonRetryableApplicationError("docker rm -f it", "ContainerNameTaken", nil),
		"c5": errors.New("fork/exec: resource temporarily unavailable"),
		"c6": temporal.NewApplicationError("engine busy", "EngineBusy"),
	}
	in := workflows.StartContainersInput{Manager: "m1", Server: "s1"}
	for i, id := range []string{"c1", "c2", "c3", "c4", "c5", "c6", "c7"} {
		in.Containers = append(in.Containers, workflows.StartContainer{Container: id, Port: 20000 + i})
	}
	var running, most atomic.Int32
	got := startbatch.Each(context.Background(), in, func(_ context.Context, one workflows.StartContainerInput) (workflows.StartContainerResult, error) {
		most.Store(max(most.Load(), running.Add(1)))
		defer running.Add(-1)
		if one.Manager != "m1" || one.Server != "s1" || one.Port != 20000+int(one.Container[1]-'1') {
			t.Errorf("start of %s got %+v", one.Container, one)
		}
		if err := errs[one.Container]; err != nil {
			return workflows.StartContainerResult{}, err
		}
		return workflows.StartContainerResult{PID: 100 + one.Port - 20000, Attached: one.Container == "c7"}, nil
	})
	want := []workflows.StartOutcome{
		{Container: "c1", PID: 100},
		{Container: "c2", ErrorType: workflows.ErrPortInUse, Error: "port 20001 is held by pid 77"},
		{Container: "c3", ErrorType: workflows.ErrPortInUse, Error: "port 20002 is held by pid 78"},
		{Container: "c4", ErrorType: "ContainerNameTaken", Error: "docker rm -f it"},
		{Container: "c5", Error: "fork/exec: resource temporarily unavailable", Retry: true},
		{Container: "c6", Error: "engine busy (type: EngineBusy, retryable: true)", Retry: true},
		{Container: "c7", PID: 106, Attached: true},
	}
	if len(got.Started) != len(want) {
		t.Fatalf("got %d outcomes, want %d: %+v", len(got.Started), len(want), got.Started)
	}
	for i := range want {
		if got.Started[i] != want[i] {
			t.Errorf("outcome %d = %+v, want %+v", i, got.Started[i], want[i])
		}
	}
	if most.Load() > 8 {
		t.Errorf("%d starts ran at once, more than 8", most.Load())
	}
}

func TestEachCutsALongErrorText(t *testing.T) {
	long := strings.Repeat("x", 64<<10) // a start that returned a process's whole output
	in := workflows.StartContainersInput{Manager: "m1", Server: "s1",
		Containers: []workflows.StartContainer{{Container: "c1", Port: 20000}, {Container: "c2", Port: 20001}}}
	got := startbatch.Each(context.Background(), in, func(_ context.Context, one workflows.StartContainerInput) (workflows.StartContainerResult, error) {
		if one.Container == "c1" {
			return workflows.StartContainerResult{}, temporal.NewNonRetryableApplicationError(long, "StartFailed", nil)
		}
		return workflows.StartContainerResult{}, errors.New(long)
	})
	for _, o := range got.Started {
		if len(o.Error) > fleet.MaxText || !strings.HasPrefix(o.Error, "xxx") || !strings.Contains(o.Error, "more bytes in the log") {
			t.Errorf("%s: error of %d bytes kept: %.80q…", o.Container, len(o.Error), o.Error)
		}
	}
	if got.Started[0].ErrorType != "StartFailed" || got.Started[0].Retry || !got.Started[1].Retry {
		t.Errorf("the outcomes changed with the cut: %+v", got.Started)
	}
}
