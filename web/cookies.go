package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Cookies besides the session's. Before sign-in pgdeck keeps no session on
// the server: the login and setup forms' CSRF token travels in a signed
// cookie instead, so anonymous page views write nothing to the store.
const (
	anonCSRFCookie = "pgdeck_csrf"
	anonCSRFKey    = "anon_csrf"
	// deviceCookie marks a browser that signed in to an account with the
	// right password: its attempts are counted on their own and spared the
	// account-wide ceiling, so an attacker spraying the account does not
	// lock its owner out.
	deviceCookie = "pgdeck_device"
)

// mac signs parts under label with the server key.
func (s *Server) mac(label string, parts ...string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(label))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: s.secure, SameSite: http.SameSiteLaxMode}
}

// signedCookie returns the nonce of a cookie "nonce.mac" whose mac is good.
func (s *Server) signedCookie(c echo.Context, name, label string, bind ...string) string {
	ck, err := c.Cookie(name)
	if err != nil {
		return ""
	}
	nonce, sig, ok := strings.Cut(ck.Value, ".")
	if !ok || nonce == "" || !hmac.Equal([]byte(sig), []byte(s.mac(label, append([]string{nonce}, bind...)...))) {
		return ""
	}
	return nonce
}

// anonCSRF returns the anonymous CSRF token of the request's signed cookie;
// with create, a request without one gets a new cookie.
func (s *Server) anonCSRF(c echo.Context, create bool) string {
	if t, ok := c.Get(anonCSRFKey).(string); ok {
		return t
	}
	t := s.signedCookie(c, anonCSRFCookie, "csrf")
	if t == "" && create {
		t = randomToken(32)
		c.SetCookie(s.cookie(anonCSRFCookie, t+"."+s.mac("csrf", t), 0))
	}
	if t != "" {
		c.Set(anonCSRFKey, t)
	}
	return t
}

// deviceFor returns the device id of the request's device cookie when it
// was issued for account, else "".
func (s *Server) deviceFor(c echo.Context, account string) string {
	return s.signedCookie(c, deviceCookie, "device", account)
}

// setDevice marks the browser as one that signed in to account.
func (s *Server) setDevice(c echo.Context, account string) {
	id := s.deviceFor(c, account)
	if id == "" {
		id = randomToken(16)
	}
	c.SetCookie(s.cookie(deviceCookie, id+"."+s.mac("device", id, account), 365*24*3600))
}

// SetupCode is the one-time code /setup asks for while no account exists.
// pgdeck prints it in its log at start. It is derived from the server key,
// so that it survives a restart and every instance sharing the key agrees.
func (s *Server) SetupCode() string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("pgdeck setup code"))
	raw := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(m.Sum(nil)[:10])
	return raw[0:4] + "-" + raw[4:8] + "-" + raw[8:12] + "-" + raw[12:16]
}

// setupCodeMatches compares a typed code, ignoring case, spaces and dashes.
func (s *Server) setupCodeMatches(typed string) bool {
	norm := func(v string) string {
		return strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(v))
	}
	return hmac.Equal([]byte(norm(typed)), []byte(norm(s.SetupCode())))
}
