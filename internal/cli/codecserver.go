package cli

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/converter"

	"github.com/msm-project/msm/internal/codec"
	"github.com/msm-project/msm/starter"
)

// codecServer runs `msm codec-server`: /encode and /decode for the Web UI
// (TEMPORAL_CODEC_ENDPOINT, or the dev server's --ui-codec-endpoint) and
// the temporal CLI (--codec-endpoint).
func (e *env) codecServer(args []string) error {
	fs := e.flags("codec-server", nil)
	keyFile := fs.String("codec-key-file", e.getenv("MSM_CODEC_KEY_FILE"), "the payload keys `file`, as every msm process of the Manager has it (MSM_CODEC_KEY_FILE)")
	listen := fs.String("listen", e.or("MSM_CODEC_LISTEN", "127.0.0.1:8234"), "`host:port` to serve on (MSM_CODEC_LISTEN)")
	origins := fs.String("cors-origins", e.or("MSM_CODEC_CORS_ORIGINS", "http://localhost:8233,http://127.0.0.1:8233"), "comma-separated `origins` of the Web UIs that may call it (MSM_CODEC_CORS_ORIGINS)")
	tokenFile := fs.String("token-file", e.getenv("MSM_CODEC_TOKEN_FILE"), "`file` holding a bearer token every request must carry (MSM_CODEC_TOKEN_FILE; default none: bind to loopback then)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *keyFile == "" {
		fmt.Fprintln(e.stderr, "msm codec-server: --codec-key-file FILE is required (or set MSM_CODEC_KEY_FILE)")
		return errUsage
	}
	cdc, err := codec.Load(*keyFile)
	if err != nil {
		return fmt.Errorf("--codec-key-file: %w", err)
	}
	token := ""
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return fmt.Errorf("--token-file: %s is empty", *tokenFile)
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s, %w", *listen, err)
	}
	ctx, stop := interrupted()
	defer stop()
	fmt.Fprintf(e.stdout, "Codec server on http://%s (keys %s): temporal ... --codec-endpoint http://%s; the Web UI's TEMPORAL_CODEC_ENDPOINT\n",
		ln.Addr(), strings.Join(cdc.KeyIDs(), ","), ln.Addr())
	return serveCodec(ctx, ln, codecHandler(cdc, strings.Split(*origins, ","), token))
}

// serveCodec serves h on ln until ctx ends.
func serveCodec(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// maxCodecRequest bounds a request's body: a history's payloads come a few
// at a time, each at most Temporal's 2 MB.
const maxCodecRequest = 16 << 20

// codecHandler serves /encode and /decode with c, answering the CORS
// preflight of the origins listed, and requiring "Authorization: Bearer
// <token>" when token is set.
func codecHandler(c *codec.Codec, origins []string, token string) http.Handler {
	inner := converter.NewPayloadCodecHTTPHandler(starter.PayloadCodec(c))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" && slices.Contains(origins, o) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", o)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization")
			h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			h.Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
		if token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				http.Error(w, "a bearer token is required: send Authorization: Bearer <the token of --token-file>", http.StatusUnauthorized)
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxCodecRequest)
		inner.ServeHTTP(w, r)
	})
}
