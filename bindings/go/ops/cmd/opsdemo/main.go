// Command opsdemo plays scenario traffic against a fleet and serves the operations API and the
// Prometheus metrics on localhost, for a person to curl:
//
//	go run ./cmd/opsdemo -addr 127.0.0.1:8089 -duration 2m
//	curl -s localhost:8089/api/nodes | jq
//	curl -s 'localhost:8089/api/audit?result=rejected' | jq
//	curl -s localhost:8089/metrics | grep ^nl_
//	curl -s -X POST -H 'Authorization: Bearer demo' localhost:8089/api/nodes/cloud-3/decommission
//
// It stops by itself after -duration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
	"github.com/payperplay/node-lifecycle/bindings/go/ops/api"
	"github.com/payperplay/node-lifecycle/bindings/go/ops/metrics"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8089", "listen address (loopback)")
	duration := flag.Duration("duration", 2*time.Minute, "stop after this long")
	flag.Parse()

	fleet, err := lifecycle.New(lifecycle.Options{ManualClockStart: time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)})
	if err != nil {
		log.Fatal(err)
	}
	defer fleet.Close()
	play(fleet)

	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.New(fleet))
	mux := http.NewServeMux()
	mux.Handle("/api/", http.StripPrefix("/api", api.New(fleet, api.Options{
		Delete: func(_ context.Context, id string) error { log.Printf("fake provider: deleting %s", id); return nil },
		Authorize: func(r *http.Request) error {
			if r.Header.Get("Authorization") != "Bearer demo" {
				return errors.New("send 'Authorization: Bearer demo'")
			}
			return nil
		},
	})))
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	go func() {
		_ = fleet.FollowAudit(ctx, 0, time.Second, lifecycle.LogAudit(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	}()
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Shutdown(context.Background()) }()
	fmt.Printf("serving http://%s/api/nodes and http://%s/metrics for %s\n", *addr, *addr, *duration)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// play runs the four scenarios so the API has something to show.
func play(f *lifecycle.Fleet) {
	ready := func(id string) {
		_, _ = f.Register(lifecycle.NodeSpec{ID: id, Origin: lifecycle.OriginCloud, TotalRAMMB: 8192, InstanceType: "cx32", HourlyCost: 0.12})
		_, _ = f.Transition(id, lifecycle.StateInitializing, "cloud_init_started")
		_ = f.Advance(3 * time.Minute)
		_, _ = f.Transition(id, lifecycle.StateReady, "cloud_init_completed")
	}
	ready("cloud-1")
	_, _ = f.AddContainer("cloud-1", "mc-survival", 2048)
	_ = f.Advance(90 * time.Minute)
	_, _ = f.RemoveContainer("cloud-1", "mc-survival")
	_ = f.Advance(31 * time.Minute)
	_, _ = f.Decommission(context.Background(), "cloud-1", "reactive_policy", func(context.Context, string) error { return nil })
	ready("cloud-2")
	_, _ = f.BeginDecommission("cloud-2", "reactive_policy")
	ready("cloud-3")
	_, _ = f.AddContainer("cloud-3", "mc-a", 2048)
	_, _ = f.RemoveContainer("cloud-3", "mc-a")
	ready("cloud-4")
	_, _ = f.AddContainer("cloud-4", "mc-b", 2048)
	_, _ = f.AddContainer("cloud-4", "mc-c", 1024)
	_ = f.Advance(time.Hour)
	_, _ = f.BeginDecommission("cloud-4", "consolidation_policy")
	for _, id := range []string{"local-node", "proxy-node"} {
		_ = f.RegisterSystemNode(id, 0)
		_, _ = f.BeginDecommission(id, "manual")
	}
	_ = f.RegisterCloudNode("cloud-5", 16384)
}
