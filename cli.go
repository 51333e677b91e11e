package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"pgdeck/store"
	"pgdeck/web"
)

// quietLogger logs only warnings: CLI commands print their result, not progress.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// userAdd creates an account; the password is read from stdin (first line).
func userAdd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("pgdeck user add", flag.ContinueOnError)
	email := fs.String("email", "", "the account's email address")
	role := fs.String("role", "viewer", "owner, admin or viewer")
	cfg, err := loadConfig(fs, args, getenv)
	if err != nil {
		return err
	}
	*email = strings.TrimSpace(*email)
	if *email == "" || !strings.Contains(*email, "@") {
		return errors.New("user add: --email must be an email address")
	}
	if !slices.Contains([]string{store.RoleOwner, store.RoleAdmin, store.RoleViewer}, *role) {
		return fmt.Errorf("user add: --role must be owner, admin or viewer, got %q", *role)
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("user add: read password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if msg := web.ValidatePassword(pw); msg != "" {
		return fmt.Errorf("user add: password from stdin: %s", msg)
	}
	st, closeStore, err := openStore(ctx, cfg, quietLogger(), false)
	if err != nil {
		return err
	}
	defer closeStore()
	hash, err := web.HashPassword(pw)
	if err != nil {
		return err
	}
	u, err := st.CreateUser(ctx, *email, hash, *role)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("user add: an account with email %s already exists", *email)
	}
	if err != nil {
		return err
	}
	if err := st.Audit(ctx, store.AuditEntry{Actor: "cli", Action: "user.create", Target: u.Email, Detail: u.Role}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s account %s\n", u.Role, u.Email)
	return nil
}

// tokenAdd creates an API token for an account and prints it as the last
// word of the last line.
func tokenAdd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("pgdeck token add", flag.ContinueOnError)
	email := fs.String("email", "", "the account the token acts as")
	name := fs.String("name", "cli", "what the token is for")
	cfg, err := loadConfig(fs, args, getenv)
	if err != nil {
		return err
	}
	st, closeStore, err := openStore(ctx, cfg, quietLogger(), false)
	if err != nil {
		return err
	}
	defer closeStore()
	u, err := st.UserByEmail(ctx, strings.TrimSpace(*email))
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("token add: no account with email %q", *email)
	}
	if err != nil {
		return err
	}
	tok, prefix := web.NewAPIToken()
	if _, err := st.CreateAPIToken(ctx, u.ID, *name, prefix, web.HashAPIToken(tok), nil); err != nil {
		return err
	}
	if err := st.Audit(ctx, store.AuditEntry{Actor: "cli", Action: "token.create", Target: *name, Detail: u.Email + " " + prefix}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "API token for %s (%s role): %s\n", u.Email, u.Role, tok)
	return nil
}
