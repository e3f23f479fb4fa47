package bus

import (
	"strings"
	"testing"
)

func TestListRequestDecode(t *testing.T) {
	for _, tc := range []struct {
		body string
		code Code // "" for a valid request
	}{
		{`{}`, ""},
		{`{"prefix":"a/","after":"a/k042","limit":100,"keys_only":true}`, ""},
		{`{"prefix":"a/","after":"a/"}`, ""},
		{`{"limit":1000}`, ""},
		{`{"prefix":"a/","after":"b/k1"}`, CodeBadRequest},
		{`{"prefix":"a/","after":"a"}`, CodeBadRequest},
		{`{"after":"a\u0001"}`, CodeBadRequest},
		{`{"limit":-1}`, CodeBadRequest},
		{`{"limit":1001}`, CodeBadRequest},
		{`{"prefix":"a","Prefix":"b"}`, CodeBadRequest},
		{`{"prefix":null}`, CodeBadRequest},
		{`{"prefix":"a","cursor":"a1"}`, CodeBadRequest},
		{`{"prefix":"a\u0000"}`, CodeInvalidKey},
		{`{"prefix":"` + strings.Repeat("k", MaxKeyBytes+1) + `"}`, CodeInvalidKey},
	} {
		var r ListRequest
		err := Decode([]byte(tc.body), &r)
		if tc.code == "" {
			if err != nil {
				t.Errorf("Decode(%s) = %v, want nil", tc.body, err)
			}
			continue
		}
		if e := AsError(err); err == nil || e.Code != tc.code {
			t.Errorf("Decode(%s) = %v, want code %s", tc.body, err, tc.code)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	if err := ValidatePrefix(""); err != nil {
		t.Errorf("empty prefix: %v", err)
	}
	for _, p := range []string{"a\xff", "a\n", strings.Repeat("k", MaxKeyBytes+1)} {
		if e := AsError(ValidatePrefix(p)); e == nil || e.Code != CodeInvalidKey {
			t.Errorf("ValidatePrefix(%q) = %v, want invalid_key", p, e)
		}
	}
}

// fakeLister answers list requests on node n2 from keys (sorted), like a
// node's copy.
