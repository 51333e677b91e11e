package web

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"pgdeck/views"
)

// maxEmailBytes is the longest email address pgdeck takes (RFC 5321's path limit).
const maxEmailBytes = 254

// CheckText returns a message when s is not valid UTF-8 or holds control
// characters (NUL, newlines, …) or invisible Unicode format characters
// (U+202E RIGHT-TO-LEFT OVERRIDE, zero-width joiners, …). Every form value
// and API string goes through it, so that the store never sees text
// PostgreSQL refuses and the pages never show text that reads differently
// from what it is.
func CheckText(s string) string {
	if !utf8.ValidString(s) {
		return "Use valid UTF-8 text."
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return "Remove the control or invisible formatting characters."
		}
	}
	return ""
}

// cleanText drops what CheckText refuses, so that a refused value can be shown
// back in its field.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
}

// formText reads a field from the request body (never the query string). A
// value CheckText refuses gets its message in f and comes back cleaned.
func formText(c echo.Context, f *views.Form, name string) string {
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	v := c.Request().PostFormValue(name)
	if msg := CheckText(v); msg != "" {
		f.Errors[name] = msg
		return cleanText(v)
	}
	return v
}

// ValidateEmail returns a message when s is not a plain email address. The
// setup form and `pgdeck user add` share it.
func ValidateEmail(s string) string {
	if s == "" {
		return "Enter an email address."
	}
	if len(s) > maxEmailBytes {
		return "Use at most 254 characters."
	}
	if msg := CheckText(s); msg != "" {
		return msg
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "Enter an email address like name@example.com."
	}
	return ""
}
