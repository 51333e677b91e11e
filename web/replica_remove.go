package web

import (
	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
)

// removeReplica is Remove, confirmed in its dialog: stops the replica and
// deletes it (the primary is not touched).
func (s *Server) removeReplica(c echo.Context) error {
	return s.runReplicaAction(c, provisioner.KindRemoveReplica, "Removing the read replica of ")
}
