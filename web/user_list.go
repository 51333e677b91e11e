package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"pgdeck/store"
	"pgdeck/views"
)

// requireOwner lets only owners through.
func (s *Server) requireOwner(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if u, ok := currentUser(c); ok && u.Role == store.RoleOwner {
			return next(c)
		}
		return echo.NewHTTPError(http.StatusForbidden, "Only owners can manage people.")
	}
}

// listUsers shows every account with the owner's actions.
func (s *Server) listUsers(c echo.Context) error {
	return s.renderUsers(c, http.StatusOK, 0, views.Form{})
}

func (s *Server) renderUsers(c echo.Context, status int, resetID int64, f views.Form) error {
	me, _ := currentUser(c)
	us, err := s.store.ListUsers(c.Request().Context())
	if err != nil {
		return err
	}
	vm := views.Users{Form: f, ResetID: resetID}
	for _, u := range us {
		vm.Rows = append(vm.Rows, views.UserRow{ID: u.ID, Email: u.Email, Role: u.Role, Disabled: u.Disabled(), CreatedAt: u.CreatedAt, Self: u.ID == me.ID})
	}
	p := s.page(c, "People", "users")
	return s.render(c, status, p, views.UsersPage(p, vm))
}

// otherUser is the account in the path; an owner acts on others only.
func (s *Server) otherUser(c echo.Context) (store.User, error) {
	me, _ := currentUser(c)
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return store.User{}, echo.NewHTTPError(http.StatusNotFound, "There is no such account.")
	}
	if id == me.ID {
		return store.User{}, echo.NewHTTPError(http.StatusUnprocessableEntity, "You cannot do this to your own account.")
	}
	u, err := s.store.UserByID(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, echo.NewHTTPError(http.StatusNotFound, "There is no such account.")
	}
	return u, err
}

// disableUser stops an account from signing in or using its tokens and ends its sessions.
func (s *Server) disableUser(c echo.Context) error { return s.setDisabled(c, true) }

// enableUser lets a disabled account sign in again.
func (s *Server) enableUser(c echo.Context) error { return s.setDisabled(c, false) }

func (s *Server) setDisabled(c echo.Context, disabled bool) error {
	u, err := s.otherUser(c)
	if err != nil {
		return err
	}
	if _, err := s.store.SetUserDisabled(c.Request().Context(), u.ID, disabled); err != nil {
		return err
	}
	action, word := "user.enable", "enabled"
	if disabled {
		action, word = "user.disable", "disabled"
	}
	s.audit(c, action, u.Email, "")
	s.flash(c, "success", "Account "+u.Email+" "+word+".")
	return redirect(c, "/users")
}

// endUserSessions signs an account out everywhere.
func (s *Server) endUserSessions(c echo.Context) error {
	u, err := s.otherUser(c)
	if err != nil {
		return err
	}
	if _, err := s.store.EndUserSessions(c.Request().Context(), u.ID); err != nil {
		return err
	}
	s.audit(c, "user.sessions_end", u.Email, "")
	s.flash(c, "success", "Every session of "+u.Email+" has ended.")
	return redirect(c, "/users")
}

// resetUserPassword sets a new password for an account and ends its sessions.
func (s *Server) resetUserPassword(c echo.Context) error {
	u, err := s.otherUser(c)
	if err != nil {
		return err
	}
	f := views.Form{Values: map[string]string{}, Errors: map[string]string{}}
	pw := formText(c, &f, "password")
	if msg := ValidatePassword(pw); msg != "" && f.Errors["password"] == "" {
		f.Errors["password"] = msg
	}
	if len(f.Errors) > 0 {
		return s.renderUsers(c, http.StatusUnprocessableEntity, u.ID, f)
	}
	release, ok := s.acquireHash(c.Request().Context())
	if !ok {
		return s.busy(c)
	}
	hash, err := HashPassword(pw)
	release()
	if err != nil {
		return err
	}
	if _, err := s.store.SetUserPassword(c.Request().Context(), u.ID, hash); err != nil {
		return err
	}
	s.audit(c, "user.password_reset", u.Email, "")
	s.flash(c, "success", "New password set for "+u.Email+". Its sessions have ended.")
	return redirect(c, "/users")
}
