// Package static embeds pgdeck's CSS and the pinned htmx build.
package static

import "embed"

// FS holds css/ and js/ (js/htmx.min.js is copied from node_modules by make).
//
//go:embed css js
var FS embed.FS
