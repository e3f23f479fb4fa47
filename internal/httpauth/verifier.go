package httpauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"
)

// Errors of Verifier's checks. Both mean "not authenticated"; ErrBusy says
// the credentials were not even checked.
var (
	// ErrBadCredentials: unknown user, wrong password or unknown token.
	ErrBadCredentials = errors.New("bad credentials")
	// ErrBusy: every bcrypt slot was busy, so the password was not checked.
	ErrBusy = errors.New("too many password checks in flight")
)

// Cache bounds: when full, a cache is emptied and starts again.
const (
	maxGood = 1024
	maxBad  = 4096
)

// Verifier checks credentials against the current File. It is safe for
// concurrent use; no call blocks.
type Verifier struct {
	file  atomic.Pointer[File]
	slots chan struct{} // one per bcrypt comparison allowed at once

	mu   sync.Mutex
	good map[[sha256.Size]byte]string // digest of name and secret -> name
	bad  map[[sha256.Size]byte]struct{}
}

// NewVerifier returns a Verifier of f that runs at most slots bcrypt
// comparisons at once (at least 1).
func NewVerifier(f *File, slots int) *Verifier {
	v := &Verifier{slots: make(chan struct{}, max(slots, 1))}
	v.Replace(f)
	return v
}

// Replace makes f the file checked from now on and forgets every cached
// result (a removed user or changed password takes effect at once).
func (v *Verifier) Replace(f *File) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.file.Store(f)
	v.good = map[[sha256.Size]byte]string{}
	v.bad = map[[sha256.Size]byte]struct{}{}
}

// Users is the number of users of the current file.
func (v *Verifier) Users() int { return v.file.Load().Len() }

// Basic checks a name and a password (or a token user's token) and
// returns the user.
func (v *Verifier) Basic(name, secret string) (*User, error) {
	f := v.file.Load()
	u, ok := f.User(name)
	if !ok {
		return nil, ErrBadCredentials
	}
	if !u.isBcrypt {
		sum := sha256.Sum256([]byte(secret))
		if subtle.ConstantTimeCompare(sum[:], u.sha[:]) != 1 {
			return nil, ErrBadCredentials
		}
		return u, nil
	}
	key := digest(name, secret)
	v.mu.Lock()
	cached, good := v.good[key]
	_, bad := v.bad[key]
	current := v.file.Load() == f
	v.mu.Unlock()
	switch {
	case good && cached == name && current:
		return u, nil
	case bad && current:
		return nil, ErrBadCredentials
	}
	select {
	case v.slots <- struct{}{}:
	default:
		return nil, ErrBusy
	}
	err := bcrypt.CompareHashAndPassword(u.bcrypt, []byte(secret))
	<-v.slots
	v.remember(f, key, name, err == nil)
	if err != nil {
		return nil, ErrBadCredentials
	}
	return u, nil
}

// remember caches a result checked against f, unless f was replaced
// meanwhile.
func (v *Verifier) remember(f *File, key [sha256.Size]byte, name string, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.file.Load() != f {
		return
	}
	if ok {
		if len(v.good) >= maxGood {
			clear(v.good)
		}
		v.good[key] = name
		return
	}
	if len(v.bad) >= maxBad {
		clear(v.bad)
	}
	v.bad[key] = struct{}{}
}

// Bearer checks a token and returns its user: a map lookup by the token's
// SHA-256, so it costs the same for any token.
func (v *Verifier) Bearer(token string) (*User, error) {
	u, ok := v.file.Load().tokens[sha256.Sum256([]byte(token))]
	if !ok {
		return nil, ErrBadCredentials
	}
	return u, nil
}

// digest is the cache key of a name and a secret.
func digest(name, secret string) [sha256.Size]byte {
	return sha256.Sum256([]byte(name + "\x00" + secret))
}
