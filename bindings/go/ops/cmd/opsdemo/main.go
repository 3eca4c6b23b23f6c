// Command opsdemo plays scenario traffic against a fleet and serves the operations API and the
// Prometheus metrics on localhost, for a person to curl:
//
//	go run ./cmd/opsdemo -addr 127.0.0.1:8089 -duration 2m
//	curl -s 'localhost:8089/api/nodes?limit=2' | jq
//	curl -s 'localhost:8089/api/audit?result=rejected' | jq
//	curl -s localhost:8089/api/openapi.yaml
//	curl -s localhost:8089/metrics | grep ^nl_
//	curl -s -X POST -H 'Authorization: Bearer demo' localhost:8089/api/nodes/cloud-3/decommission
//	curl -s -H 'Authorization: Bearer demo' localhost:8089/api/nodes/cloud-3/ticket
//
// It stops after -duration, or on SIGINT/SIGTERM: it then stops accepting connections, lets
// requests in flight finish (up to -grace), and closes the fleet (syncing its journal).
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
	"os/signal"
	"syscall"
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
	grace := flag.Duration("grace", 10*time.Second, "how long requests in flight may take to finish at shutdown")
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

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	go func() {
		_ = fleet.FollowAudit(ctx, 0, time.Second, lifecycle.LogAudit(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	}()
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	shutdown := make(chan error, 1)
	go func() {
		<-ctx.Done()
		log.Printf("shutting down: draining requests in flight (up to %s)", *grace)
		drain, cancel := context.WithTimeout(context.Background(), *grace)
		defer cancel()
		shutdown <- srv.Shutdown(drain)
	}()
	fmt.Printf("serving http://%s/api/nodes and http://%s/metrics for %s\n", *addr, *addr, *duration)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	if err := <-shutdown; err != nil {
		log.Printf("shutdown: %v", err)
	}
	log.Printf("stopped")
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
