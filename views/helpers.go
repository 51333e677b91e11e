package views

import (
	"encoding/json"
	"hash/fnv"
	"net/url"
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

// progressClass is the width class of a progress bar, in steps of 5%: the
// Content-Security-Policy allows no inline style attribute.
func progressClass(p int) string {
	p = min(max(p, 0), 100)
	return "w-" + strconv.Itoa((p+2)/5*5)
}

func anyActive(jobs []Job) bool {
	for _, j := range jobs {
		if j.Active() {
			return true
		}
	}
	return false
}

// auditURL is the audit log filtered by action and actor, from entry before.
func auditURL(action, actor, before string) string {
	q := url.Values{}
	if action != "" {
		q.Set("action", action)
	}
	if actor != "" {
		q.Set("actor", actor)
	}
	if before != "" {
		q.Set("before", before)
	}
	if len(q) == 0 {
		return "/audit"
	}
	return "/audit?" + q.Encode()
}

// AuditURL is auditURL for handlers building the next page's link.
func AuditURL(action, actor, before string) string { return auditURL(action, actor, before) }

// userURL is the address of an action on an account.
func userURL(id int64, action string) string {
	return "/users/" + strconv.FormatInt(id, 10) + "/" + action
}

// detailID names a health detail by its text, so that a refresh keeps an
// opened detail only while the text is the same.
func detailID(detail string) string {
	f := fnv.New64a()
	f.Write([]byte(detail))
	return "health-detail-" + strconv.FormatUint(f.Sum64(), 36)
}

// backupKindLabel names why a backup was taken.
func backupKindLabel(kind string) string {
	switch kind {
	case "manual":
		return "Manual"
	case "scheduled":
		return "Scheduled"
	case "pre-restore":
		return "Before a restore"
	case "pre-delete":
		return "Before the delete"
	case "imported":
		return "Imported"
	}
	return kind
}

// backupFormatLabel names a backup's format.
func backupFormatLabel(format string) string {
	if format == "dump" {
		return "Custom dump"
	}
	return "Odoo zip"
}

// backupTone is a backup state's badge colour.
func backupTone(state string) string {
	switch state {
	case "succeeded":
		return "ok"
	case "failed":
		return "bad"
	}
	return "warn"
}

// backupStateLabel is a backup state in words.
func backupStateLabel(state string) string {
	switch state {
	case "succeeded":
		return "Succeeded"
	case "failed":
		return "Failed"
	}
	return "Running"
}
