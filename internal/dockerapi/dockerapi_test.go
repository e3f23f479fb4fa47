package dockerapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zkvstore/zkv/internal/dockerapi"
	"github.com/zkvstore/zkv/internal/dockerapi/dockertest"
)

func TestAPIError(t *testing.T) {
	e := dockertest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	api := dockerapi.New(e.Socket(), "")
	defer api.Close()

	// An engine error keeps its status for errors.As.
	_, err := api.Inspect(ctx, "missing")
	var apiErr *dockerapi.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || !strings.Contains(apiErr.Message, "No such container") {
		t.Errorf("Inspect(missing) = %v, want a 404 APIError", err)
	}
}

func TestDemux(t *testing.T) {
	frame := func(stream byte, s string) string { return string(dockertest.Frame(stream, s)) }
	tests := []struct {
		name, in, want string
		err            bool
	}{
		{"empty", "", "", false},
		{"two streams", frame(1, "out\n") + frame(2, "err\n"), "out\nerr\n", false},
		{"empty frame", frame(1, "") + frame(1, "x"), "x", false},
		{"cut header", frame(1, "a") + "\x01\x00", "a", true},
		{"cut payload", frame(1, "abc")[:10], "ab", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dockerapi.Demux(tt.in)
			if got != tt.want || (err != nil) != tt.err {
				t.Errorf("Demux = %q, %v; want %q, error %v", got, err, tt.want, tt.err)
			}
		})
	}
}
