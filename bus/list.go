package bus

import "strings"

// Limits of a list page: at most MaxListPage entries (DefaultListPage if
// the request names no limit) and about ListPageBytes of keys and values,
// so a page stays well under NATS's default payload limit even when JSON
// escaping multiplies its bytes.
const (
	DefaultListPage = 100
	MaxListPage     = 1000
	ListPageBytes   = 128 << 10
)

// ListRequest is the body of a request on Subjects.NodeList:
// {"prefix":"a/","after":"a/k042","limit":100}. It lists, in key order,
// the node's own keys that begin with Prefix ("" lists every key).
type ListRequest struct {
	Prefix string `json:"prefix,omitempty"`
	// After is the cursor: the last key of the previous page (ListReply's
	// Next); the page starts strictly after it. It must begin with Prefix.
	After string `json:"after,omitempty"`
	// Limit is the most entries of the page: 0 means DefaultListPage, at
	// most MaxListPage. A page is also cut at about ListPageBytes.
	Limit int `json:"limit,omitempty"`
	// KeysOnly leaves the values out of the entries.
	KeysOnly bool `json:"keys_only,omitempty"`
}

// Validate checks the prefix like a key (except that it may be empty),
// the cursor and the limit.
func (r ListRequest) Validate() error {
	if err := ValidatePrefix(r.Prefix); err != nil {
		return err
	}
	if r.After != "" {
		if err := validateKeyText("after", r.After); err != nil {
			return Errorf(CodeBadRequest, "%s", AsError(err).Message)
		}
		if !strings.HasPrefix(r.After, r.Prefix) {
			return Errorf(CodeBadRequest, "after %q does not begin with prefix %q", r.After, r.Prefix)
		}
	}
	if r.Limit < 0 || r.Limit > MaxListPage {
		return Errorf(CodeBadRequest, "limit %d: want 0 to %d", r.Limit, MaxListPage)
	}
	return nil
}

// ListEntry is one key of a list page; Value is left out of a keys-only
// list.
type ListEntry struct {
	Key      string `json:"key"`
	Value    string `json:"value,omitempty"`
	Revision uint64 `json:"revision"`
}

// ListReply is one page of a node's keys, from its own copy (like a local
// read, it may be stale), with the node's role and epoch and the copy's
// revision when the page was taken. More says whether keys remain; Next
// is then the After of the next page.
type ListReply struct {
	Node     string      `json:"node"`
	Role     string      `json:"role"`
	Epoch    uint64      `json:"epoch"`
	Revision uint64      `json:"revision"`
	Entries  []ListEntry `json:"entries"`
	More     bool        `json:"more"`
	Next     string      `json:"next,omitempty"`
}
