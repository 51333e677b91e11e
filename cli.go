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
	"strconv"
	"strings"
	"time"

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
	if msg := web.ValidateEmail(*email); msg != "" {
		return fmt.Errorf("user add: --email must be an email address: %s", msg)
	}
	if !slices.Contains([]string{store.RoleOwner, store.RoleAdmin, store.RoleViewer}, *role) {
		return fmt.Errorf("user add: --role must be owner, admin or viewer, got %q", *role)
	}
	pw, err := readPassword("user add", stdin)
	if err != nil {
		return err
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
	expiresIn := fs.String("expires", "", "lifetime of the token, e.g. 90d or 12h; empty: never expires")
	cfg, err := loadConfig(fs, args, getenv)
	if err != nil {
		return err
	}
	var expires *time.Time
	if *expiresIn != "" {
		d, err := parseLifetime(*expiresIn)
		if err != nil {
			return fmt.Errorf("token add: --expires: %w", err)
		}
		t := time.Now().Add(d)
		expires = &t
	}
	if msg := web.CheckText(*name); msg != "" || strings.TrimSpace(*name) == "" || len([]rune(*name)) > 60 {
		return fmt.Errorf("token add: --name must be 1 to 60 characters of plain text")
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
	if _, err := st.CreateAPIToken(ctx, u.ID, *name, prefix, web.HashAPIToken(tok), expires); err != nil {
		return err
	}
	if err := st.Audit(ctx, store.AuditEntry{Actor: "cli", Action: "token.create", Target: *name, Detail: u.Email + " " + prefix}); err != nil {
		return err
	}
	if expires != nil {
		fmt.Fprintf(stdout, "expires %s\n", expires.Format(time.RFC3339))
	}
	fmt.Fprintf(stdout, "API token for %s (%s role): %s\n", u.Email, u.Role, tok)
	return nil
}

// readPassword reads and validates a password from stdin's first line.
func readPassword(cmd string, stdin io.Reader) (string, error) {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("%s: read password from stdin: %w", cmd, err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if msg := web.ValidatePassword(pw); msg != "" {
		return "", fmt.Errorf("%s: password from stdin: %s", cmd, msg)
	}
	return pw, nil
}

// parseLifetime reads a duration that may also be given in days ("90d").
func parseLifetime(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > 3650 {
			return 0, fmt.Errorf("want 1d to 3650d, got %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Minute {
		return 0, fmt.Errorf("want a duration like 90d or 12h, got %q", s)
	}
	return d, nil
}

// userChange runs the owner's account commands: user disable, user enable,
// user logout (end every session) and user password (new password on stdin,
// ends every session).
func userChange(ctx context.Context, cmd string, args []string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("pgdeck "+cmd, flag.ContinueOnError)
	email := fs.String("email", "", "the account's email address")
	cfg, err := loadConfig(fs, args, getenv)
	if err != nil {
		return err
	}
	var hash string
	if cmd == "user password" {
		pw, err := readPassword(cmd, stdin)
		if err != nil {
			return err
		}
		if hash, err = web.HashPassword(pw); err != nil {
			return err
		}
	}
	st, closeStore, err := openStore(ctx, cfg, quietLogger(), false)
	if err != nil {
		return err
	}
	defer closeStore()
	u, err := st.UserByEmail(ctx, strings.TrimSpace(*email))
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s: no account with email %q", cmd, *email)
	}
	if err != nil {
		return err
	}
	var action, done string
	switch cmd {
	case "user disable":
		_, err = st.SetUserDisabled(ctx, u.ID, true)
		action, done = "user.disable", "disabled"
	case "user enable":
		_, err = st.SetUserDisabled(ctx, u.ID, false)
		action, done = "user.enable", "enabled"
	case "user logout":
		_, err = st.EndUserSessions(ctx, u.ID)
		action, done = "user.sessions_end", "signed out everywhere"
	case "user password":
		_, err = st.SetUserPassword(ctx, u.ID, hash)
		action, done = "user.password_reset", "given a new password (sessions ended)"
	}
	if err != nil {
		return err
	}
	if err := st.Audit(ctx, store.AuditEntry{Actor: "cli", Action: action, Target: u.Email}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "account %s %s\n", u.Email, done)
	return nil
}
