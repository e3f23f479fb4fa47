package bus

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// The compatibility rule (docs/protocol.md, "Compatibility"): a request
// for an operation an older server has carries only the fields that server
// knows; a server refuses a field it does not know (it never ignores one);
// a client ignores reply and stream fields it does not know.

func fieldNames(t *testing.T, body []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	var names []string
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func TestOldOperationsSendOnlyOldFields(t *testing.T) {
	tests := []struct {
		name string
		req  any
		want []string
	}{
		{"put", WriteRequest{Key: "a", Value: "1", RequestID: "r"}, []string{"key", "request_id", "value"}},
		{"delete", WriteRequest{Op: OpDelete, Key: "a", RequestID: "r"}, []string{"key", "op", "request_id"}},
		{"read", ReadRequest{Key: "a"}, []string{"key"}},
		{"list", ListRequest{Prefix: "a"}, []string{"prefix"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fieldNames(t, Encode(tt.req)); !slices.Equal(got, tt.want) {
				t.Errorf("fields %v, want %v", got, tt.want)
			}
		})
	}
}

func TestServerRefusesAFieldItDoesNotKnow(t *testing.T) {
	err := Decode([]byte(`{"key":"a","value":"1","if_version":3}`), new(WriteRequest))
	if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), `"if_version"`) {
		t.Fatalf("Decode = %v, want bad_request naming the field", err)
	}
}

func TestClientIgnoresNewReplyFields(t *testing.T) {
	var r WriteReply
	if err := DecodeReply([]byte(`{"ok":true,"key":"a","revision":3,"epoch":1,"leader":"n1","lease":{"id":7}}`), &r); err != nil || !r.OK || r.Revision != 3 {
		t.Fatalf("DecodeReply = %+v, %v", r, err)
	}
}
