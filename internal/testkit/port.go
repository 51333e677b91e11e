package testkit

import (
	"net"
	"os"
	"strconv"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	return FreePorts(tb, 1)[0]
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago (each is held open until all are chosen, so they differ).
func FreePorts(tb testing.TB, n int) []int {
	tb.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("find a free port: %v", err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// FreeAddr returns a 127.0.0.1:port address whose port was free a moment
// ago.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(tb)))
}

// PortFree reports whether nothing listens on 127.0.0.1:port.
func PortFree(port int) bool {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// FreePortWindow returns the first port of n consecutive ports on 127.0.0.1
// that were all free a moment ago. Where it starts looking depends on the
// process id, so that test binaries running side by side rarely meet; it
// starts below the kernel's ephemeral ports (32768 and up), which other
// tests' FreePort and every outgoing connection may take at any moment.
func FreePortWindow(tb testing.TB, n int) int {
	tb.Helper()
	step := max(40, n)
	for lo := 21000 + (os.Getpid()%50)*step; lo+n <= 65535; lo += step {
		ok := true
		for p := lo; p < lo+n && ok; p++ {
			ok = PortFree(p)
		}
		if ok {
			return lo
		}
	}
	tb.Fatalf("no window of %d free ports", n)
	return 0
}
