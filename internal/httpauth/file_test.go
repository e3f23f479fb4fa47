package httpauth

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

const token = "0123456789abcdef0123456789abcdef"

func mustHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := HashPassword(pw, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustToken(t *testing.T, tok string) string {
	t.Helper()
	h, err := HashToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestParseGood(t *testing.T) {
	text := "# users\n\n" +
		Line("alice", RoleReadWrite, mustHash(t, "alice-pw-1")) + "\n" +
		"  " + Line("bob", RoleRead, mustHash(t, "bob-pw-12")) + "  \n" +
		Line("ci", RoleRead, mustToken(t, token)) + "\n"
	f, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if f.Len() != 3 {
		t.Fatalf("Len = %d, want 3", f.Len())
	}
	for name, role := range map[string]Role{"alice": RoleReadWrite, "bob": RoleRead, "ci": RoleRead} {
		if u, ok := f.User(name); !ok || u.Role != role {
			t.Errorf("user %s = %+v, %v; want role %s", name, u, ok, role)
		}
	}
}

func TestParseErrorsNameLines(t *testing.T) {
	good := mustHash(t, "password1")
	tests := []struct {
		name, text string
		want       []string
	}{
		{"fields", "alice readwrite\n", []string{"line 1:", "want 3 fields"}},
		{"role", "# c\nalice admin " + good + "\n", []string{"line 2:", `role "admin"`}},
		{"prefix", "alice read md5:abc\n", []string{"line 1:", "must start with"}},
		{"bcrypt", "alice read bcrypt:nothash\n", []string{"line 1:", "bad bcrypt hash"}},
		{"sha", "alice read sha256:abcd\n", []string{"line 1:", "64 hex digits"}},
		{"name", "al:ice read " + good + "\n", []string{"line 1:", "no spaces, colons"}},
		{"dup", "a read " + good + "\n\na read " + good + "\n", []string{"line 3:", "appears twice"}},
		{"dup token", "a read " + mustToken(t, token) + "\nb read " + mustToken(t, token) + "\n", []string{"line 2:", "same token"}},
		{"every line", "x\ny\n", []string{"line 1:", "line 2:"}},
		{"empty", "# nobody\n", []string{"no users"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.text))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "$2a$") {
				t.Errorf("error %q shows a hash", err)
			}
		})
	}
}

func TestRoles(t *testing.T) {
	tests := []struct {
		have, need Role
		ok         bool
	}{
		{RoleRead, RoleRead, true},
		{RoleRead, RoleReadWrite, false},
		{RoleReadWrite, RoleRead, true},
		{RoleReadWrite, RoleReadWrite, true},
		{"", RoleRead, false},
		{RoleReadWrite, "admin", false},
	}
	for _, tt := range tests {
		if got := tt.have.Allows(tt.need); got != tt.ok {
			t.Errorf("%q.Allows(%q) = %v, want %v", tt.have, tt.need, got, tt.ok)
		}
	}
	if _, err := ParseRole("write"); err == nil {
		t.Error(`ParseRole("write") succeeded`)
	}
}

func TestHashRefusesShortSecrets(t *testing.T) {
	if _, err := HashPassword("short", bcrypt.MinCost); err == nil {
		t.Error("short password hashed")
	}
	if _, err := HashToken("short-token"); err == nil {
		t.Error("short token hashed")
	}
}

func TestVerifier(t *testing.T) {
	text := Line("alice", RoleReadWrite, mustHash(t, "alice-pw-1")) + "\n" + Line("ci", RoleRead, mustToken(t, token)) + "\n"
	f, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(f, 2)
	for range 2 { // the second time from the cache
		if u, err := v.Basic("alice", "alice-pw-1"); err != nil || u.Name != "alice" {
			t.Fatalf("Basic(alice) = %v, %v", u, err)
		}
		if _, err := v.Basic("alice", "wrong-pw"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("Basic(alice, wrong) = %v", err)
		}
	}
	if _, err := v.Basic("nobody", "alice-pw-1"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("unknown user: %v", err)
	}
	if u, err := v.Bearer(token); err != nil || u.Name != "ci" || u.Role != RoleRead {
		t.Errorf("Bearer = %v, %v", u, err)
	}
	if u, err := v.Basic("ci", token); err != nil || u.Name != "ci" {
		t.Errorf("Basic(ci, token) = %v, %v", u, err)
	}
	if _, err := v.Bearer(token + "x"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("bad token: %v", err)
	}
	if _, err := v.Basic("alice", token); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("a bcrypt user's password is not a token: %v", err)
	}

	// A replaced file forgets the cached success.
	f2, err := Parse(strings.NewReader(Line("alice", RoleRead, mustHash(t, "new-pw-123")) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	v.Replace(f2)
	if _, err := v.Basic("alice", "alice-pw-1"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("old password after Replace: %v", err)
	}
	if u, err := v.Basic("alice", "new-pw-123"); err != nil || u.Role != RoleRead {
		t.Errorf("new password after Replace: %v, %v", u, err)
	}
}

// TestVerifierUnderLoad checks that concurrent wrong passwords are all
// refused (bad or busy) and that a cached good password still passes.
func TestVerifierUnderLoad(t *testing.T) {
	f, err := Parse(strings.NewReader(Line("alice", RoleReadWrite, mustHash(t, "alice-pw-1")) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(f, 1)
	if _, err := v.Basic("alice", "alice-pw-1"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			_, err := v.Basic("alice", strings.Repeat("x", i%50+1))
			if !errors.Is(err, ErrBadCredentials) && !errors.Is(err, ErrBusy) {
				t.Errorf("wrong password %d: %v", i, err)
			}
			if _, err := v.Basic("alice", "alice-pw-1"); err != nil {
				t.Errorf("good password during load: %v", err)
			}
		})
	}
	wg.Wait()
}
