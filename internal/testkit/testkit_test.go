package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestProcessesAndStop starts a daemon-like process in a folder, with a pid
// file beside it, finds it there and stops it.
func TestProcessesAndStop(t *testing.T) {
	dir := TempDir(t)
	cmd := exec.Command("sleep", "300")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })

	p, ok := Stat(pid)
	if !ok || p.Name != "sleep" || p.PPID != os.Getpid() || !p.Live() {
		t.Fatalf("Stat(%d) = %+v, %v", pid, p, ok)
	}
	if !WorksIn(pid, dir) || !Under(pid, dir) || Under(pid, dir+"x") {
		t.Errorf("%d works in %q, Under(%s) = %v", pid, Cwd(pid), dir, Under(pid, dir))
	}
	if got := ProcessesUnder(dir, "sleep"); !slices.Equal(got, []int{pid}) {
		t.Errorf("ProcessesUnder = %v, want [%d]", got, pid)
	}
	if got := WorkingIn(dir); !slices.Equal(got, []int{pid}) {
		t.Errorf("WorkingIn = %v, want [%d]", got, pid)
	}
	if got := PostgresUnder(dir); len(got) != 0 {
		t.Errorf("PostgresUnder = %v, want none", got)
	}

	if err := os.WriteFile(filepath.Join(dir, "sleep.pid"), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := StopPostgres(dir, 10*time.Second)
	if err != nil || !slices.Equal(st.Found, []int{pid}) || len(st.Killed) != 0 {
		t.Fatalf("StopPostgres = %+v, %v; want %d found and stopped by SIGINT", st, err, pid)
	}
	<-done
	if Alive(pid) {
		t.Errorf("%d is alive after the stop", pid)
	}
}

func TestPorts(t *testing.T) {
	ports := FreePorts(t, 3)
	if ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
		t.Errorf("FreePorts = %v, want distinct", ports)
	}
	lo := FreePortWindow(t, 21)
	for p := lo; p <= lo+20; p++ {
		if !PortFree(p) {
			t.Errorf("port %d of the window at %d is taken", p, lo)
		}
	}
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, "the third poll", 5*time.Second, func() (bool, string) {
		n++
		return n == 3, strconv.Itoa(n)
	})
	if n != 3 {
		t.Errorf("polled %d times, want 3", n)
	}
}
