package httpauth

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Role is what a user may do.
type Role string

// The roles of the auth file.
const (
	// RoleRead may read keys and status (GET).
	RoleRead Role = "read"
	// RoleReadWrite may also write (PUT, DELETE) and, with --http-pprof,
	// profile.
	RoleReadWrite Role = "readwrite"
)

// Allows reports whether r may do what need requires.
func (r Role) Allows(need Role) bool {
	switch need {
	case RoleRead:
		return r == RoleRead || r == RoleReadWrite
	case RoleReadWrite:
		return r == RoleReadWrite
	}
	return false
}

// ParseRole parses "read" or "readwrite".
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleRead, RoleReadWrite:
		return r, nil
	}
	return "", fmt.Errorf("role %q: want %s or %s", s, RoleRead, RoleReadWrite)
}

// Hash prefixes of the auth file.
const (
	prefixBcrypt = "bcrypt:"
	prefixSHA256 = "sha256:"
)

// User is one line of the auth file. Its hash is never printed.
type User struct {
	Name string
	Role Role
	// bcrypt is the bcrypt hash, or nil for a token user.
	bcrypt []byte
	// sha is the SHA-256 of the token of a token user.
	sha      [sha256.Size]byte
	isBcrypt bool
}

// File is a parsed auth file.
type File struct {
	users  map[string]*User
	tokens map[[sha256.Size]byte]*User
}

// Len is the number of users.
func (f *File) Len() int { return len(f.users) }

// User returns the user called name.
func (f *File) User(name string) (*User, bool) {
	u, ok := f.users[name]
	return u, ok
}

// LoadFile reads and parses the auth file at path.
func LoadFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth file: %w", err)
	}
	defer fh.Close()
	f, err := Parse(fh)
	if err != nil {
		return nil, fmt.Errorf("auth file %s: %w", path, err)
	}
	return f, nil
}

// ErrNoUsers is returned for an auth file without any user: it would lock
// everyone out, which is surely a mistake.
var ErrNoUsers = errors.New("no users")

// Parse parses an auth file. Errors name the line: "line 3: ...". Every
// bad line is reported, not only the first.
func Parse(r io.Reader) (*File, error) {
	f := &File{users: map[string]*User{}, tokens: map[[sha256.Size]byte]*User{}}
	var errs []error
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, err := parseLine(line)
		if err == nil {
			if _, dup := f.users[u.Name]; dup {
				err = fmt.Errorf("user %q appears twice", u.Name)
			} else if _, dup := f.tokens[u.sha]; dup && !u.isBcrypt {
				err = fmt.Errorf("user %q has the same token as %q", u.Name, f.tokens[u.sha].Name)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		f.users[u.Name] = u
		if !u.isBcrypt {
			f.tokens[u.sha] = u
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(f.users) == 0 {
		return nil, ErrNoUsers
	}
	return f, nil
}

// parseLine parses "name role hash".
func parseLine(line string) (*User, error) {
	fields := strings.Fields(line)
	if len(fields) != 3 {
		return nil, fmt.Errorf("want 3 fields (name role hash), got %d", len(fields))
	}
	name, roleText, hash := fields[0], fields[1], fields[2]
	if err := ValidName(name); err != nil {
		return nil, err
	}
	role, err := ParseRole(roleText)
	if err != nil {
		return nil, err
	}
	u := &User{Name: name, Role: role}
	switch {
	case strings.HasPrefix(hash, prefixBcrypt):
		b := []byte(strings.TrimPrefix(hash, prefixBcrypt))
		if _, err := bcryptCost(b); err != nil {
			return nil, fmt.Errorf("user %q: bad bcrypt hash: %w", name, err)
		}
		u.bcrypt, u.isBcrypt = b, true
	case strings.HasPrefix(hash, prefixSHA256):
		raw, err := hex.DecodeString(strings.TrimPrefix(hash, prefixSHA256))
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("user %q: sha256 hash must be %d hex digits", name, 2*sha256.Size)
		}
		copy(u.sha[:], raw)
	default:
		return nil, fmt.Errorf("user %q: hash must start with %q or %q (make one with: kvctl auth hash)", name, prefixBcrypt, prefixSHA256)
	}
	return u, nil
}

// ValidName checks a user name: 1 to 64 characters, none of them a space,
// a colon (the basic-auth separator) or a control character.
func ValidName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("user name %q: want 1 to 64 characters", name)
	}
	for _, r := range name {
		if r == ':' || r <= ' ' || r == 0x7f {
			return fmt.Errorf("user name %q: no spaces, colons or control characters", name)
		}
	}
	return nil
}
