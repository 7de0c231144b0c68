package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
)

// homing serve runs serveProcsPerCPU processors per CPU and GOGC=50,
// unless the environment sets GOMAXPROCS or GOGC: then Go's own settings
// stand.
func TestServeTunesTheRuntimeUnlessTheEnvironmentDoes(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	gc := debug.SetGCPercent(100)
	debug.SetGCPercent(gc)
	t.Cleanup(func() {
		runtime.GOMAXPROCS(procs)
		debug.SetGCPercent(gc)
	})

	// Go's default, as tuneProcs takes it (an earlier serve of this
	// process may have changed the setting).
	runtime.SetDefaultGOMAXPROCS()
	base := runtime.GOMAXPROCS(0)
	t.Setenv("GOMAXPROCS", "")
	os.Unsetenv("GOMAXPROCS")
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	tuneProcs()
	tuneProcs() // a second serve in one process: not multiplied again
	tuneGC()
	if got := runtime.GOMAXPROCS(0); got != serveProcsPerCPU*base {
		t.Errorf("GOMAXPROCS unset: %d processors, want %d", got, serveProcsPerCPU*base)
	}
	if got := debug.SetGCPercent(gc); got != serveGOGC {
		t.Errorf("GOGC unset: GC percent %d, want %d", got, serveGOGC)
	}

	runtime.GOMAXPROCS(procs)
	t.Setenv("GOMAXPROCS", "1")
	t.Setenv("GOGC", "100")
	debug.SetGCPercent(100)
	tuneProcs()
	tuneGC()
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS set: tuneProcs changed the processors to %d (was %d)", got, procs)
	}
	if got := debug.SetGCPercent(gc); got != 100 {
		t.Errorf("GOGC set: tuneGC changed the GC percent to %d", got)
	}
}
