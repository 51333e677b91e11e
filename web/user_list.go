package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"pgdeck/store"
	"pgdeck/views"
)

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
