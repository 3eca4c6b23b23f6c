// Command nl-salvage recovers what can be verified from a damaged data directory (one that
// lifecycle.New refused with ErrCorrupt) into a new directory, and prints exactly what was
// lost. It never writes the damaged directory.
//
//	go install github.com/payperplay/node-lifecycle/bindings/go/cmd/nl-salvage@v0.3.0
//	nl-salvage ./data/lifecycle ./data/lifecycle-salvaged
//
// The report is JSON on standard output; the exit status is 0 when nothing was lost, 1 when
// something was (the report says what), and 2 when salvage itself failed.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 {
		fmt.Fprintln(stderr, "usage: nl-salvage DAMAGED_DIR NEW_DIR")
		return 2
	}
	report, err := lifecycle.Salvage(args[0], args[1])
	if err != nil {
		fmt.Fprintln(stderr, "nl-salvage:", err)
		return 2
	}
	out, _ := json.MarshalIndent(report, "", "  ")
	fmt.Fprintln(stdout, string(out))
	if lost(report) {
		fmt.Fprintf(stderr, "nl-salvage: data was lost (see the report); %s holds %d nodes and %d audit entries\n",
			report.OutputDir, report.NodesRecovered, report.AuditEntriesRecovered)
		return 1
	}
	fmt.Fprintf(stderr, "nl-salvage: nothing lost; open %s\n", report.OutputDir)
	return 0
}

func lost(r lifecycle.SalvageReport) bool {
	return len(r.LostSequenceRanges) > 0 || len(r.DamagedRanges) > 0 ||
		r.SnapshotRecordsLost > 0 || r.AuditEntriesDroppedBeforeAGap > 0
}
