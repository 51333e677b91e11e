package views

import (
	"encoding/json"
	"github.com/a-h/templ"
	"strconv"
)

func csrfHeaders(token string) string {
	b, _ := json.Marshal(map[string]string{"X-CSRF-Token": token})
	return string(b)
}

func navClass(active, name string) string {
	if active == name {
		return "nav-link active"
	}
	return "nav-link"
}

func boolAttr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func healthTitle(h Health) string {
	s := h.Label()
	if h.Reason != "" {
		s += ": " + h.Reason
	}
	if !h.CheckedAt.IsZero() {
		s += " (checked " + Stamp(h.CheckedAt) + ")"
	}
	return s
}

func httpStatusText(code int) string {
	switch code {
	case 400:
		return "Bad request"
	case 401:
		return "Please log in"
	case 403:
		return "Not allowed"
	case 404:
		return "Not found"
	case 409:
		return "Conflict"
	case 422:
		return "Check the form"
	case 429:
		return "Too many attempts"
	}
	if code >= 500 {
		return "Something went wrong"
	}
	return "Error"
}

func tabClass(active, name string) string {
	if active == name {
		return "tab active"
	}
	return "tab"
}

func tokenRevokeURL(id int64) string {
	return "/account/tokens/" + strconv.FormatInt(id, 10) + "/revoke"
}

func jobTone(state string) string {
	switch state {
	case "succeeded":
		return "ok"
	case "failed":
		return "bad"
	}
	return "warn"
}

func jobStateLabel(state string) string {
	switch state {
	case "queued":
		return "Queued"
	case "running":
		return "Running"
	case "succeeded":
		return "Succeeded"
	case "failed":
		return "Failed"
	}
	return state
}

func progressStyle(p int) templ.SafeCSS {
	if p < 0 {
		p = 0
	}
	if p > 100 {
		p = 100
	}
	return templ.SafeCSS("width: " + strconv.Itoa(p) + "%")
}

func anyActive(jobs []Job) bool {
	for _, j := range jobs {
		if j.Active() {
			return true
		}
	}
	return false
}
