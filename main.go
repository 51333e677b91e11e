// Command pgdeck is a self-hosted control panel for the PostgreSQL databases
// behind Odoo environments.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first SIGINT/SIGTERM starts a clean shutdown (running jobs get
	// PGDECK_SHUTDOWN_GRACE); stop gives the signals back their default
	// action, so a second one ends the process at once.
	context.AfterFunc(ctx, stop)
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pgdeck:", err)
		os.Exit(1)
	}
}

// run dispatches to a command: serve (the default), user add|disable|enable|logout|password, token add, version.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	cmd := ""
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd = args[0]
		if len(args) > 1 && (cmd == "user" || cmd == "token") {
			cmd += " " + args[1]
			args = args[1:]
		}
		args = args[1:]
	}
	switch cmd {
	case "", "serve":
		return serve(ctx, args, getenv, os.Stderr)
	case "version":
		fmt.Fprintln(stdout, "pgdeck", version)
		return nil
	case "user add":
		return userAdd(ctx, args, getenv, stdin, stdout)
	case "user disable", "user enable", "user logout", "user password":
		return userChange(ctx, cmd, args, getenv, stdin, stdout)
	case "token add":
		return tokenAdd(ctx, args, getenv, stdout)
	}
	return fmt.Errorf("unknown command %q (commands: serve, user add, user disable, user enable, user logout, user password, token add, version)", cmd)
}
