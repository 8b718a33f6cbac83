package catalog

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRender(t *testing.T) {
	data := TemplateData{Port: 21005, Service: "web", Container: "msm-web-3", Server: "local-1", Address: "127.0.0.1"}
	tests := []struct {
		name    string
		svc     Service
		command string
		args    []string
		env     []string
		wantErr string
	}{
		{
			name:    "every variable",
			svc:     Service{Name: "web", Command: "bin/{{.Service}}", Args: []string{"--port={{.Port}}", "--id={{.Container}}", "--on={{.Server}}", "--at={{.Address}}:{{.Port}}", "plain"}},
			command: "bin/web",
			args:    []string{"--port=21005", "--id=msm-web-3", "--on=local-1", "--at=127.0.0.1:21005", "plain"},
		},
		{
			name:    "env sorted by name",
			svc:     Service{Name: "web", Command: "bin/demo", Env: map[string]string{"PORT": "{{.Port}}", "A_FIRST": "x", "MSM_SERVICE": "{{.Service}}"}},
			command: "bin/demo",
			env:     []string{"A_FIRST=x", "MSM_SERVICE=web", "PORT=21005"},
		},
		{
			name:    "text that only looks like a template",
			svc:     Service{Name: "web", Command: "bin/demo", Args: []string{"{.Port}", "}}"}},
			command: "bin/demo",
			args:    []string{"{.Port}", "}}"},
		},
		{
			name:    "template functions",
			svc:     Service{Name: "web", Command: "bin/demo", Args: []string{`{{printf "%05d" .Port}}`, `{{if eq .Server "local-1"}}first{{else}}other{{end}}`}},
			command: "bin/demo",
			args:    []string{"21005", "first"},
		},
		{
			name:    "docker service without command",
			svc:     Service{Name: "web", Image: "demo:1", Env: map[string]string{"PORT": "{{.Port}}"}},
			command: "",
			env:     []string{"PORT=21005"},
		},
		{
			name:    "unknown field in command",
			svc:     Service{Name: "web", Command: "{{.Prot}}"},
			wantErr: "rendering command of service web, unknown template field .Prot; use one of .Port, .Service, .Container, .Server, .Address",
		},
		{
			name:    "syntax error in an arg",
			svc:     Service{Name: "web", Command: "bin/demo", Args: []string{"ok", "{{.Port"}},
			wantErr: "rendering args[1] of service web, unclosed action",
		},
		{
			name:    "bad env template",
			svc:     Service{Name: "web", Command: "bin/demo", Env: map[string]string{"X": "{{nope}}"}},
			wantErr: `rendering env X of service web, function "nope" not defined`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			command, args, env, err := tc.svc.Render(data)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Equal(t, tc.wantErr, err.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.command, command)
			assert.Equal(t, tc.args, args)
			assert.Equal(t, tc.env, env)
		})
	}
}
